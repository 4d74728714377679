"""The one module that touches user paths: reading, listing, globbing and atomic output.

Reads accept regular files only (a FIFO would hang, /dev/zero would never end).
Outputs are written to temporary files beside their targets and committed all or
nothing: every destination is checked first, signals wait until the renames are
done, and a failed rename rolls back the ones before it. Every OSError becomes an
OdprepError that names the path, says what is wrong and how to fix it.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import os
import re
import stat
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

from odprep.errors import OdprepError
from odprep.termination import check as check_signals
from odprep.termination import held, mark_committed

_UMASK = os.umask(0)
os.umask(_UMASK)
TEMP_SUFFIX = ".odprep-tmp"

_PROBLEMS: dict[int, tuple[str, str]] = {
    errno.ENOENT: ("not found", "Check the path"),
    errno.ENOSPC: ("no space left on the device", "Free some space, or write elsewhere"),
    errno.EDQUOT: ("the disk quota is exceeded", "Free some space, or write elsewhere"),
    errno.EROFS: ("the file system is read-only", "Write elsewhere"),
    errno.EACCES: ("permission denied", "Check the permissions, or use another path"),
    errno.EPERM: ("operation not permitted", "Check the permissions, or use another path"),
    errno.ENOTDIR: ("a part of the path is a file, not a folder", "Fix the path"),
    errno.EISDIR: ("it is a folder, not a file", "Name a file"),
    errno.ELOOP: ("a symbolic link loops", "Fix or remove the link"),
    errno.ENAMETOOLONG: ("the name is too long", "Use a shorter path"),
    errno.EMFILE: ("too many open files", "Raise the limit (ulimit -n)"),
    errno.EIO: ("an I/O error occurred", "Check the disk"),
}


def os_error(path: object, exc: OSError, doing: str) -> OdprepError:
    """An OdprepError for a failed file operation: ``cannot {doing}: {problem}. {fix}``."""
    problem, fix = _PROBLEMS.get(exc.errno or 0, (exc.strerror or type(exc).__name__, "Check the path"))
    if exc.errno == errno.EEXIST and "write" in doing:
        problem, fix = "a part of the path is a file, not a folder", "Fix the path"
    return OdprepError(path, f"cannot {doing}: {problem}", fix)


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _open_regular(path: Path | str, what: str) -> int:
    """A read-only fd on a regular file, or OdprepError. O_NONBLOCK so a FIFO cannot hang."""
    from odprep import storage

    if storage.is_url(path):  # a URL met inside a file (a config's label_map_path): fetched
        path = storage.current().input(str(path), what)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) \
        | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except ValueError:  # a NUL byte in the name
        raise OdprepError(repr(str(path)), f"the {what} path holds a NUL byte", "Fix the name") from None
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            raise OdprepError(path, f"{what} not found", "Check the path") from None
        raise os_error(path, exc, f"read the {what}") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise OdprepError(path, f"the {what} is {_kind(mode)}, not a regular file",
                          "Point to a regular file")
    if hasattr(os, "set_blocking"):
        os.set_blocking(fd, True)
    return fd


def open_binary(path: Path | str, what: str = "file") -> IO[bytes]:
    """A regular file opened for reading bytes."""
    return os.fdopen(_open_regular(path, what), "rb")


@contextlib.contextmanager
def open_text(path: Path | str, what: str = "file", encoding: str = "utf-8") -> Iterator[IO[str]]:
    """A regular file opened as text (newlines kept as they are); decoding errors are OdprepErrors."""
    handle = os.fdopen(_open_regular(path, what), encoding=encoding, newline="")
    with handle:
        try:
            yield handle
        except UnicodeDecodeError:
            raise OdprepError(path, f"{what} is not UTF-8 text", "Save it as UTF-8") from None


def read_bytes(path: Path | str, what: str = "file") -> bytes:
    """The bytes of a regular file, or an OdprepError naming it."""
    with open_binary(path, what) as handle:
        try:
            return handle.read()
        except OSError as exc:
            raise os_error(path, exc, f"read the {what}") from None
        except MemoryError:
            raise OdprepError(path, f"the {what} does not fit in memory", "Check the file") from None


def read_text(path: Path | str, what: str, encoding: str = "utf-8") -> str:
    """A UTF-8 text file, or an OdprepError that names it and says what it should be."""
    with open_text(path, what, encoding) as handle:
        try:
            return handle.read()
        except OSError as exc:
            raise os_error(path, exc, f"read the {what}") from None


def require_dir(path: Path | str, what: str) -> Path:
    path = Path(path)
    try:
        if path.is_dir():
            return path
    except (OSError, ValueError):
        pass
    raise OdprepError(path, f"{what} not found (or not a folder)", "Check the path")


def list_files(folder: Path | str, what: str = "folder", unreadable: bool = False) -> list[str]:
    """Names of the regular files in a folder (links followed). Entries that cannot be
    followed (a link loop, a dangling link) and other non-folders (a FIFO) are left out;
    with ``unreadable`` they are listed too, so that reading them names what is wrong
    (an annotations folder: every entry there is meant to be read)."""
    try:
        entries = list(os.scandir(folder))
    except OSError as exc:
        raise os_error(folder, exc, f"list the {what}") from None
    names = []
    for entry in entries:
        try:
            if entry.is_file() or (unreadable and not entry.is_dir()):
                names.append(entry.name)
        except OSError:
            if unreadable:
                names.append(entry.name)
    return names


def is_regular_file(path: Path | str) -> bool:
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def inside(path: Path | str, root: Path | str) -> bool:
    """True if ``path`` lies within ``root`` by name: no '..' or absolute path leads out.
    Symbolic links inside the folder are the user's own and are followed as they are."""
    try:
        real, base = os.path.normpath(os.path.abspath(path)), os.path.normpath(os.path.abspath(root))
    except (OSError, ValueError):
        return False
    return real.startswith(base.rstrip(os.sep) + os.sep)


