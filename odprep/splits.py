"""Train/val/test splits by image, and repeat-factor oversampling of the train split.

Splits are deterministic for a seed, never put one image in two splits, have
sizes within one image of the fractions, and are stratified: images are placed
rarest class first, each into the split that most lacks that class.
"""

from __future__ import annotations

import math
import random
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from odprep.errors import OdprepError
from odprep.fileio import is_regular_file, read_bytes
from odprep.model import ImageRecord
from odprep.readers.segmentation import read_list_file


def parse_split_spec(spec: str) -> dict[str, float]:
    """'train=0.8,val=0.2' -> {"train": 0.8, "val": 0.2}; fractions must sum to 1."""
    fractions: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, sep, value = part.partition("=")
        try:
            fraction = float(value)
        except ValueError:
            fraction = -1.0
        if not sep or not name.strip() or not 0 < fraction <= 1 or name.strip() in fractions:
            raise OdprepError("--split", f"{part!r} is not NAME=FRACTION (0 < fraction <= 1, each name "
                              "once)", "Example: --split train=0.8,val=0.2")
        fractions[name.strip()] = fraction
    if not fractions or abs(sum(fractions.values()) - 1.0) > 1e-6:
        raise OdprepError("--split", f"fractions sum to {sum(fractions.values()):g}, not 1",
                          "Example: --split train=0.8,val=0.1,test=0.1")
    return fractions


@dataclass(frozen=True)
class RecordStub:
    """What splitting and oversampling read of a record, for records built on demand."""

    position: int
    labels: tuple[str, ...]
    annotation_path: str
    filename: str
    image: str = ""  # the image file (example.image_identity), "" for embedded data


def stubs_of(records: Sequence[ImageRecord]) -> list[RecordStub]:
    """One pass that builds each record, keeps its stub and drops it; two annotation files
    that name one image are refused here, before a split could put them apart."""
    from odprep.example import claim_image, image_identity

    seen: dict[str, str] = {}
    stubs = []
    for i, record in enumerate(records):
        image = image_identity(record)
        claim_image(seen, image, record.annotation_path)
        stubs.append(RecordStub(i, tuple(record.labels), record.annotation_path, record.filename, image))
    return stubs


def split_sizes(total: int, fractions: dict[str, float]) -> dict[str, int]:
    """Largest-remainder sizes: each within one image of fraction * total, summing to total."""
    exact = {name: f * total for name, f in fractions.items()}
    sizes = {name: math.floor(v) for name, v in exact.items()}
    by_remainder = sorted(fractions, key=lambda n: (-(exact[n] - sizes[n]), list(fractions).index(n)))
    for name in by_remainder[: total - sum(sizes.values())]:
        sizes[name] += 1
    return sizes


def near_duplicate_pairs(images: Sequence[str], workers: int = 1) -> tuple[list[tuple[int, int]], list[str]]:
    """Positions of images that look alike (perceptual hash within ``leakage.NEAR`` bits,
    mirrors included): each image read (from its bucket, for remote images) and hashed once,
    in ``workers`` processes, then compared in blocks. Also the images that could not be
    hashed (unreadable, or not decodable: the writer reports those), to be counted."""
    import numpy as np

    from odprep.checks.leakage import NEAR
    from odprep.datasummary import hamming
    from odprep.parallel import ordered_map

    chunks = [list(images[i:i + 256]) for i in range(0, len(images), 256)]
    found = [h for chunk in ordered_map(_hash_files, chunks, max(1, workers)) for h in chunk]
    hashes = np.array([h[0] if h else 0 for h in found], dtype=np.uint64)
    mirrored = np.array([h[1] if h else 0 for h in found], dtype=np.uint64)
    unhashed = [images[i] or f"image {i + 1} (embedded)" for i, h in enumerate(found) if h is None]
    valid = np.array([i for i, h in enumerate(found) if h is not None], dtype=np.int64)
    pairs = []
    for i in valid:
        later = valid[valid > i]
        if not later.size:
            break
        distance = np.minimum(hamming(hashes[later], int(hashes[i])), hamming(mirrored[later], int(hashes[i])))
        pairs += [(int(i), int(j)) for j in later[distance <= NEAR]]
    return pairs, unhashed


def _hash_files(paths: list[str]) -> list[tuple[int, int] | None]:
    from odprep import storage
    from odprep.datasummary import dhash

    records = [ImageRecord(Path(path), "", "", "") for path in paths if path]
    try:
        data = {str(r.image_path): r.image_data for r in storage.fetched(records)}  # remote images
    except OdprepError:  # counted below as images that could not be read
        data = {}
    out = []
    for path in paths:
        found = None
        try:
            if path:
                blob = data.get(path)
                found = dhash(blob if blob is not None else read_bytes(path, "image"))
        except (OdprepError, OSError):
            found = None
        out.append(found)  # a flat picture hashes to 0: a hash still, unlike None
    return out


