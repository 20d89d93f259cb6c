"""Concurrent batches that introduce the same new people, with pseudonymization on."""

from __future__ import annotations

import random
import threading

from attune.runtime import Runtime


def test_overlapping_new_people_from_parallel_batches_all_land(private_runtime: Runtime) -> None:
    # Each thread sends the same 60 brand-new people in its own random order: on PostgreSQL,
    # unordered multi-row inserts of their subject rows and data keys deadlocked.
    people = [f"person-{i}" for i in range(60)]
    errors: list[BaseException] = []
    accepted: list[int] = []

    def send(seed: int) -> None:
        order = people[:]
        random.Random(seed).shuffle(order)
        events = [
            {"event_id": f"e-{seed}-{user}", "type": "view", "user_id": user, "item_id": "i1"} for user in order
        ]
        try:
            for start in range(0, len(events), 20):
                accepted.append(private_runtime.ingest.ingest(events[start : start + 20]).accepted)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(seed,)) for seed in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert sum(accepted) == 4 * len(people)
    keys = {private_runtime.subject_keys.user(user) for user in people}
    assert len(keys) == len(people)
    assert {private_runtime.subject_keys.display_id(key) for key in keys} == set(people)
