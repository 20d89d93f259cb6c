"""Offline evaluation: splits and ranking metrics under the DESIGN.md protocol."""
