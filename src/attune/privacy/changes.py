"""Counters that tell processes sharing one store about privacy changes made by another.

The serving process and its ingest workers (:mod:`attune.ingest.workers`) each cache consent
decisions, registered subjects and data keys. A change in one process (a consent decision,
an erasure) bumps a counter in shared memory; the others compare it with what they last saw
before they use a cache, so no process acts on a decision another has already overturned.
"""

from __future__ import annotations

from dataclasses import dataclass
from multiprocessing.context import BaseContext
from typing import Any


class SharedCounter:
    """An integer in shared memory that any process holding it can bump and read.

    Readers only ask whether it changed since they last looked, so it needs no lock: two
    bumps racing may count as one, but the value moves either way.
    """

    def __init__(self, context: BaseContext) -> None:
        self._value: Any = context.Value("q", 0, lock=False)

    def bump(self) -> None:
        """Count one change."""
        self._value.value += 1

    @property
    def value(self) -> int:
        """Changes counted so far."""
        return int(self._value.value)


@dataclass
class PrivacyChanges:
    """The counters one installation's processes share."""

    #: Consent decisions recorded or forgotten (:class:`attune.privacy.consent.ConsentService`).
    consent: SharedCounter
    #: People erased: cached subjects and data keys may name shredded keys.
    erasures: SharedCounter

    @classmethod
    def create(cls, context: BaseContext) -> PrivacyChanges:
        """Fresh counters, to be handed to child processes of ``context``."""
        return cls(SharedCounter(context), SharedCounter(context))
