"""What every reader shares: finding image files, and the skip-or-raise policy."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from odprep.errors import OdprepError
from odprep.fileio import is_regular_file, list_files, require_dir

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")

# Called with ("skipped_image" | "skipped_object", error) when --skip-invalid is on.
OnInvalid = Callable[[str, OdprepError], None]


def already_reported(kind: str, error: OdprepError) -> None:
    """``on_invalid`` for a record rebuilt lazily (by a writer worker) after a first pass in
    the parent reported its skips: they are not counted twice."""


def raise_or_skip(on_invalid: OnInvalid | None, kind: str, error: OdprepError) -> None:
    if on_invalid is None:
        raise error
    on_invalid(kind, error)


def basename_any_os(path: str) -> str:
    """The last component of a Windows or POSIX path."""
    return path.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]


def finite_number(text: object, name: str, source: object, where: str = "") -> float:
    """A finite float from annotation text, or an OdprepError naming the field."""
    try:
        value = float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        problem = f"{name} is missing" if text in ("", None) else f"{name} {text!r} is not a number"
        raise OdprepError(source, problem, f"Fix {name}", where) from None
    if not math.isfinite(value):
        raise OdprepError(source, f"{name} {text!r} is not a finite number", f"Fix {name}", where)
    return value


def pixel_size(text: object, name: str, source: object, where: str = "") -> int | None:
    """An image width/height: a whole number of pixels (0 or empty: unknown, None)."""
    if text in ("", None):
        return None
    value = finite_number(text, name, source, where)
    if value != int(value) or not 0 <= value < 2**31:
        raise OdprepError(source, f"{name} {text!r} is not a whole number of pixels", f"Fix {name}", where)
    return int(value) or None


def flag(text: str, name: str, source: object, where: str = "") -> int:
    """A 0/1 flag written as 0/1, true/false or yes/no (1.0 and 0.0 too); anything else is bad input."""
    value = text.strip().lower()
    if value in ("", "0", "0.0", "false", "no"):
        return 0
    if value in ("1", "1.0", "true", "yes"):
        return 1
    raise OdprepError(source, f"{name} is {text!r}, expected 0 or 1", f"Fix {name}", where)


class ImageIndex:
    """The files of an images directory, listed once, for exact and forgiving lookups."""

    def __init__(self, images_dir: Path | str, allow_outside: bool = False) -> None:
        self.root = require_dir(images_dir, "images directory")
        self.allow_outside = allow_outside
        names = list_files(self.root, "images directory")
        self.names = set(names)
        self.by_lower = {}
        self.by_stem = {}
        for name in sorted(names):
            self.by_lower.setdefault(name.lower(), name)
            stem, ext = os.path.splitext(name)
            if ext.lower() in IMAGE_EXTENSIONS:
                self.by_stem.setdefault(stem.lower(), name)

    @property
    def confinement(self) -> Path | None:
        """The folder images must lie in (``ImageRecord.image_root``), unless allowed outside."""
        return None if self.allow_outside else self.root

    def exact(self, relative: str) -> Path | None:
        """The file at this relative path, if it exists as written."""
        if not relative or "\0" in relative:
            return None
        if "/" not in relative and "\\" not in relative:
            return self.root / relative if relative in self.names else None
        candidate = self.root / relative.replace("\\", "/")
        return candidate if is_regular_file(candidate) else None

    def forgiving(self, *names: str) -> Path | None:
        """First match by case-insensitive name, then by stem with a usual image extension."""
        for name in names:
            if name and (found := self.by_lower.get(name.lower())):
                return self.root / found
        for name in names:
            if not name:
                continue
            stem, ext = os.path.splitext(name)
            key = (stem if ext.lower() in IMAGE_EXTENSIONS else name).lower()
            if found := self.by_stem.get(key):
                return self.root / found
        return None


class LazyRecords(Sequence):
    """Records built on demand by position. Forked writer workers inherit it and build
    their own slices, so records are neither built by the parent nor pickled."""

    def __init__(self, size: int, build: Callable) -> None:
        self.size = size
        self.build = build

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self.build(i) for i in range(*index.indices(self.size))]
        return self.build(range(self.size)[index])

    def subset(self, positions: Sequence[int]) -> LazyRecords:
        """These positions (repeats allowed), still built on demand."""
        chosen = np.asarray(positions, dtype=np.int64)
        return LazyRecords(len(chosen), lambda i: self.build(int(chosen[i])))


def build_all(count: int, build: Callable[[int], object], on_invalid: OnInvalid | None) -> list:
    """Every record, built in this process (so that its skips are reported here): a record
    that cannot be built is raised, or skipped with ``on_invalid``."""
    out = []
    for position in range(count):
        try:
            out.append(build(position))
        except OdprepError as error:
            raise_or_skip(on_invalid, "skipped_image", error)
    return out
