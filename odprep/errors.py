"""The one exception odprep raises for bad input, and how it reads."""

from __future__ import annotations

import re

# Characters a terminal acts on instead of showing: C0 and C1 controls (ESC starts the
# sequences that retitle, clear or write the clipboard), DEL, line and paragraph
# separators, and the bidirectional overrides that reorder what is shown.
_OTHERS = "\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069"
_CONTROL = re.compile(f"[\x00-\x1f{_OTHERS}]")
_CONTROL_KEEPING_LINES = re.compile(f"[\x00-\x09\x0b-\x1f{_OTHERS}]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match) -> str:
    char = match.group()
    return _NAMED.get(char) or (f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}")


def printable(text: object) -> str:
    """``text`` with every character a terminal would act on written as an escape
    (``\\x1b``, ``\\n``, ``\\u202e``): names that came from data are shown, never obeyed,
    and a message stays on one line."""
    return _CONTROL.sub(_escape, str(text))


def printable_lines(text: object) -> str:
    """Like ``printable``, but line breaks between the lines of a report stay."""
    return _CONTROL_KEEPING_LINES.sub(_escape, str(text))


def shortened(name: str, most: int = 60) -> str:
    """A name for a table cell: at most ``most`` characters, the cut marked with '…'."""
    return name if len(name) <= most else name[:most - 1] + "…"


class OdprepError(Exception):
    """Bad input that stops a command: names the file, the item, the problem and the fix.

    Reads as ``source: where: problem. fix`` on one line. The CLI prints it
    without a traceback and exits 2.
    """

    def __init__(self, source: object, problem: str, fix: str = "", where: str = "") -> None:
        self.source = str(source) if source is not None else ""
        self.problem = problem
        self.fix = fix
        self.where = where
        super().__init__(self.message)

    @property
    def message(self) -> str:
        parts = [p for p in (self.source, self.where) if p]
        text = self.problem.rstrip(".") + "."
        if self.fix:
            text += " " + self.fix.rstrip(".") + "."
        return printable(": ".join([*parts, text]))

    def __str__(self) -> str:
        return self.message

    def __reduce__(self):  # keeps the fields across worker processes
        return (type(self), (self.source, self.problem, self.fix, self.where))


def object_where(index: int, label: str) -> str:
    """How an object is named in messages: its 1-based index and its class."""
    return f"object {index} ({label})"


class UnknownClass(OdprepError):
    """A class that is not in the user's label map."""


class MissingImage(OdprepError):
    """An image an annotation names that is not where it should be."""