def grouper(pattern: str | None) -> Callable[[str], str]:
    """The group of an image from its file name: what ``--group-by REGEX`` captures (its
    first group, or the whole match), else the source its name says (Roboflow's copies of
    one photo share one); a name that does not match is its own group."""
    from odprep.datasummary import source_group

    if pattern is None:
        return source_group
    try:
        compiled = re.compile(pattern)
    except re.error as error:
        raise OdprepError("--group-by", f"{pattern!r} is not a regular expression ({error})",
                          "Fix it, e.g. --group-by '^(video\\d+)_'") from None

    def group(filename: str) -> str:
        found = compiled.search(filename)
        if found is None:
            return "\0" + filename
        return found.group(1) if compiled.groups else found.group(0)

    return group


def split_records(records: list[ImageRecord], fractions: dict[str, float], seed: int = 0,
                  group_of: Callable[[str], str] | None = None,
                  together: Sequence[tuple[int, int]] = ()) -> dict[str, list[ImageRecord]]:
    """Stratified, deterministic split; images of one group (``group_of`` their file name:
    copies of one photo, frames of one video; or joined by a pair in ``together``, such as
    near-duplicates) always land in one split. Output order follows the input order."""
    sizes = split_sizes(len(records), fractions)
    names = list(fractions)
    group_of = group_of or grouper(None)
    parent = list(range(len(records)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first_of: dict[str, int] = {}
    links = [(first_of.setdefault(group_of(record.filename), i), i) for i, record in enumerate(records)]
    for a, b in [*links, *together]:
        parent[find(a)] = find(b)
    groups: dict[int, list[int]] = {}
    for i in range(len(records)):
        groups.setdefault(find(i), []).append(i)
    members = list(groups.values())
    labels_of = [set(label for i in group for label in records[i].labels) for group in members]
    class_images = Counter(label for r in records for label in set(r.labels))
    wanted = {(c, s): n * fractions[s] for c, n in class_images.items() for s in names}
    have: Counter = Counter()
    room = dict(sizes)
    order = list(range(len(members)))
    random.Random(seed).shuffle(order)

    def rarest(g: int) -> tuple[int, str]:
        if not labels_of[g]:
            return (len(records) + 1, "")
        return min((class_images[c], c) for c in labels_of[g])

    order.sort(key=rarest)
    assignment: dict[int, str] = {}
    for g in order:
        _, rare = rarest(g)
        size = len(members[g])
        fitting = [s for s in names if room[s] >= size] or [s for s in names if room[s] > 0] or names
        best = max(fitting, key=lambda s: (wanted.get((rare, s), 0) - have[(rare, s)],
                                           room[s] / max(sizes[s], 1), -names.index(s)))
        for i in members[g]:
            assignment[i] = best
        room[best] -= size
        for label in labels_of[g]:
            have[(label, best)] += sum(1 for i in members[g] if label in records[i].labels)
    return {s: [records[i] for i in range(len(records)) if assignment[i] == s] for s in names}


def record_stem(record: ImageRecord) -> str:
    """The name VOC ImageSets lists use: the annotation's stem (or the image's)."""
    source = Path(record.annotation_path)
    return source.stem if source.suffix.lower() == ".xml" else Path(record.filename).stem


def split_from_lists(records: list[ImageRecord], folder: Path | str) -> tuple[dict[str, list[ImageRecord]],
                                                                              list[str]]:
    """Splits from VOC ImageSets/Main/{train,val,test,trainval}.txt; returns the splits
    and the stems of records that no list names. An image in two lists is an error."""
    folder = Path(folder)
    lists = {name: read_list_file(folder / f"{name}.txt") for name in ("train", "val", "test")
             if is_regular_file(folder / f"{name}.txt")}
    if not lists:
        raise OdprepError(folder, "no train.txt, val.txt or test.txt here",
                          "Point to VOC's ImageSets/Main folder")
    where: dict[str, str] = {}
    for name, stems in lists.items():
        for stem in stems:
            if stem in where and where[stem] != name:
                raise OdprepError(folder, f"{stem} is in both {where[stem]}.txt and {name}.txt",
                                  "An image must be in one split only")
            where[stem] = name
    splits: dict[str, list[ImageRecord]] = {name: [] for name in lists}
    unlisted = []
    for record in records:
        name = where.get(record_stem(record))
        if name is None:
            unlisted.append(record_stem(record))
        else:
            splits[name].append(record)
    return splits, unlisted


def repeat_factors(records: list[ImageRecord], threshold: float) -> list[float]:
    """LVIS repeat factor per image: max over its classes of max(1, sqrt(t / f_c)),
    f_c being the fraction of images that contain class c."""
    if not records:
        return []
    class_images = Counter(label for r in records for label in set(r.labels))
    per_class = {c: max(1.0, math.sqrt(threshold / (n / len(records)))) for c, n in class_images.items()}
    return [max((per_class[c] for c in set(r.labels)), default=1.0) for r in records]


def oversample(records: list[ImageRecord], threshold: float, seed: int = 0,
               rounding: str = "stochastic") -> list[ImageRecord]:
    """Repeat each image round(r) times (stochastic rounding, or ceil), deterministically;
    repeats are spread by a seeded shuffle so they do not sit next to each other."""
    rng = random.Random(seed)
    out: list[ImageRecord] = []
    for record, factor in zip(records, repeat_factors(records, threshold), strict=True):
        if rounding == "ceil":
            times = math.ceil(factor - 1e-9)
        else:
            times = math.floor(factor) + (rng.random() < factor - math.floor(factor))
        out += [record] * max(1, times)
    rng.shuffle(out)
    return out
