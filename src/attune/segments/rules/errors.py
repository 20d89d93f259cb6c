"""The one error a rule can raise: where it went wrong and why."""

from __future__ import annotations

from attune.errors import ValidationFailed


def line_column(text: str, position: int) -> tuple[int, int]:
    """1-based line and column of the 0-based ``position`` in ``text``."""
    position = max(0, min(position, len(text)))
    line = text.count("\n", 0, position) + 1
    column = position - (text.rfind("\n", 0, position) + 1) + 1
    return line, column


class RuleError(ValidationFailed):
    """A rule (or a set of segment definitions) is invalid; HTTP 422.

    ``position`` is the 0-based offset of the fault in the rule text, ``line``/``column``
    are 1-based; all three are ``None`` for faults that have no single place (a cycle
    between segments). The message starts with ``line L, column C:`` when there is one.
    """

    def __init__(
        self,
        reason: str,
        *,
        text: str | None = None,
        position: int | None = None,
        prefix: str = "",
    ) -> None:
        self.reason = reason
        self.text = text
        self.position = position
        self.line: int | None = None
        self.column: int | None = None
        if text is not None and position is not None:
            self.line, self.column = line_column(text, position)
            where = f"line {self.line}, column {self.column}: "
        else:
            where = ""
        self.prefix = prefix
        super().__init__(f"{prefix}{where}{reason}")

    def within(self, prefix: str) -> RuleError:
        """The same error, its message prefixed (e.g. with the segment and field it came from)."""
        error = RuleError(self.reason, text=self.text, position=self.position, prefix=prefix + self.prefix)
        return error
