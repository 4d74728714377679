"""Stream records through the encoder into (sharded) TFRecord files.

Record i goes to shard i % N, so the output is the same for any number of
workers. Every shard is written to a temporary file and renamed only when the
whole run succeeded; an error or Ctrl-C leaves nothing at the output paths.
"""

from __future__ import annotations

import contextlib
import gc
import glob
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from odprep import storage
from odprep.beam import BeamRunner
from odprep.errors import OdprepError
from odprep.example import EncodedImage, EncodeOptions, claim_image, encode_record
from odprep.fileio import commit, discard, os_error, remove_quietly, temp_path_for
from odprep.labelmap import LabelMap
from odprep.model import ImageRecord
from odprep.parallel import default_workers, fork_available, keep_freed_memory, ordered_map
from odprep.termination import check as check_signals
from odprep.termination import held
from odprep.tfrecord import copy_range, write_all


def shard_paths(output: Path | str, num_shards: int) -> list[Path]:
    """The OD API's naming: OUTPUT-00000-of-00010 ...; a single file is OUTPUT itself."""
    output = Path(output)
    if num_shards < 1:
        raise ValueError("num_shards must be at least 1")
    if num_shards == 1:
        return [output]
    return [output.with_name(f"{output.name}-{i:05d}-of-{num_shards:05d}") for i in range(num_shards)]