_DRIVE = re.compile(r"^[A-Za-z]:")


def below(root: Path | str, name: str, what: str, source: object = None) -> Path:
    """Where ``name`` (a bucket key, a file name or any other name that came from data,
    '/'-separated) lies inside ``root``. The one rule for names from data: they never
    lead outside their folder. A name with a '..' part (also between backslashes), an
    absolute or drive-letter start, or a NUL is refused in one line naming it; an odd
    but harmless name (spaces, '#', non-ASCII, a backslash in a file name) is kept.
    Checked by name, then with symbolic links resolved."""
    root = Path(root)
    shown = source if source is not None else name
    if "\0" in name or not name.strip("/"):
        raise OdprepError(shown, f"the {what} name {name!r} is empty or holds a NUL byte",
                          "Rename it")
    parts = name.split("/")
    if name.startswith(("/", "\\")) or _DRIVE.match(name) or \
            ".." in re.split(r"[\\/]", name):
        raise OdprepError(shown, f"the {what} name {name!r} leads outside its folder (a '..' or "
                          "absolute part); odprep never writes or reads there for a name from data",
                          "Rename or remove it")
    target = root.joinpath(*(part for part in parts if part not in ("", ".")))
    real_root = os.path.realpath(root)
    if not os.path.realpath(target).startswith(real_root.rstrip(os.sep) + os.sep):
        raise OdprepError(shown, f"the {what} name {name!r} leads outside its folder through a "
                          "symbolic link", "Rename or remove it")
    return target


def expand_paths(patterns: Iterable[Path | str]) -> list[Path]:
    """Paths as given; a pattern that is not a file but has glob characters (quoted, so the
    shell left it alone) is expanded, sorted. One that matches nothing is kept, to be
    reported by the caller."""
    from odprep import storage

    paths: list[Path] = []
    for pattern in map(str, patterns):
        if storage.is_url(pattern):
            pattern = str(storage.current().input(pattern, "records"))
        matches = sorted(glob.glob(pattern)) if glob.has_magic(pattern) and not os.path.lexists(pattern) \
            else []
        paths += [Path(m) for m in matches] or [Path(pattern)]
    return paths


def glob_files(pattern: str) -> list[Path]:
    """Regular files matching a glob pattern (or the path itself), sorted."""
    return sorted(Path(p) for p in glob.glob(pattern) if is_regular_file(p))


# --- output ----------------------------------------------------------------------------------

