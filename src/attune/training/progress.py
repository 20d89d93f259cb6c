"""How training reports progress: the CLI shows it, tests and the scheduler ignore it."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    """Receives training progress."""

    def stage(self, message: str) -> None:
        """A new step started (loading, splitting, tuning a model, refitting, saving)."""

    def trial(self, model: str, done: int, total: int, score: float | None, best: float | None) -> None:
        """A tuning trial of ``model`` finished (``score`` None when it failed)."""


class Silent:
    """Progress that goes nowhere."""

    def stage(self, message: str) -> None:
        """Ignore."""

    def trial(self, model: str, done: int, total: int, score: float | None, best: float | None) -> None:
        """Ignore."""