@dataclass
class Summary:
    """What a conversion did, for the one-screen report."""

    images: int = 0
    negatives: int = 0
    objects: int = 0
    class_counts: Counter = field(default_factory=Counter)
    class_images: Counter = field(default_factory=Counter)
    skipped_images: list[str] = field(default_factory=list)
    skipped_objects: list[str] = field(default_factory=list)
    clipped: list[str] = field(default_factory=list)
    rounded: list[str] = field(default_factory=list)
    oriented: list[str] = field(default_factory=list)  # EXIF orientation: re-oriented, or left as stored
    warnings: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    image_bytes: int = 0
    output_bytes: int = 0
    resized: int = 0  # images --max-size shrank
    resized_bytes_before: int = 0
    resized_bytes_after: int = 0
    seconds: float = 0.0
    has_masks: bool = False
    segmentation_masks: int = 0
    pending: list[tuple[Path, Path]] = field(default_factory=list, repr=False)  # (temp, final)
    images_seen: dict[str, str] = field(default_factory=dict, repr=False)  # image file -> annotation file

    def add(self, encoded: EncodedImage) -> None:
        claim_image(self.images_seen, encoded.image, encoded.source)
        for event in encoded.events:
            {"warning": self.warnings, "clipped": self.clipped, "rounded": self.rounded, "oriented": self.oriented,
             "skipped_object": self.skipped_objects,
             "skipped_image": self.skipped_images}[event.kind].append(event.message)
        if encoded.skipped:
            return
        self.images += 1
        self.negatives += not encoded.labels and not encoded.segmentation
        self.segmentation_masks += encoded.segmentation
        self.objects += len(encoded.labels)
        self.class_counts.update(encoded.labels)
        self.class_images.update(set(encoded.labels))
        self.image_bytes += encoded.image_bytes
        self.output_bytes += encoded.record_size
        if encoded.resized_from:
            self.resized += 1
            self.resized_bytes_before += encoded.resized_from
            self.resized_bytes_after += encoded.image_bytes
        self.has_masks |= encoded.has_masks

    def on_invalid(self, kind: str, error) -> None:
        """Record what a reader skipped under --skip-invalid."""
        (self.skipped_images if kind == "skipped_image" else self.skipped_objects).append(str(error))

    def merge(self, other: Summary) -> None:
        for name in ("images", "negatives", "objects", "image_bytes", "output_bytes", "seconds",
                     "segmentation_masks", "resized", "resized_bytes_before", "resized_bytes_after"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for name in ("class_counts", "class_images"):
            getattr(self, name).update(getattr(other, name))
        for name in ("skipped_images", "skipped_objects", "clipped", "rounded", "oriented", "warnings", "files"):
            getattr(self, name).extend(getattr(other, name))
        self.has_masks |= other.has_masks


ProgressFactory = Callable[[int | None], object]


def _earlier_outputs(output: Path | str, paths: list[Path]) -> list[str]:
    """Files beside OUTPUT from another run (the unsharded file, or shards of another count)
    that a glob such as OUTPUT* would read along with the new ones."""
    output = Path(output)
    if storage.is_url(storage.url_for(output)):
        return []
    found = {Path(p) for p in glob.glob(glob.escape(str(output)) + "-[0-9][0-9][0-9][0-9][0-9]-of-[0-9]*")}
    if output.exists():
        found.add(output)
    others = sorted(str(p) for p in found - set(paths))
    if not others:
        return []
    return [f"{output}: {len(others)} earlier output(s) beside it are not this run's ({', '.join(others[:3])}"
            f"{', ...' if len(others) > 3 else ''}); a glob over them reads both sets: remove them"]


def write_records(records: Iterable[ImageRecord], output: Path | str, label_map: LabelMap,
                  num_shards: int = 1, workers: int | BeamRunner | None = None,
                  options: EncodeOptions = EncodeOptions(),
                  progress: ProgressFactory | None = None, total: int | None = None,
                  defer_commit: bool = False) -> Summary:
    """Encode and write records; return the summary. Raises OdprepError on bad input
    (unless the options skip it) and then leaves no output behind.

    With ``defer_commit`` the finished temporary files are left in
    ``summary.pending`` for the caller to ``commit`` or ``discard`` (used to make
    several splits all-or-nothing)."""
    notes = []
    if total is None and isinstance(records, Sequence):
        total = len(records)
    if total and num_shards > total:  # never an empty shard (validate and trainers stumble on them)
        notes.append(f"{output}: --num-shards {num_shards} for {total} image(s): {total} shard(s) written")
        num_shards = total
    paths = shard_paths(output, num_shards)
    notes += _earlier_outputs(output, paths)
    if isinstance(workers, BeamRunner):
        return _write_with_beam(records, output, paths, label_map, options, workers, defer_commit)
    workers = default_workers() if workers is None else max(1, workers)
    keep_freed_memory()  # inherited by the workers forked below
    summary = Summary()
    started = time.perf_counter()
    temps: list[Path] = []
    fds: list[int] = []
    bar = progress(total) if progress else None
    remote = None
    try:
        remote = storage.streaming_shards(paths)  # a URL's shards upload while they are written
        if remote is None:
            for path in paths:
                temps.append(temp_path_for(path))
                fds.append(os.open(temps[-1], os.O_WRONLY | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0)))
        sink = _ShardSink(fds, remote)
        if workers == 1:
            for record in storage.fetched_in_batches(records):  # a lazy Sequence builds each here
                encoded = encode_record(record, label_map, options)
                if not encoded.skipped:
                    sink.write(encoded.parts)
                    encoded.parts = None
                summary.add(encoded)
                check_signals()
                if bar is not None:
                    bar.update(1)
        else:
            _write_parallel(records, paths[0], label_map, options, workers, sink, summary, bar)
        while fds:
            os.close(fds.pop())  # popped first: an interrupt can never close an fd twice
        if summary.images == 0 and not options.allow_empty:
            raise OdprepError(output, f"no image was written: {_why_empty(summary)}",
                              "Fix the input, or pass --allow-empty to write an empty file on purpose")
        if remote is not None:
            remote.close()
            summary.pending, remote = list(remote.pending), None
        else:
            summary.pending = list(zip(temps, paths, strict=True))
        if not defer_commit:
            commit(summary.pending)
        temps = []
        summary.files = paths
        summary.warnings += notes
    except OSError as exc:
        raise os_error(output, exc, "write the records") from None
    finally:
        with held():
            if bar is not None:
                bar.close()
            while fds:
                with contextlib.suppress(OSError):
                    os.close(fds.pop())
            remove_quietly(temps)
            if remote is not None:
                remote.abort()
    summary.seconds = time.perf_counter() - started
    return summary


def _write_with_beam(records: Iterable[ImageRecord], output: Path | str, paths: list[Path],
                     label_map: LabelMap, options: EncodeOptions, runner: BeamRunner,
                     defer_commit: bool) -> Summary:
    from odprep import beam

    summary = Summary()
    started = time.perf_counter()
    beam.write(runner, records, paths, label_map, options, summary)
    try:
        if summary.images == 0 and not options.allow_empty:
            raise OdprepError(output, f"no image was written: {_why_empty(summary)}",
                              "Fix the input, or pass --allow-empty to write an empty file on purpose")
        if not defer_commit:
            commit(summary.pending)
    except BaseException:
        discard(summary.pending)
        raise
    summary.files = paths
    summary.seconds = time.perf_counter() - started
    return summary


def _why_empty(summary: Summary) -> str:
    if summary.skipped_images:
        return f"all {len(summary.skipped_images)} image(s) were skipped (first: {summary.skipped_images[0]})"
    return "the input holds no images"


