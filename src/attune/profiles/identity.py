"""Subject keys: the only form in which a person's ids are stored.

Every table and the log refer to people through these keys, never through raw ids. With
pseudonymization on, a key is ``u:``/``a:`` followed by a keyed pseudonym
(:mod:`attune.privacy.pseudonym`); without it, by the raw id. The prefixes stay either way, so
:meth:`SubjectKeys.is_user` works on both.
"""

from __future__ import annotations

from attune.privacy.pseudonym import Pseudonymizer, SubjectRegistry, is_token

#: Entries of one memo of :class:`SubjectKeys` before it is emptied (about 12 MB at most; the
#: next events refill it).
_MEMO_SIZE = 50_000


class SubjectKeys:
    """Maps raw user and anonymous ids to stored subject keys and back.

    ``pseudonymizer`` and ``registry`` switch pseudonymization on. Ids that already are
    pseudonyms (events whose ids were pseudonymized at ingest, as the log stores them) map to
    themselves, so consumers reading the log and services given raw ids agree on the key.
    """

    USER = "u:"
    ANON = "a:"

    def __init__(self, pseudonymizer: Pseudonymizer | None = None, registry: SubjectRegistry | None = None) -> None:
        self.pseudonymizer = pseudonymizer
        self.registry = registry
        # Pseudonyms already seen by user()/anon() -> their key, per prefix. The log maps every
        # stored event's (already pseudonymized) ids through user()/anon(): a dict hit instead
        # of the token-shape check each time. Only pseudonyms are kept, never raw ids, and a
        # pseudonym maps to itself whatever the keys, so an entry never goes stale.
        self._user_tokens: dict[str, str] = {}
        self._anon_tokens: dict[str, str] = {}

    @property
    def pseudonymized(self) -> bool:
        """Whether ids are stored as pseudonyms."""
        return self.pseudonymizer is not None

    def _token(self, prefix: str, raw: str, *, trust_tokens: bool = True) -> str:
        if trust_tokens and is_token(raw):
            return raw
        p = self.pseudonymizer
        assert p is not None
        if len(p.order) == 1 or self.registry is None:
            return p.token(raw)
        # Several keys: a subject first stored under an older key keeps it until re-keyed.
        candidates = p.tokens(raw)
        found = self.registry.existing([prefix + t for t in candidates])
        for token in candidates:
            if prefix + token in found:
                return token
        return candidates[0]

    def _key(self, prefix: str, an_id: str, memo: dict[str, str]) -> str:
        """``prefix`` + the pseudonym of ``an_id`` (itself when it already is one, remembered in ``memo``)."""
        if not is_token(an_id):
            return prefix + self._token(prefix, an_id, trust_tokens=False)
        key = prefix + an_id
        if len(memo) >= _MEMO_SIZE:
            memo.clear()
        memo[an_id] = key
        return key

    def user(self, user_id: str) -> str:
        """Key of a known user id."""
        if self.pseudonymizer is None:
            return self.USER + user_id
        key = self._user_tokens.get(user_id)
        return key if key is not None else self._key(self.USER, user_id, self._user_tokens)

    def anon(self, anonymous_id: str) -> str:
        """Key of an anonymous (device) id."""
        if self.pseudonymizer is None:
            return self.ANON + anonymous_id
        key = self._anon_tokens.get(anonymous_id)
        return key if key is not None else self._key(self.ANON, anonymous_id, self._anon_tokens)

    def from_raw(self, prefix: str, raw_id: str) -> str:
        """Key of an id known to be raw (ingest): hashed even when it looks like a pseudonym."""
        p = self.pseudonymizer
        if p is None:
            return prefix + raw_id
        if len(p.order) == 1 or self.registry is None:  # one key: the pseudonym alone decides
            return prefix + p.current_token(raw_id)
        return prefix + self._token(prefix, raw_id, trust_tokens=False)

    def for_event(self, user_id: str | None, anonymous_id: str | None) -> str:
        """The key an event is first attributed to: its user id, else its anonymous id."""
        if user_id is not None:
            return self.user(user_id)
        assert anonymous_id is not None, "validated events carry one of the two ids"
        return self.anon(anonymous_id)

    def display_id(self, key: str) -> str:
        """The id to show for a key: the raw id (decrypted from ``subjects`` when pseudonymized).

        A pseudonym whose raw id is unknown or erased is shown as the pseudonym itself.
        """
        rest = key[2:]
        if self.registry is None:
            return rest
        if not is_token(rest):
            return rest
        raw = self.registry.raw_id(key)
        return raw if raw is not None else rest

    def is_user(self, key: str) -> bool:
        """True for keys of known users (as opposed to anonymous devices)."""
        return key.startswith(self.USER)
