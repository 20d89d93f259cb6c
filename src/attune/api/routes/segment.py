"""Segment-compatible endpoints (being written)."""

from fastapi import APIRouter

router = APIRouter(prefix="/v1", tags=["segment"])