class _ShardSink:
    """Round-robin over shard files: the i-th written record goes to shard i % N."""

    def __init__(self, fds: list[int], remote: storage.StreamingShards | None = None) -> None:
        self.fds = fds
        self.remote = remote
        self.count = 0

    def write(self, parts: list) -> None:
        if self.remote is not None:
            self.remote.write(self.count % len(self.remote.files), b"".join(parts))
        else:
            write_all(self.fds[self.count % len(self.fds)], parts)
        self.count += 1

    def append_range(self, source_fd: int, offset: int, length: int) -> None:
        """The next record, copied (in the kernel) from another file."""
        if self.remote is not None:
            self.remote.write(self.count % len(self.remote.files), os.pread(source_fd, length, offset))
        else:
            copy_range(source_fd, self.fds[self.count % len(self.fds)], offset, length)
        self.count += 1


# --- parallel: workers write chunk files, the parent stitches them in order ------------------

CHUNK_SIZE = 32
_worker_state: dict = {}


@dataclass
class _ChunkResult:
    path: Path
    sizes: list[int]  # bytes of each written record, in order, back to back in the file
    images: list[EncodedImage]


def _init_worker(label_map: LabelMap, options: EncodeOptions, shared: Sequence | None = None) -> None:
    _worker_state.update(label_map=label_map, options=options, shared=shared)


def _encode_chunk(task: tuple[Path, list[ImageRecord] | range]) -> _ChunkResult:
    """Encode a chunk of records (or of positions in the inherited record list) and
    write them, in order, to a chunk file."""
    path, records = task
    if isinstance(records, range):
        records = _worker_state["shared"][records.start:records.stop]
    records = storage.fetched(list(records))  # remote images: one batched request
    encoded = [encode_record(r, _worker_state["label_map"], _worker_state["options"]) for r in records]
    sizes = []
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0), 0o600)
    try:
        for item in encoded:
            if not item.skipped:
                sizes.append(write_all(fd, item.parts))
                item.parts = None
    finally:
        os.close(fd)
    return _ChunkResult(path, sizes, encoded)


def _write_parallel(records: Iterable[ImageRecord], first_path: Path, label_map: LabelMap,
                    options: EncodeOptions, workers: int, sink: _ShardSink, summary: Summary,
                    bar) -> None:
    """Chunks of records are encoded and written by worker processes; the parent copies
    each record's bytes (kernel-side) to shard (number written so far) % N, in input order."""
    prefix = temp_path_for(first_path)
    chunk_paths: list[Path] = []
    # Objects that exist now (annotations, a COCO JSON) are moved out of the cyclic GC's
    # reach: otherwise every collection in the forked workers walks them, dirtying their
    # copy-on-write pages and costing time that grows with the dataset.
    gc.freeze()
    # Forked workers inherit a record list: tasks are then positions, nothing is pickled.
    shared = records if isinstance(records, Sequence) and fork_available() else None

    def positions():
        for start in range(0, len(shared), CHUNK_SIZE):
            chunk_paths.append(prefix.with_name(f"{prefix.name}.{len(chunk_paths)}"))
            yield chunk_paths[-1], range(start, min(start + CHUNK_SIZE, len(shared)))

    def tasks():
        chunk: list[ImageRecord] = []
        for record in records:
            chunk.append(record)
            if len(chunk) == CHUNK_SIZE:
                chunk_paths.append(prefix.with_name(f"{prefix.name}.{len(chunk_paths)}"))
                yield chunk_paths[-1], chunk
                chunk = []
        if chunk:
            chunk_paths.append(prefix.with_name(f"{prefix.name}.{len(chunk_paths)}"))
            yield chunk_paths[-1], chunk

    results = ordered_map(_encode_chunk, positions() if shared is not None else tasks(), workers,
                          in_flight_per_worker=3, initializer=_init_worker,
                          initargs=(label_map, options, shared))
    try:
        for result in results:
            source = os.open(result.path, os.O_RDONLY)
            try:
                offset = 0
                for length in result.sizes:
                    sink.append_range(source, offset, length)
                    offset += length
            finally:
                os.close(source)
                result.path.unlink(missing_ok=True)
            check_signals()
            for item in result.images:
                summary.add(item)
            if bar is not None:
                bar.update(len(result.images))
    finally:
        results.close()  # stops the workers before their chunk files are removed
        gc.unfreeze()
        remove_quietly([prefix, *chunk_paths])


def tqdm_progress(quiet: bool = False) -> ProgressFactory | None:
    """A tqdm bar on stderr when it is a terminal; None in pipes, CI or with --quiet."""
    if quiet or not sys.stderr.isatty() or os.environ.get("CI"):
        return None
    from tqdm import tqdm

    return lambda total: tqdm(total=total, unit="img", file=sys.stderr, leave=False)
