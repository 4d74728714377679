"""Paths that are URLs (gs://, s3://, az://, hf://, memory://, anything fsspec serves).

The rest of odprep works on local paths, so a run with URLs goes through a
``Session``, one per command:

* annotation files and folders, label maps and configs are downloaded to a private
  temporary folder, concurrently (fsspec batches the requests);
* an images folder is listed once and mirrored by empty placeholder files, so the
  readers' lookups work unchanged; the encoders then fetch the images' bytes in
  batches (``fetched``), never one request at a time;
* outputs are written locally, all or nothing as usual, and published only when the
  command succeeded: uploaded under temporary names, then moved to their final names.
  On an error or a signal nothing is left at the output URLs, and the local folder
  is removed.

Messages name the URLs, not the temporary folder (``translate``). Storage settings
come from fsspec's own configuration (``FSSPEC_S3_ENDPOINT_URL``, ``~/.config/fsspec``)
and each cloud's usual credentials; ``--storage-option KEY=VALUE`` adds to them.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import glob
import json
import os
import re
import secrets
import shutil
import sys
import tempfile
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

from odprep.errors import OdprepError
from odprep.extras import install_hint
from odprep.fileio import below
from odprep.termination import held, mark_committed

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
FETCH_BATCH = 64
# Requests in flight per batch of images; unset: fsspec's default for the filesystem.
_CONCURRENCY = os.environ.get("ODPREP_FETCH_CONCURRENCY", "")
FETCH_CONCURRENCY = int(_CONCURRENCY) if _CONCURRENCY.isdigit() and int(_CONCURRENCY) > 0 else None
_session: Session | None = None
_options: dict[str, object] = {}
_filesystems: dict[tuple[int, str], object] = {}
_mirrors: dict[str, str] = {}  # local placeholder folder -> the URL of the images folder


def is_url(path: object) -> bool:
    """``gs://b/x``, ``s3://...``, ``memory://...``: anything with a scheme fsspec serves."""
    return bool(_URL.match(str(path))) and not str(path).startswith("file://")


def set_options(pairs: Iterable[str]) -> None:
    """``KEY=VALUE`` storage options (values read as JSON when they parse: true, 3, ...)."""
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise OdprepError("--storage-option", f"{pair!r} is not KEY=VALUE",
                              "Write e.g. --storage-option anon=true")
        try:
            _options[key] = json.loads(value)
        except ValueError:
            _options[key] = value


def filesystem(url: str):
    """(filesystem, path inside it) for a URL; one filesystem per process and protocol,
    so forked workers never reuse the parent's event loop."""
    import fsspec

    protocol = url.split("://", 1)[0]
    key = (os.getpid(), protocol)
    try:
        fs = _filesystems.get(key)
        if fs is None:
            cls = fsspec.get_filesystem_class(protocol)
            fs = _filesystems[key] = cls(**{**fsspec.config.conf.get(protocol, {}), **_options},
                                         skip_instance_cache=True)
        return fs, fs._strip_protocol(url)
    except ImportError as error:
        raise OdprepError(url, f"no storage library for {protocol}:// ({error})",
                          f"Install it, e.g. {install_hint(_EXTRAS.get(protocol, protocol))}") \
            from None
    except ValueError as error:
        raise OdprepError(url, f"unknown storage protocol {protocol}:// ({error})", "Check the URL") from None


def exists(url: str) -> bool:
    """Whether an object (or folder) is at ``url``. A missing storage library, or a store
    that cannot be reached, is an OdprepError that says so: never a silent "yes"."""
    fs, path = filesystem(url)
    try:
        return bool(_call(fs, "exists", path))
    except Exception as error:
        raise _storage_error(url, error, "check this path") from None


_EXTRAS = {"gs": "gcs", "gcs": "gcs", "s3": "s3", "s3a": "s3", "az": "azure", "abfs": "azure"}


def _call(fs, name: str, *args, **kwargs):
    """``fs.name(*args)``; on an async filesystem its coroutine is cancelled (and waited
    for) if a signal interrupts the wait, so no download goes on writing after clean-up."""
    if not getattr(fs, "async_impl", False) or getattr(fs, "loop", None) is None:
        return getattr(fs, name)(*args, **kwargs)
    finished = threading.Event()

    async def tracked():
        before = asyncio.all_tasks()
        try:
            return await getattr(fs, "_" + name)(*args, **kwargs)
        except asyncio.CancelledError:  # fsspec's batches run as tasks that outlive a cancel
            spawned = asyncio.all_tasks() - before - {asyncio.current_task()}
            for task in spawned:
                task.cancel()
            await asyncio.gather(*spawned, return_exceptions=True)
            raise
        finally:
            finished.set()

    future = asyncio.run_coroutine_threadsafe(tracked(), fs.loop)
    try:
        return future.result()
    except BaseException:
        future.cancel()
        finished.wait(timeout=30)
        raise