def _check_target(target: Path) -> None:
    try:
        if target.is_dir():
            raise OdprepError(target, "the output path is a folder", "Name a file")
    except (OSError, ValueError):
        pass


_made_for: dict[str, list[Path]] = {}  # temporary file -> the folders made for it (removed with it)
_live: set[str] = set()  # temporary files made and not yet committed or removed
_NAME_BYTES = 255


def _temp_prefix(name: str) -> str:
    """``.NAME.`` cut so that the temporary name (prefix, 8 random characters and the
    suffix) fits the 255 bytes a file name may have: a legal long name stays legal."""
    room = _NAME_BYTES - len(TEMP_SUFFIX) - 8 - 2 - len(".old")
    encoded = name.encode("utf-8", "surrogateescape")[:room]
    return "." + encoded.decode("utf-8", "ignore") + "."


def _missing_folders(folder: Path) -> list[Path]:
    missing = []
    while not os.path.lexists(folder) and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    return missing  # deepest first


def missing_folders(folder: Path | str) -> list[Path]:
    """The folders that do not exist yet on the way to ``folder``, deepest first: what a
    writer will make, to remove again if it fails (``remove_empty_folders``)."""
    return _missing_folders(Path(folder))


def remove_empty_folders(folders: Iterable[Path]) -> None:
    for folder in sorted(folders, key=lambda f: len(f.parts), reverse=True):  # deepest first
        with contextlib.suppress(OSError):
            os.rmdir(folder)  # only if empty


def temp_path_for(target: Path | str, mode: int | None = None) -> Path:
    """A fresh hidden temporary path in the target's directory (same filesystem). Folders
    made for it are removed again if it is discarded (``remove_quietly``)."""
    target = Path(target)
    _check_target(target)
    with held():  # the file and its registration are one step: an interrupt never leaves it unlisted
        try:
            made = _missing_folders(target.parent)
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix=_temp_prefix(target.name), suffix=TEMP_SUFFIX, dir=target.parent)
        except ValueError:
            raise OdprepError(repr(str(target)), "the output path holds a NUL byte", "Fix the name") from None
        except OSError as exc:
            raise os_error(target, exc, "write here") from None
        _live.add(name)
        if made:
            _made_for[name] = made
        try:
            if hasattr(os, "fchmod"):
                os.fchmod(fd, mode if mode is not None else 0o666 & ~_UMASK)  # mkstemp's 0600 would stay
        finally:
            os.close(fd)
    return Path(name)


def remove_leftover_temps() -> None:
    """Remove every temporary file this process made and neither committed nor removed:
    the last clean-up of a run that ends early, wherever the interrupt landed."""
    remove_quietly(list(_live))


def remove_quietly(paths: Iterable[Path | str]) -> None:
    """Remove temporary files, and the folders made for them once they are empty."""
    folders: set[Path] = set()
    with held():
        for path in paths:
            with contextlib.suppress(OSError):
                os.unlink(path)
            _live.discard(str(path))
            folders.update(_made_for.pop(str(path), ()))
        remove_empty_folders(folders)  # only if empty: another file may live there now


def _same_bytes(a: Path, b: Path) -> bool:
    try:
        return a.stat().st_size == b.stat().st_size and a.read_bytes() == b.read_bytes()
    except OSError:
        return False


