"""Subject keys: the only form in which a person's ids are stored.

Every table and the log refer to people through these keys, never through raw ids, so that
pseudonymization (keyed hashing) can be switched on here without touching storage code.
"""

from __future__ import annotations


class SubjectKeys:
    """Maps raw user and anonymous ids to stored subject keys and back."""

    USER = "u:"
    ANON = "a:"

    def user(self, user_id: str) -> str:
        """Key of a known user id."""
        return self.USER + user_id

    def anon(self, anonymous_id: str) -> str:
        """Key of an anonymous (device) id."""
        return self.ANON + anonymous_id

    def for_event(self, user_id: str | None, anonymous_id: str | None) -> str:
        """The key an event is first attributed to: its user id, else its anonymous id."""
        if user_id is not None:
            return self.user(user_id)
        assert anonymous_id is not None, "validated events carry one of the two ids"
        return self.anon(anonymous_id)

    def display_id(self, key: str) -> str:
        """The id to show for a key (the raw id while keys are not pseudonymized)."""
        return key[2:]

    def is_user(self, key: str) -> bool:
        """True for keys of known users (as opposed to anonymous devices)."""
        return key.startswith(self.USER)
