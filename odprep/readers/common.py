"""What every reader shares: finding image files, and the skip-or-raise policy."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

from odprep.errors import OdprepError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")

# Called with ("skipped_image" | "skipped_object", error) when --skip-invalid is on.
OnInvalid = Callable[[str, OdprepError], None]


def raise_or_skip(on_invalid: OnInvalid | None, kind: str, error: OdprepError) -> None:
    if on_invalid is None:
        raise error
    on_invalid(kind, error)


def basename_any_os(path: str) -> str:
    """The last component of a Windows or POSIX path."""
    return path.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]


class ImageIndex:
    """The files of an images directory, listed once, for exact and forgiving lookups."""

    def __init__(self, images_dir: Path | str) -> None:
        self.root = Path(images_dir)
        if not self.root.is_dir():
            raise OdprepError(self.root, "images directory not found", "Check --images-dir")
        names = [entry.name for entry in os.scandir(self.root) if entry.is_file()]
        self.names = set(names)
        self.by_lower = {}
        self.by_stem = {}
        for name in sorted(names):
            self.by_lower.setdefault(name.lower(), name)
            stem, ext = os.path.splitext(name)
            if ext.lower() in IMAGE_EXTENSIONS:
                self.by_stem.setdefault(stem.lower(), name)

    def exact(self, relative: str) -> Path | None:
        """The file at this relative path, if it exists as written."""
        if not relative:
            return None
        if "/" not in relative and "\\" not in relative:
            return self.root / relative if relative in self.names else None
        candidate = self.root / relative.replace("\\", "/")
        return candidate if candidate.is_file() else None

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