def commit(pending: list[tuple[str, str]]) -> None:
    """Move finished temporary objects to their final URLs; on a failure, remove them all."""
    moved: list[str] = []
    try:
        with held():
            for temp, final in pending:
                fs, source = filesystem(temp)
                fs.mv(source, fs._strip_protocol(final))
                moved.append(final)
    except BaseException as error:
        discard([*pending, *((m, m) for m in moved)])
        if isinstance(error, Exception):
            raise _storage_error(pending[0][1], error, "write here") from None
        raise


def discard(pending: list[tuple[str, str]]) -> None:
    """Remove temporary objects (those already moved or never written are ignored)."""
    with held():
        for temp, _ in pending:
            with contextlib.suppress(Exception):
                fs, path = filesystem(temp)
                fs.rm(path)


class StreamingShards:
    """Shards written straight to object storage under temporary names: each is an fsspec
    file whose blocks are uploaded as they fill (S3 multipart, GCS resumable uploads).
    ``pending`` pairs them with their final URLs for ``commit``; ``abort`` removes them."""

    def __init__(self, urls: list[str]) -> None:
        token = secrets.token_hex(4)
        self.pending = [(f"{url}.odprep-tmp-{token}", url) for url in urls]
        self.files: list = []
        for temp, _ in self.pending:
            fs, path = filesystem(temp)
            try:
                self.files.append(fs.open(path, "wb"))
            except Exception as error:
                self.abort()
                raise _storage_error(temp, error, "write here") from None

    def write(self, index: int, data) -> None:
        try:
            self.files[index].write(data)
        except Exception as error:
            raise _storage_error(self.pending[index][1], error, "write the records") from None

    def close(self) -> None:
        """Finish every upload (the objects still have their temporary names)."""
        for index, handle in enumerate(self.files):
            try:
                handle.close()
            except Exception as error:
                raise _storage_error(self.pending[index][1], error, "write the records") from None

    def abort(self) -> None:
        with held():
            for handle in self.files:
                with contextlib.suppress(Exception):
                    handle.discard()  # S3: the multipart upload is aborted
                with contextlib.suppress(Exception):
                    handle.closed = True  # never completed later, by the garbage collector
            discard(self.pending)


def streaming_shards(paths: list[Path]) -> StreamingShards | None:
    """For shards whose folder stands for a URL, their streaming uploads; else None."""
    urls = [url_for(path) for path in paths]
    return StreamingShards(urls) if is_url(urls[0]) else None


def _storage_error(url: str, error: BaseException, doing: str) -> OdprepError:
    if isinstance(error, OdprepError):
        return error
    if isinstance(error, FileNotFoundError):
        return OdprepError(url, "not found", "Check the URL")
    if isinstance(error, PermissionError):
        return OdprepError(url, f"cannot {doing}: permission denied", "Check the credentials")
    detail = " ".join(str(error).split())[:200] or type(error).__name__
    return OdprepError(url, f"cannot {doing}: {detail}", "Check the URL, the credentials and the "
                       "storage settings (fsspec configuration or --storage-option)")


def _join(url: str, relative: str) -> str:
    return url.rstrip("/") + "/" + relative


@dataclasses.dataclass
class _Output:
    local: Path  # the folder the command writes into
    url: str  # the folder it stands for
    before: dict[Path, bytes]  # files downloaded into it first (e.g. an existing label map)


