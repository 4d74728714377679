"""Stream records through the encoder into (sharded) TFRecord files.

Record i goes to shard i % N, so the output is the same for any number of
workers. Every shard is written to a temporary file and renamed only when the
whole run succeeded; an error or Ctrl-C leaves nothing at the output paths.
"""

from __future__ import annotations

import functools
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from odprep.example import EncodedImage, EncodeOptions, encode_record
from odprep.fileio import temp_path_for
from odprep.labelmap import LabelMap
from odprep.model import ImageRecord
from odprep.parallel import default_workers, ordered_map


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
    warnings: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    image_bytes: int = 0
    output_bytes: int = 0
    seconds: float = 0.0
    has_masks: bool = False
    segmentation_masks: int = 0
    sha256s: set[str] = field(default_factory=set, repr=False)
    pending: list[tuple[Path, Path]] = field(default_factory=list, repr=False)  # (temp, final)

    def add(self, encoded: EncodedImage) -> None:
        for event in encoded.events:
            {"warning": self.warnings, "clipped": self.clipped, "rounded": self.rounded,
             "skipped_object": self.skipped_objects,
             "skipped_image": self.skipped_images}[event.kind].append(event.message)
        if encoded.framed is None:
            return
        self.images += 1
        self.negatives += not encoded.labels and not encoded.segmentation
        self.segmentation_masks += encoded.segmentation
        self.objects += len(encoded.labels)
        self.class_counts.update(encoded.labels)
        self.class_images.update(set(encoded.labels))
        self.image_bytes += encoded.image_bytes
        self.output_bytes += len(encoded.framed)
        self.has_masks |= encoded.has_masks
        self.sha256s.add(encoded.sha256)

    def on_invalid(self, kind: str, error) -> None:
        """Record what a reader skipped under --skip-invalid."""
        (self.skipped_images if kind == "skipped_image" else self.skipped_objects).append(str(error))

    def merge(self, other: Summary) -> None:
        for name in ("images", "negatives", "objects", "image_bytes", "output_bytes", "seconds",
                     "segmentation_masks"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for name in ("class_counts", "class_images"):
            getattr(self, name).update(getattr(other, name))
        for name in ("skipped_images", "skipped_objects", "clipped", "rounded", "warnings", "files"):
            getattr(self, name).extend(getattr(other, name))
        self.has_masks |= other.has_masks
        self.sha256s |= other.sha256s


ProgressFactory = Callable[[int | None], object]


def write_records(records: Iterable[ImageRecord], output: Path | str, label_map: LabelMap,
                  num_shards: int = 1, workers: int | None = None,
                  options: EncodeOptions = EncodeOptions(),
                  progress: ProgressFactory | None = None, total: int | None = None,
                  defer_commit: bool = False) -> Summary:
    """Encode and write records; return the summary. Raises OdprepError on bad input
    (unless the options skip it) and then leaves no output behind.

    With ``defer_commit`` the finished temporary files are left in
    ``summary.pending`` for the caller to ``commit`` or ``discard`` (used to make
    several splits all-or-nothing)."""
    paths = shard_paths(output, num_shards)
    workers = default_workers() if workers is None else max(1, workers)
    summary = Summary()
    started = time.perf_counter()
    temps: list[Path] = []
    handles = []
    bar = progress(total) if progress else None
    try:
        for path in paths:
            temps.append(temp_path_for(path))
            handles.append(open(temps[-1], "wb", buffering=1 << 20))  # noqa: SIM115
        encode = functools.partial(encode_record, label_map=label_map, options=options)
        written = 0
        for encoded in ordered_map(encode, records, workers):
            summary.add(encoded)
            if encoded.framed is not None:
                handles[written % num_shards].write(encoded.framed)
                written += 1
            if bar is not None:
                bar.update(1)
        for handle in handles:
            handle.close()
        summary.pending = list(zip(temps, paths, strict=True))
        if not defer_commit:
            commit(summary.pending)
        temps = []
        summary.files = paths
    finally:
        if bar is not None:
            bar.close()
        for handle in handles:
            handle.close()
        for temp in temps:
            temp.unlink(missing_ok=True)
    summary.seconds = time.perf_counter() - started
    return summary


def commit(pending: list[tuple[Path, Path]]) -> None:
    """Rename finished temporary files into place."""
    for temp, path in pending:
        os.replace(temp, path)
    pending.clear()


def discard(pending: list[tuple[Path, Path]]) -> None:
    for temp, _ in pending:
        temp.unlink(missing_ok=True)
    pending.clear()


def tqdm_progress(quiet: bool = False) -> ProgressFactory | None:
    """A tqdm bar on stderr when it is a terminal; None in pipes, CI or with --quiet."""
    if quiet or not sys.stderr.isatty() or os.environ.get("CI"):
        return None
    from tqdm import tqdm

    return lambda total: tqdm(total=total, unit="img", file=sys.stderr, leave=False)
