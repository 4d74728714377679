"""Findings of `check` and `validate`: grouped by kind, counted, each with its fix."""

from __future__ import annotations

import json
from collections import OrderedDict
from dataclasses import asdict, dataclass, field

from odprep.errors import printable


@dataclass(frozen=True, slots=True)
class Finding:
    kind: str  # short id, e.g. "bbox-not-normalized"
    severity: str  # "error" or "warning"
    message: str  # what is wrong, naming the file/record/field
    fix: str  # what to change


@dataclass
class Group:
    kind: str
    severity: str
    fix: str
    count: int = 0
    examples: list[str] = field(default_factory=list)


class Report:
    """Collects findings; keeps a count and the first ``max_examples`` of each kind."""

    def __init__(self, max_examples: int = 5) -> None:
        self.max_examples = max_examples
        self.groups: OrderedDict[str, Group] = OrderedDict()
        self.notes: list[str] = []

    def add(self, kind: str, severity: str, message: str, fix: str) -> None:
        group = self.groups.get(kind)
        if group is None:
            group = self.groups[kind] = Group(kind, severity, fix)
        group.count += 1
        if len(group.examples) < self.max_examples:
            group.examples.append(message)

    def error(self, kind: str, message: str, fix: str) -> None:
        self.add(kind, "error", message, fix)

    def warning(self, kind: str, message: str, fix: str) -> None:
        self.add(kind, "warning", message, fix)

    @property
    def errors(self) -> int:
        return sum(g.count for g in self.groups.values() if g.severity == "error")

    @property
    def warnings(self) -> int:
        return sum(g.count for g in self.groups.values() if g.severity == "warning")

    def exit_code(self, strict: bool = False) -> int:
        return 1 if self.errors or (strict and self.warnings) else 0

    def render(self) -> str:
        lines = list(self.notes)
        for group in sorted(self.groups.values(), key=lambda g: g.severity != "error"):
            lines.append(f"{group.severity.upper()} {group.kind} ({group.count}): fix: {group.fix}")
            lines += [f"  - {example}" for example in group.examples]
            if group.count > len(group.examples):
                lines.append(f"  ... and {group.count - len(group.examples)} more")
        lines.append(f"{self.errors} error(s), {self.warnings} warning(s)")
        return "\n".join(map(printable, lines))

    def to_json(self, **extra) -> str:
        return json.dumps({**extra, "errors": self.errors, "warnings": self.warnings,
                           "findings": [asdict(g) for g in self.groups.values()]}, indent=2)
