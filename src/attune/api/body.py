"""Reading JSON bodies with size limits and clear errors."""

from __future__ import annotations

import gzip
import zlib
from typing import Any

import orjson
from fastapi import Request

from attune.errors import BadRequest, PayloadTooLarge


async def read_json(request: Request, max_bytes: int) -> Any:
    """Parse the body as JSON, refusing bodies over ``max_bytes`` with 413 (gzip accepted)."""
    return parse_json(await read_body(request, max_bytes))


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The raw body, decompressed, refusing bodies over ``max_bytes`` with 413.

    Parse it with :func:`parse_json`; large bodies are best parsed off the event loop (a
    1 MiB batch takes milliseconds that every other request would wait for).
    """
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise PayloadTooLarge(f"the body is {declared} bytes; the limit is {max_bytes}")
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise PayloadTooLarge(f"the body exceeds the limit of {max_bytes} bytes")
        chunks.append(chunk)
    raw = b"".join(chunks)
    encoding = request.headers.get("content-encoding", "").lower()
    if encoding in ("gzip", "deflate"):
        raw = _decompress(raw, max_bytes)
    return raw


def parse_json(raw: bytes) -> Any:
    """``raw`` parsed as JSON; an empty or malformed body is a 400 naming the problem."""
    if not raw or raw.isspace():  # isspace stops at the first other byte; strip() would copy
        raise BadRequest("the body is empty; send a JSON object")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}") from None


def _decompress(raw: bytes, max_bytes: int) -> bytes:
    # Bounded decompression: a small gzip bomb must not exhaust memory.
    decompressor = zlib.decompressobj(wbits=47)  # auto-detect gzip or zlib headers
    try:
        out = decompressor.decompress(raw, max_bytes + 1)
    except (zlib.error, gzip.BadGzipFile) as exc:
        raise BadRequest(f"the body is not valid gzip/deflate data: {exc}") from None
    if len(out) > max_bytes or decompressor.unconsumed_tail:
        raise PayloadTooLarge(f"the decompressed body exceeds the limit of {max_bytes} bytes")
    return out
