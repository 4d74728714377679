"""The one exception odprep raises for bad input, and how it reads."""

from __future__ import annotations


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
        return ": ".join([*parts, text])

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