def commit(pending: list[tuple[Path, Path]], exclusive: Iterable[Path] = ()) -> None:
    """Rename finished temporary files to their targets, all or nothing.

    Targets in ``exclusive`` are never replaced: if one appeared meanwhile with other
    content (another run), nothing is committed; with the same content the temp is dropped.
    """
    from odprep import storage

    remote = [(t, f) for t, f in pending if storage.is_url(f)]
    if remote:  # shards a Beam runner wrote straight to a bucket
        pending[:] = [pair for pair in pending if pair not in remote]
        storage.commit(remote)
    exclusive = {Path(p) for p in exclusive}
    staged = any(storage.is_url(storage.url_for(target)) for _, target in pending)  # published later
    for _, target in pending:
        _check_target(target)
    check_signals()  # a swallowed interrupt must never be followed by a commit
    with held():
        renamed: list[Path] = []
        backups: list[tuple[Path, Path]] = []
        try:
            for temp, target in pending:
                if target in exclusive:
                    try:
                        os.link(temp, target)  # fails if the target exists: no overwrite race
                    except FileExistsError:
                        if not _same_bytes(temp, target):
                            raise OdprepError(target, "a different file appeared here while odprep was "
                                              "writing (another run?); nothing was written",
                                              "Run once more, or pass --label-map to use that one")\
                                from None
                    else:
                        renamed.append(target)
                    os.unlink(temp)
                    continue
                if os.path.lexists(target):
                    backup = Path(f"{temp}.old")
                    os.replace(target, backup)
                    backups.append((backup, target))
                os.replace(temp, target)
                renamed.append(target)
        except BaseException as exc:
            for target in renamed:
                with contextlib.suppress(OSError):
                    os.unlink(target)
            for backup, target in backups:
                with contextlib.suppress(OSError):
                    os.replace(backup, target)
            for temp, _ in pending:
                with contextlib.suppress(OSError):
                    os.unlink(temp)
            if isinstance(exc, OSError):
                raise os_error(getattr(exc, "filename", None) or pending[0][1], exc, "write here") \
                    from None
            raise
        for backup, _ in backups:
            with contextlib.suppress(OSError):
                os.unlink(backup)
        if not staged:
            mark_committed()
    for temp, _ in pending:
        _made_for.pop(str(temp), None)  # the folders hold the output now
        _live.discard(str(temp))
    pending.clear()


def discard(pending: list[tuple[Path, Path]]) -> None:
    from odprep import storage

    storage.discard([pair for pair in pending if storage.is_url(pair[0])])
    remove_quietly(temp for temp, _ in pending if not storage.is_url(temp))
    pending.clear()


@contextlib.contextmanager
def atomic_write(target: Path | str, mode: str = "w", encoding: str | None = "utf-8",
                 newline: str | None = "", file_mode: int | None = None,
                 exclusive: bool = False) -> Iterator:
    """Open a temporary file that replaces ``target`` only if the block succeeds."""
    target = Path(target)
    tmp = temp_path_for(target, file_mode)
    try:
        kwargs = {"encoding": encoding, "newline": newline} if "b" not in mode else {}
        with open(tmp, mode, **kwargs) as handle:
            yield handle
        commit([(tmp, target)], exclusive=[target] if exclusive else ())
    except OSError as exc:
        remove_quietly([tmp])
        raise os_error(target, exc, "write here") from None
    except BaseException:
        remove_quietly([tmp])
        raise


def stage_text(target: Path | str, text: str) -> tuple[Path, Path]:
    """(temporary file holding ``text``, target): to be committed with others."""
    tmp = temp_path_for(target)
    try:
        with open(tmp, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
    except OSError as exc:
        remove_quietly([tmp])
        raise os_error(target, exc, "write here") from None
    return tmp, Path(target)


def write_text_atomic(target: Path | str, text: str, file_mode: int | None = None,
                      exclusive: bool = False) -> None:
    with atomic_write(target, file_mode=file_mode, exclusive=exclusive) as handle:
        handle.write(text)


def replace_in_place(path: Path | str, original: str, text: str) -> Path:
    """Write ``text`` over the file at ``path`` (through a symlink, keeping its mode),
    after saving ``original`` to the first free PATH.bak, PATH.bak.1, ... (an existing
    backup is never overwritten). Returns the backup's path."""
    real = Path(os.path.realpath(path))
    try:
        file_mode = stat.S_IMODE(os.stat(real).st_mode)
    except OSError as exc:
        raise os_error(path, exc, "read the config") from None
    for number in range(1000):
        backup = real.with_name(real.name + (".bak" if number == 0 else f".bak.{number}"))
        try:
            fd = os.open(backup, os.O_WRONLY | os.O_CREAT | os.O_EXCL, file_mode)
        except FileExistsError:
            continue
        except OSError as exc:
            raise os_error(backup, exc, "write the backup") from None
        break
    else:
        raise OdprepError(path, "1000 backups exist already", "Remove old .bak files")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(original)
    except BaseException:
        remove_quietly([backup])
        raise
    write_text_atomic(real, text, file_mode=file_mode)
    return backup
