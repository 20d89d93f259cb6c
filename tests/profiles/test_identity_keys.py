"""SubjectKeys' fast paths answer exactly as the plain rules: pseudonyms map to themselves in
user()/anon(), from_raw always hashes, and a remembered pseudonym never changes an answer."""

from __future__ import annotations

import os
import re

from hypothesis import given
from hypothesis import strategies as st

from attune.privacy.pseudonym import Pseudonymizer, is_token
from attune.profiles.identity import SubjectKeys

K1, K2 = os.urandom(32), os.urandom(32)
_TOKEN_SHAPE = re.compile(r"^~[A-Za-z0-9_-]{1,16}\.[0-9a-f]{40}$")

ids = st.one_of(
    st.text(max_size=70),
    st.text(alphabet="~.abcdef0123456789p_-\n", max_size=60),
    st.builds(lambda kid, digest: f"~{kid}.{digest}",
              st.text(alphabet="abcXYZ019_-", min_size=1, max_size=17),
              st.text(alphabet="0123456789abcdefA", min_size=39, max_size=41)),
)


@given(ids)
def test_is_token_is_the_token_regex(text: str) -> None:
    assert is_token(text) == (len(text) <= 58 and _TOKEN_SHAPE.match(text) is not None)


@given(st.lists(ids, max_size=6))
def test_user_and_anon_keep_pseudonyms_and_hash_the_rest(texts: list[str]) -> None:
    p = Pseudonymizer({"p1": K1}, "p1")
    keys = SubjectKeys(p)
    for text in texts + texts:  # twice: the second answer may come from the memo
        for prefix, method in ((SubjectKeys.USER, keys.user), (SubjectKeys.ANON, keys.anon)):
            expected = prefix + (text if is_token(text) else p.token(text))
            assert method(text) == expected
            assert keys.from_raw(prefix, text) == prefix + p.token(text)  # raw ids are always hashed


def test_a_pseudonym_seen_through_user_is_still_hashed_by_from_raw() -> None:
    p = Pseudonymizer({"p1": K1}, "p1")
    keys = SubjectKeys(p)
    token = p.token("alice")
    assert keys.user(token) == "u:" + token
    assert keys.from_raw("u:", token) == "u:" + p.token(token) != "u:" + token
    assert keys.anon(token) == "a:" + token


def test_without_pseudonyms_keys_are_the_raw_ids() -> None:
    keys = SubjectKeys()
    token = Pseudonymizer({"p1": K1}, "p1").token("alice")
    assert keys.user(token) == "u:" + token and keys.anon("dev") == "a:dev"
    assert keys.from_raw("u:", "alice") == "u:alice"


def test_pseudonymizer_token_under_each_key() -> None:
    both = Pseudonymizer({"p1": K1, "p2": K2}, "p2")
    assert both.token("x") == both.token("x", "p2") == both.token("x", "") == Pseudonymizer({"p2": K2}, "p2").token("x")
    assert both.token("x", "p1") == Pseudonymizer({"p1": K1}, "p1").token("x")
    assert both.tokens("x") == [both.token("x", "p2"), both.token("x", "p1")]
    assert both.current_token("x") == both.token("x")
