"""Atomic writes: a temporary file beside the target, renamed into place at the end."""

from __future__ import annotations

import contextlib
import glob
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from odprep.errors import OdprepError

_UMASK = os.umask(0)
os.umask(_UMASK)


def temp_path_for(target: Path) -> Path:
    """A fresh hidden temporary path in the target's directory (same filesystem)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".odprep-tmp", dir=target.parent)
    if hasattr(os, "fchmod"):
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp's 0600 would survive the rename
    os.close(fd)
    return Path(name)


@contextlib.contextmanager
def atomic_write(target: Path | str, mode: str = "w", encoding: str | None = "utf-8",
                 newline: str | None = "") -> Iterator:
    """Open a temporary file that replaces ``target`` only if the block succeeds."""
    target = Path(target)
    tmp = temp_path_for(target)
    try:
        kwargs = {"encoding": encoding, "newline": newline} if "b" not in mode else {}
        with open(tmp, mode, **kwargs) as handle:
            yield handle
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def expand_paths(patterns: Iterable[Path | str]) -> list[Path]:
    """Paths as given; a pattern that is not a file but has glob characters (quoted, so the
    shell left it alone) is expanded, sorted. One that matches nothing is kept, to be
    reported by the caller."""
    paths: list[Path] = []
    for pattern in map(str, patterns):
        matches = sorted(glob.glob(pattern)) if glob.has_magic(pattern) and not os.path.exists(pattern) \
            else []
        paths += [Path(m) for m in matches] or [Path(pattern)]
    return paths


def read_text(path: Path | str, what: str) -> str:
    """A UTF-8 text file, or an OdprepError that names it and says what it should be."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8", newline="") as handle:  # keep \r\n as it is
            return handle.read()
    except (FileNotFoundError, IsADirectoryError):
        raise OdprepError(path, f"{what} not found", "Check the path") from None
    except UnicodeDecodeError:
        raise OdprepError(path, f"{what} is not UTF-8 text", "Save it as UTF-8") from None


def write_text_atomic(target: Path | str, text: str) -> None:
    with atomic_write(target) as handle:
        handle.write(text)
