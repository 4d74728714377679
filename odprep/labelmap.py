"""label_map.pbtxt: read real-world files, build from class names, merge, save.

Ids start at 1; 0 is the OD API's background. Built maps are ordered by name
(``order="sorted"``) or by first appearance (``order="first-seen"``), so the same
input always gives the same ids.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from odprep import prototext
from odprep.errors import OdprepError
from odprep.fileio import read_text, write_text_atomic

ORDERS = ("sorted", "first-seen")
_ITEM_FIELDS = {"name", "id", "display_name", "keypoints", "ancestor_ids", "descendant_ids",
                "frequency", "instance_count"}


def _integer(field: prototext.Field, fail) -> int:
    """An int32 id as protobuf's text parser reads it: unquoted, decimal/hex/octal, < 2^31."""
    from odprep.pipeline_config import proto_int

    value = field.value
    if not isinstance(value, prototext.Scalar) or value.is_string:
        raise fail(field.start, "id must be a number, not a string or a block (the OD API's parser "
                   "refuses it)", "Write id: 1")
    number = proto_int(value.text)
    if number is None:
        raise fail(field.start, f"id {prototext.shown(value.text)} is not an integer", "Use whole numbers")
    if not -(2**31) <= number < 2**31:
        raise fail(field.start, f"id {number} does not fit in 32 bits (the OD API's parser refuses it)",
                   "Use ids from 1 to 2147483647")
    return number


def _keypoints(block: prototext.Message, fail) -> tuple[tuple[int, str], ...]:
    pairs = []
    for field in block.all("keypoints"):
        if not isinstance(field.value, prototext.Message):
            raise fail(field.start, "keypoints must be a block: keypoints { id: 0 label: \"nose\" }",
                       "Fix the keypoints")
        id_field, label = field.value.first("id"), field.value.scalar("label")
        if id_field is None or label is None:
            raise fail(field.start, "a keypoints block needs an id and a label", "Fix the keypoints")
        pairs.append((_integer(id_field, fail), label))
    return tuple(pairs)


@dataclass(frozen=True, slots=True)
class LabelMapItem:
    id: int
    name: str
    display_name: str | None = None
    keypoints: tuple[tuple[int, str], ...] = ()  # (id, label): what CenterNet keypoint configs read