class Session:
    """The staging of one command's URLs (see the module docstring)."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="odprep-remote-"))
        self.names: dict[str, str] = {}  # local folder -> URL, for messages
        self.outputs: list[_Output] = []

    def _folder(self) -> Path:
        folder = self.root / str(len(self.names))
        folder.mkdir()
        return folder

    def _remember(self, local: Path, url: str) -> Path:
        self.names[str(local)] = url.rstrip("/")
        return local

    def input(self, url: str, what: str) -> Path:
        """A local copy of a remote file or folder (folders are fetched concurrently)."""
        fs, path = filesystem(url)
        folder = self._folder()
        try:
            if glob.has_magic(path):  # matched as tf.io.gfile.glob would: * stays in a folder
                prefix = path[:path.find(next(c for c in path if c in "*?["))].rpartition("/")[0]
                local = _download(fs, sorted(fs.glob(path)), prefix, folder / "g", url)
                self._remember(local, _join(url.split("://")[0] + ":/", prefix))
                return local / os.path.relpath(path, prefix)
            if fs.isdir(path):
                return self._remember(_download(fs, fs.find(path), path, folder / "d", url), url)
            local = below(folder, path.rstrip("/").rsplit("/", 1)[-1] or "file", "object", url)
            _call(fs, "get", path, str(local))
            return self._remember(local, url)
        except FileNotFoundError:
            raise OdprepError(url, f"{what} not found", "Check the URL") from None
        except OdprepError:
            raise
        except Exception as error:
            raise _storage_error(url, error, f"read the {what}") from None

    def images(self, url: str) -> Path:
        """A local folder of empty placeholders, one per remote file; bytes come later."""
        fs, path = filesystem(url)
        local = self._folder() / "images"
        try:
            if not fs.isdir(path):
                raise OdprepError(url, "images directory not found (or not a folder)", "Check the URL")
            files = [f for f in fs.find(path) if not f.endswith("/")]
        except OdprepError:
            raise
        except Exception as error:
            raise _storage_error(url, error, "list the images directory") from None
        targets = _local_targets(local, files, path, url)
        local.mkdir()
        for target in targets:
            _make_parents(target, local)
            target.touch()
        _mirrors[str(local)] = url.rstrip("/")
        return self._remember(local, url)

    def output(self, url: str, label_map_name: str | None = "label_map.pbtxt") -> Path:
        """A local path to write ``url`` at; published by ``publish``. An existing label map
        beside it is fetched first, so that it is checked as a local one would be."""
        fs, path = filesystem(url)
        parent_url, _, name = url.rstrip("/").rpartition("/")
        if not name or parent_url.endswith(":/"):
            raise OdprepError(url, "the output URL names no file", "Add a file name, e.g. "
                              "gs://bucket/out/train.record")
        local = self._folder()
        before: dict[Path, bytes] = {}
        if label_map_name:
            existing = local / label_map_name
            try:
                fs.get(_join(fs._strip_protocol(parent_url), label_map_name), str(existing))
                before[existing] = existing.read_bytes()
            except FileNotFoundError:
                pass
            except Exception as error:
                raise _storage_error(parent_url, error, "read the output folder") from None
        self.outputs.append(_Output(local, parent_url, before))
        self._remember(local, parent_url)
        return local / name

    def output_folder(self, url: str) -> Path:
        """A local folder to write into; its files are published under ``url``."""
        filesystem(url)
        local = self._folder()
        self.outputs.append(_Output(local, url.rstrip("/"), {}))
        return self._remember(local, url)

    def publish(self) -> None:
        """Upload what the command wrote under temporary names, then move each to its final
        name. Anything uploaded is removed again if this fails or is interrupted."""
        token = secrets.token_hex(4)
        for output in self.outputs:
            files = sorted(p for p in output.local.rglob("*") if p.is_file() and not p.is_symlink()
                           and output.before.get(p) != _read(p))
            if not files:
                continue
            fs, base = filesystem(output.url)
            finals = [_join(base, p.relative_to(output.local).as_posix()) for p in files]
            temps = [f"{final}.odprep-tmp-{token}" for final in finals]
            moved: list[str] = []
            try:
                for start in range(0, len(files), 16):
                    with held():  # a signal waits for the batch in flight, then cleans it up
                        fs.put([str(p) for p in files[start:start + 16]], temps[start:start + 16])
                with held():
                    for temp, final in zip(temps, finals, strict=True):
                        fs.mv(temp, final)
                        moved.append(final)
            except BaseException as error:
                with held():
                    for leftover in temps + moved:
                        with contextlib.suppress(Exception):
                            fs.rm(leftover)
                if isinstance(error, Exception):
                    raise _storage_error(output.url, error, "write here") from None
                raise
        if self.outputs:
            mark_committed()

    def translate(self, text: str) -> str:
        for local, url in self.names.items():
            text = text.replace(local, url)
        return text

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def _local_targets(local: Path, keys: list[str], base: str, url: str) -> list[Path]:
    """Where each object under ``base`` is staged: its key below ``base``, inside ``local``
    and never outside it (``fileio.below``: a key holding '..' or an absolute part is
    refused, naming it). Nothing is created until every key has passed."""
    prefix = base.rstrip("/") + "/"
    scheme = url.split("://", 1)[0]
    targets = []
    for key in keys:
        shown = f"{scheme}://{key}"
        if not key.startswith(prefix):
            raise OdprepError(shown, f"the object's key is not below {prefix!r}", "Check the URL")
        targets.append(below(local, key[len(prefix):], "object", shown))
    return targets


def _make_parents(target: Path, local: Path) -> None:
    """Create the folders above a staged object; a key that is a file and a folder at once
    (``a`` and ``a/b``) is named."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise OdprepError(target.relative_to(local).as_posix(), "this object's key is both a file "
                          "and a folder in the store", "Rename one of them") from None


