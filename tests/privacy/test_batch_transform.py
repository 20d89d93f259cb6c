"""The batch-level privacy step agrees with its per-event definition.

Consent is read once per batch, pseudonyms come from an LRU, new subjects are registered in
one transaction, minimization is copy-on-write: none of that may change what is stored.
"""

from __future__ import annotations

import copy
import hmac
import ipaddress

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select

from attune.privacy.enforcement import STRIPPED_ID
from attune.privacy.minimize import MinimizationPolicy, PiiScanner, minimize, truncate_ip
from attune.privacy.pseudonym import Pseudonymizer
from attune.privacy.services import Privacy
from attune.runtime import Runtime
from attune.storage.tables import events, person_keys, subjects

KEY = bytes(range(32))


def _slow_truncate(text: str) -> str | None:
    """The definition: ipaddress parses, /24 or /48 network address."""
    try:
        ip = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return str(ipaddress.ip_network(f"{ip}/{24 if ip.version == 4 else 48}", strict=False).network_address)


octet = st.one_of(
    st.integers(0, 300).map(str), st.sampled_from(["00", "01", "007", "255", "256", "", "1a", "٣", " 1"])
)


@given(st.one_of(st.tuples(octet, octet, octet, octet).map(".".join), st.text(max_size=20)))
def test_fast_ipv4_path_agrees_with_ipaddress(text: str) -> None:
    assert truncate_ip(text) == _slow_truncate(text)


@given(st.text(min_size=1, max_size=40))
def test_cached_pseudonym_is_the_hmac(raw: str) -> None:
    pseudonymizer = Pseudonymizer({"p1": KEY}, "p1")
    expected = "~p1." + hmac.digest(KEY, raw.encode("utf-8", "surrogatepass"), "sha256")[:20].hex()
    assert pseudonymizer.token(raw) == expected
    assert pseudonymizer.token(raw) == expected  # from the cache
    assert pseudonymizer.token(raw, "p1") == expected


def test_phone_numbers_without_three_adjacent_digits_are_found() -> None:
    # The cheap screen counts digits anywhere (7 at least), not runs of them.
    assert PiiScanner().scrub("ring +4 9 1 7 0 5 5 5 today") == "ring [phone] today"


def test_small_numbers_in_text_are_not_cards_but_grouped_cards_are() -> None:
    # 13 digits passing Luhn by chance, written the way small numbers are: no card.
    assert PiiScanner().scrub("rows 10 10 25 2 0 93 0 40 seen") == "rows 10 10 25 2 0 93 0 40 seen"
    for card in ("4111 1111 1111 1111", "4111-1111-1111-1111", "3782 822463 10005", "4111111111111111"):
        assert PiiScanner().scrub(f"pay {card} now") == "pay [card] now"


json_values = st.recursive(
    st.one_of(
        st.text(max_size=30), st.integers(), st.none(), st.sampled_from(["a@b.example", "+49 170 5550123"])
    ),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=10,
)


@given(st.dictionaries(st.text(max_size=8), json_values, max_size=4), json_values)
def test_copy_on_write_minimization_never_edits_its_input(properties: dict, page_title) -> None:
    event = {
        "type": "view",
        "properties": properties,
        "context": {"ip": "10.1.2.3", "page": {"title": page_title}, "geo": {"city": "Bonn", "lat": 1.0}},
    }
    before = copy.deepcopy(event)
    out = minimize(event, MinimizationPolicy())
    assert event == before
    assert out["context"]["ip"] == "10.1.2.0" and out["context"]["geo"] == {"city": "Bonn"}
    assert "a@b.example" not in repr(out) and "5550123" not in repr(out)


def test_consent_withdrawn_mid_batch_applies_to_the_rest_of_that_batch(private_runtime: Runtime) -> None:
    runtime = private_runtime
    batch = [
        {"type": "view", "user_id": "gina", "item_id": "i1"},
        {"type": "consent", "user_id": "gina", "properties": {"purposes": {"analytics": "withdrawn"}}},
        {"type": "view", "user_id": "gina", "item_id": "i2"},
        {"type": "view", "user_id": "hugo", "item_id": "i3"},
    ]
    report = runtime.ingest.ingest(batch)
    assert report.accepted == 4 and not report.rejected
    gina = runtime.subject_keys.user("gina")
    with runtime.engine.connect() as conn:
        rows = conn.execute(
            select(events.c.item_id, events.c.user_key, events.c.anon_key).order_by(events.c.offset)
        ).all()
    # i1 before the withdrawal keeps gina; i2 after it is stripped (analytics: strip); hugo is untouched.
    assert [(r.item_id, r.user_key) for r in rows] == [
        ("i1", gina),
        (None, gina),
        ("i2", None),
        ("i3", runtime.subject_keys.user("hugo")),
    ]
    assert rows[2].anon_key == runtime.subject_keys.anon(STRIPPED_ID)  # nobody's
    # The next request sees the decision too (it was cached as decided, not as before).
    runtime.ingest.ingest([{"type": "view", "user_id": "gina", "item_id": "i4"}])
    with runtime.engine.connect() as conn:
        last = conn.execute(select(events.c.user_key).order_by(events.c.offset.desc()).limit(1)).scalar()
    assert last is None


def test_a_batch_registers_each_new_subject_once_with_one_data_key(private_runtime: Runtime) -> None:
    privacy: Privacy = private_runtime.privacy
    batch = [
        {"type": "view", "user_id": f"user-{i % 7}", "anonymous_id": f"dev-{i % 7}", "item_id": "i1"}
        for i in range(50)
    ]
    assert private_runtime.ingest.ingest(batch).accepted == 50
    with private_runtime.engine.connect() as conn:
        n_subjects = conn.execute(select(func.count()).select_from(subjects)).scalar()
        n_keys = conn.execute(select(func.count()).select_from(person_keys)).scalar()
    assert n_subjects == n_keys == 14
    for i in range(7):  # raw ids decrypt from a fresh registry (nothing cached)
        key = privacy.subject_keys.user(f"user-{i}")
        privacy.registry.forget([key])
        assert privacy.registry.raw_id(key) == f"user-{i}"


def test_consent_of_many_subjects_matches_one_by_one(private_runtime: Runtime) -> None:
    privacy: Privacy = private_runtime.privacy
    privacy.consent.set("ivy", {"marketing": "granted"}, "banner")
    private_runtime.ingest.ingest(
        [
            {"type": "view", "anonymous_id": "dev-ivy", "item_id": "i1"},
            {"type": "alias", "user_id": "ivy", "properties": {"previous_id": "dev-ivy"}},
            {
                "type": "consent",
                "anonymous_id": "dev-jo",
                "properties": {"purposes": {"analytics": "denied"}},
            },
        ]
    )
    private_runtime.catch_up()
    keys = [
        privacy.subject_keys.user("ivy"),
        privacy.subject_keys.anon("dev-ivy"),
        privacy.subject_keys.anon("dev-jo"),
        privacy.subject_keys.user("nobody"),
    ]
    together = privacy.consent.states_of(keys)
    privacy.consent.invalidate()
    alone = {key: privacy.consent.states_of([key])[key] for key in keys}
    assert together == alone
    assert together[keys[1]] == {"marketing": "granted"}  # the linked person's decision covers the device
    assert together[keys[2]] == {"analytics": "denied"} and together[keys[3]] == {}
