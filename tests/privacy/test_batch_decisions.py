"""A batch's consent decisions, applied in memory as they come, give every subject the states
that recording each decision on its own and reading states again would give."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, insert, select

from attune.privacy.consent import ConsentChange, ConsentService
from attune.settings import PrivacySettings
from attune.storage.engine import make_engine
from attune.storage.migrate import upgrade
from attune.storage.tables import consent_current, consent_history, identity_links

SUBJECTS = ["u:a", "u:b", "u:c", "a:1", "a:2", "a:3", "a:4"]
PURPOSES = ["analytics", "marketing", "personalization"]
STATES = ["granted", "denied", "withdrawn"]

decisions = st.dictionaries(st.sampled_from(PURPOSES), st.sampled_from(STATES), min_size=1, max_size=3)
worlds = st.fixed_dictionaries({
    # alias -> canonical (an alias has one canonical person; a person may be linked to several)
    "links": st.dictionaries(st.sampled_from(SUBJECTS), st.sampled_from(SUBJECTS), max_size=4),
    "before": st.dictionaries(st.sampled_from(SUBJECTS), decisions, max_size=4),
    "batch": st.lists(st.tuples(st.sampled_from(SUBJECTS), decisions), min_size=1, max_size=6),
    "among": st.sets(st.sampled_from(SUBJECTS), max_size=len(SUBJECTS)),
})


def _reset(engine, links: dict[str, str], before: dict[str, dict[str, str]]) -> None:
    with engine.begin() as conn:
        for table in (identity_links, consent_current, consent_history):
            conn.execute(delete(table))
        if links:
            conn.execute(insert(identity_links), [
                {"alias_key": a, "canonical_key": c, "linked_at": 1.0, "link_offset": 1} for a, c in links.items()
            ])
        rows = [{"subject_key": s, "purpose": p, "state": v, "source": "t", "updated_at": 1.0}
                for s, states in before.items() for p, v in states.items()]
        if rows:
            conn.execute(insert(consent_current), rows)


def _service(engine) -> ConsentService:
    from attune.profiles.identity import SubjectKeys

    return ConsentService(engine, PrivacySettings(purposes=PURPOSES), SubjectKeys())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(worlds)
def test_batch_decisions_match_recording_each_in_turn(tmp_path_factory, world) -> None:
    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('consent') / 'store.db'}")
    upgrade(engine)
    _reset(engine, world["links"], world["before"])
    steps = [[ConsentChange(s, p, v, "banner", float(i)) for p, v in d.items()] for i, (s, d) in enumerate(world["batch"])]
    among = sorted(world["among"] | {s for s, _ in world["batch"]})  # the batch's subjects

    # In memory, as ingestion does.
    service = _service(engine)
    states = service.states_of(among)
    batch = service.batch_decisions(states, {changes[0].subject_key for changes in steps})
    seen = []
    for changes in steps:
        batch.decide(changes[0].subject_key, changes)
        seen.append({k: dict(states[k]) for k in among})
    batch.record()
    with engine.connect() as conn:
        after_batch = sorted(conn.execute(select(consent_current)).all())
        history = conn.execute(
            select(consent_history.c.subject_key, consent_history.c.purpose, consent_history.c.state)
            .order_by(consent_history.c.seq)
        ).all()

    # One by one: record, then read every subject's states again.
    _reset(engine, world["links"], world["before"])
    reference = _service(engine)
    for changes, expected in zip(steps, seen, strict=True):
        reference.record(changes)
        assert {k: dict(v) for k, v in reference.states_of(among).items()} == expected
    with engine.connect() as conn:
        assert sorted(conn.execute(select(consent_current)).all()) == after_batch
    assert [tuple(r) for r in history] == [(c.subject_key, c.purpose, c.state) for changes in steps for c in changes]
    engine.dispose()