class LabelMap:
    """An ordered set of (id, name) pairs with lookups both ways."""

    def __init__(self, items: Iterable[LabelMapItem], source: str = "") -> None:
        self.items: tuple[LabelMapItem, ...] = tuple(items)
        self.source = source
        self._by_name = {item.name: item.id for item in self.items}
        self._by_display = {item.display_name: item.id for item in self.items if item.display_name}
        self._by_id = {item.id: item for item in self.items}

    # --- construction -------------------------------------------------------------------------
    @classmethod
    def build(cls, names: Iterable[str], order: str = "sorted") -> LabelMap:
        """Ids 1..N for the distinct names, sorted by name or in first-seen order."""
        unique = list(dict.fromkeys(names))
        if order == "sorted":
            unique.sort()
        elif order != "first-seen":
            raise ValueError(f"order must be one of {ORDERS}, not {order!r}")
        return cls(LabelMapItem(i, name) for i, name in enumerate(unique, start=1))

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[int, str]]) -> LabelMap:
        return cls(LabelMapItem(int(i), name) for i, name in sorted(pairs))

    @classmethod
    def load(cls, path: Path | str) -> LabelMap:
        """Read a label_map.pbtxt, rejecting what would break training."""
        return cls.parse(read_text(path, "label map"), str(path))

    @classmethod
    def parse(cls, text: str, source: str = "") -> LabelMap:
        def fail(offset: int, problem: str, fix: str) -> OdprepError:
            line, _ = prototext.line_col(text, offset)
            return OdprepError(source, f"line {line}: {problem}", fix)

        not_a_map = "Label maps hold only 'item { name: ... id: ... }' blocks"
        items: list[LabelMapItem] = []
        seen_ids: dict[int, int] = {}  # id -> offset of its first item
        seen_names: dict[str, int] = {}
        for fld in prototext.iter_top_level(text, source):  # one item at a time: linear, flat
            if fld.name != "item" or not isinstance(fld.value, prototext.Message):
                raise fail(fld.start, f"unexpected top-level field {prototext.shown(fld.name)}: this is "
                           "not a label map", not_a_map)
            block = fld.value
            for sub in block.fields:
                if sub.name not in _ITEM_FIELDS:
                    raise fail(sub.start, f"unknown item field {prototext.shown(sub.name)}",
                               "Use name, id and display_name")
            id_field = block.first("id")
            if id_field is None:
                raise fail(fld.start, "item has no id", "Give every item an id from 1")
            item_id = _integer(id_field, fail)
            names = {}
            for key in ("name", "display_name"):
                found = block.first(key)
                if found is not None:
                    if not isinstance(found.value, prototext.Scalar) or not found.value.is_string:
                        raise fail(found.start, f"{key} must be a quoted string (the OD API's parser "
                                   "refuses it unquoted)", f'Write {key}: "..."')
                    names[key] = found.value.text
            name = names.get("name") or names.get("display_name")
            if not name:
                raise fail(fld.start, f"item {item_id} has no name", "Give every item a name")
            if item_id < 0 or (item_id == 0 and name.lower() != "background"):
                raise fail(id_field.start, f"id {item_id} ({name!r}) is reserved for background",
                           "Number classes from 1")
            if item_id in seen_ids:
                raise fail(id_field.start, f"duplicate id {item_id} (first on line "
                           f"{prototext.line_col(text, seen_ids[item_id])[0]})",
                           "Give every class its own id")
            if name in seen_names:
                raise fail(fld.start, f"duplicate name {name!r} (first on line "
                           f"{prototext.line_col(text, seen_names[name])[0]})",
                           "List every class once")
            seen_ids[item_id] = id_field.start
            seen_names[name] = fld.start
            items.append(LabelMapItem(item_id, name, names.get("display_name"), _keypoints(block, fail)))
        if not items:
            raise OdprepError(source, "no 'item' blocks: this is not a label map", not_a_map)
        return cls(items, source)

    # --- queries ------------------------------------------------------------------------------
    @property
    def classes(self) -> tuple[LabelMapItem, ...]:
        """The items that are real classes (id >= 1)."""
        return tuple(item for item in self.items if item.id >= 1)

    @property
    def names(self) -> list[str]:
        return [item.name for item in self.classes]

    @property
    def max_id(self) -> int:
        return max((item.id for item in self.classes), default=0)

    def id_of(self, name: str) -> int | None:
        """The id for a class text, by name first, then by display_name (as the OD API does)."""
        found = self._by_name.get(name)
        return found if found is not None else self._by_display.get(name)

    def name_of(self, item_id: int) -> str | None:
        item = self._by_id.get(item_id)
        return item.name if item else None

    def id_gaps(self, limit: int = 10) -> list[int]:
        """The first ``limit`` ids missing from 1..max_id (the range is never built)."""
        gaps: list[int] = []
        expected = 1
        for item_id in sorted({item.id for item in self.classes}):
            gaps += range(expected, min(item_id, expected + limit - len(gaps)))
            if len(gaps) >= limit:
                break
            expected = item_id + 1
        return gaps

    @property
    def missing_ids(self) -> int:
        """How many ids of 1..max_id no class has."""
        return self.max_id - len({item.id for item in self.classes})

    def __len__(self) -> int:
        return len(self.classes)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.id_of(name) is not None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LabelMap) and self.items == other.items

    def __repr__(self) -> str:
        return f"LabelMap({[(i.id, i.name) for i in self.items]})"

    # --- changes ------------------------------------------------------------------------------
    def merge(self, names: Iterable[str], order: str = "sorted") -> LabelMap:
        """Keep every existing id; new names follow the highest id, in ``order``."""
        new = [n for n in dict.fromkeys(names) if n not in self._by_name]
        if order == "sorted":
            new.sort()
        start = max((item.id for item in self.items), default=0) + 1
        return LabelMap([*self.items, *(LabelMapItem(start + i, n) for i, n in enumerate(new))])

    def to_pbtxt(self) -> str:
        blocks = []
        for item in self.items:
            lines = ["item {", f"  id: {item.id}", f"  name: {prototext.quote(item.name)}"]
            if item.display_name:
                lines.append(f"  display_name: {prototext.quote(item.display_name)}")
            lines += [f"  keypoints {{ id: {k} label: {prototext.quote(label)} }}" for k, label in item.keypoints]
            blocks.append("\n".join([*lines, "}"]))
        return "\n\n".join(blocks) + "\n"

    def save(self, path: Path | str) -> None:
        write_text_atomic(path, self.to_pbtxt())