def _download(fs, files: list[str], base: str, local: Path, url: str) -> Path:
    """Fetch these remote files (concurrently) into ``local``, keeping their keys below
    ``base`` (each one checked to stay inside ``local``)."""
    files = [f for f in files if not f.endswith("/")]
    targets = _local_targets(local, files, base, url)
    local.mkdir()
    for target in targets:
        _make_parents(target, local)
    if files:
        _call(fs, "get", files, [str(t) for t in targets])
    return local


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes() if path.stat().st_size < 1 << 20 else None
    except OSError:
        return None


def current() -> Session:
    """The session of this command, started on first use."""
    global _session
    if _session is None:
        _session = Session()
        sys.stdout = _Translating(sys.stdout)
        sys.stderr = _Translating(sys.stderr)
    return _session


def publish() -> None:
    """Publish the outputs staged for URLs (call when the command has succeeded)."""
    if _session is not None:
        _session.publish()


def close() -> None:
    """Remove the local staging folder (after success, an error or a signal)."""
    if _session is not None:
        with held():
            _session.close()


class _Translating:
    """A text stream that names URLs instead of their local stand-ins."""

    def __init__(self, stream) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        session = _session
        return self._stream.write(session.translate(text) if session is not None else text)

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


def mirrors() -> dict[str, str]:
    """The placeholder folders of remote images, and their URLs (shipped to Beam workers)."""
    return dict(_mirrors)


def use_mirrors(mapping: dict[str, str]) -> None:
    _mirrors.update(mapping)


def url_for(path: Path | str) -> str:
    """The URL a local stand-in (a staged input or output) stands for; else the path."""
    text = str(path)
    for local, url in sorted(_names().items(), key=lambda item: -len(item[0])):
        if text == local or text.startswith(local + "/"):
            return url + text[len(local):]
    return text


def _names() -> dict[str, str]:
    return _session.names if _session is not None else {}


def fetched(records: list) -> list:
    """The records, with the bytes of mirrored remote images fetched in one batched request
    per filesystem (the encoders then read ``image_data``)."""
    if not _mirrors:
        return records
    wanted: dict[int, str] = {}
    for index, record in enumerate(records):
        if record.image_data is not None:
            continue
        url = _mirrored_url(Path(record.image_path))
        if url is not None:
            wanted[index] = url
    if not wanted:
        return records
    fs, _ = filesystem(next(iter(wanted.values())))
    paths = {index: fs._strip_protocol(url) for index, url in wanted.items()}
    try:
        extra = {"batch_size": FETCH_CONCURRENCY} if FETCH_CONCURRENCY else {}
        blobs = _call(fs, "cat", list(paths.values()), on_error="return", **extra)
    except Exception as error:
        raise _storage_error(next(iter(wanted.values())), error, "read the images") from None
    out = list(records)
    for index, path in paths.items():
        data = blobs.get(path)
        if isinstance(data, BaseException) or data is None:
            raise _storage_error(wanted[index], data or FileNotFoundError(), "read the image")
        out[index] = dataclasses.replace(records[index], image_data=bytes(data))
    return out


def _mirrored_url(path: Path) -> str | None:
    for local, url in _mirrors.items():
        try:
            relative = path.relative_to(local)
        except ValueError:
            continue
        if ".." in relative.parts or (os.path.isdir(local) and not path.is_file()):
            return None  # not listed: reported as a missing image, like a local one
        return _join(url, relative.as_posix())
    return None


def fetched_in_batches(records: Iterable) -> Iterator:
    """``fetched`` over a stream, FETCH_BATCH records at a time."""
    if not _mirrors:
        yield from records
        return
    batch: list = []
    for record in records:
        batch.append(record)
        if len(batch) == FETCH_BATCH:
            yield from fetched(batch)
            batch = []
    yield from fetched(batch)
