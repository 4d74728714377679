"""YOLO labels (Ultralytics, Roboflow, Darknet) to ImageRecords.

One ``.txt`` per image, one object per line, normalised: ``class cx cy w h`` for a box, or
``class x1 y1 x2 y2 x3 y3 ...`` for a segment (its box is the polygon's extent; with
--include-masks the polygon becomes the mask). An image without a label file, or with
an empty one, is a negative. Class names come from a ``data.yaml`` (``names`` as a
list or an ``{id: name}`` map) or a text file with one name per line.

With a ``data.yaml`` as the source, its ``train``/``val``/``test`` entries (folders or
list files, under ``path:``) are the splits, and each image's labels are found the way
Ultralytics finds them: the last ``/images/`` of its path becomes ``/labels/``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from odprep.errors import OdprepError
from odprep.fileio import is_regular_file, list_files, read_text, require_dir
from odprep.model import ImageRecord, ObjectAnnotation
from odprep.readers.common import (
    IMAGE_EXTENSIONS,
    LazyRecords,
    OnInvalid,
    build_all,
    finite_number,
    raise_or_skip,
)
from odprep.yamlsize import refuse_alias_bombs

TOLERANCE = 1e-3  # normalised values may overshoot [0, 1] by this much (rounding in the files)


def read_names(path: Path | str) -> list[str]:
    """Class names by id, from a data.yaml or a text file of names (one per line)."""
    path = Path(path)
    if path.suffix.lower() in (".yaml", ".yml"):
        return _names_from_yaml(_load_yaml(path), path)
    names = [line.strip() for line in read_text(path, "names file", encoding="utf-8-sig").splitlines()]
    while names and not names[-1]:
        names.pop()
    if not names or not all(names):
        raise OdprepError(path, "a class name is empty (or the file has none)", "Write one name per line")
    return names


def _load_yaml(path: Path) -> dict:
    from ruamel.yaml import YAML

    text = read_text(path, "data.yaml", encoding="utf-8-sig")
    try:
        data = YAML(typ="safe", pure=True).load(text)
    except Exception as exc:  # noqa: BLE001 - any loader failure means it is not valid YAML
        raise OdprepError(path, f"not valid YAML ({str(exc).splitlines()[0][:100]})", "Fix the file") \
            from None
    refuse_alias_bombs(data, path)
    if not isinstance(data, dict):
        raise OdprepError(path, "not a YOLO data.yaml (no mapping at the top)", "Give it names: and train:")
    return data


def _names_from_yaml(data: dict, path: Path) -> list[str]:
    names = data.get("names")
    if isinstance(names, dict):
        if not all(isinstance(k, int) and not isinstance(k, bool) for k in names) \
                or sorted(names) != list(range(len(names))):
            raise OdprepError(path, "names: the ids are not 0..N-1", "Number the classes from 0")
        names = [names[i] for i in range(len(names))]
    if not isinstance(names, list) or not names or not all(isinstance(n, str | int) and str(n) for n in names):
        raise OdprepError(path, "names is not a list (or {id: name} map) of class names", "Fix names:")
    names = [str(n) for n in names]
    if len(set(names)) != len(names):
        raise OdprepError(path, "a class name is listed twice", "List every class once")
    return names


def label_path_for(image: Path) -> Path:
    """Ultralytics' rule: the last /images/ of the path becomes /labels/, the suffix .txt."""
    text = str(image)
    marker = f"{os.sep}images{os.sep}"
    if marker in text:
        head, tail = text.rsplit(marker, 1)
        text = f"{head}{os.sep}labels{os.sep}{tail}"
    return Path(text).with_suffix(".txt")


def _parse_line(line: str, number: int, path: Path, names: list[str], where_image: str) -> ObjectAnnotation:
    fields = line.split()
    where = f"line {number}"
    if len(fields) < 5 or (len(fields) > 5 and len(fields) % 2 == 0):
        raise OdprepError(path, f"{len(fields)} field(s); a line is 'class cx cy w h' or 'class x1 y1 x2 y2 "
                          "x3 y3 ...'", "Fix the line", where)
    raw_class = fields[0]
    class_value = finite_number(raw_class, "class", path, where)
    if class_value != int(class_value) or not 0 <= class_value < len(names):
        raise OdprepError(path, f"class {raw_class!r} is not an id of the {len(names)} names (0.."
                          f"{len(names) - 1})", "Fix the class id, or the names", where)
    label = names[int(class_value)]
    where = f"line {number} ({label[:60]})"
    values = [finite_number(v, "a coordinate", path, where) for v in fields[1:]]
    outside = [v for v in values if not -TOLERANCE <= v <= 1 + TOLERANCE]
    if outside:
        raise OdprepError(path, f"value {outside[0]:g} is outside [0, 1]; YOLO coordinates are normalised",
                          "Divide x by the image width and y by its height", where)
    segmentation = None
    if len(values) == 4:
        cx, cy, w, h = values
        xmin, xmax, ymin, ymax = cx - w / 2, cx + w / 2, cy - h / 2, cy + h / 2
    else:
        xs, ys = values[0::2], values[1::2]
        xmin, xmax, ymin, ymax = min(xs), max(xs), min(ys), max(ys)
        segmentation = [values]
    return ObjectAnnotation(label=label, xmin=xmin, ymin=ymin, xmax=xmax, ymax=ymax,
                            segmentation=segmentation, ref=where)


def _objects(label_file: Path | None, names: list[str], on_invalid: OnInvalid | None,
             image: str) -> tuple[ObjectAnnotation, ...]:
    if label_file is None:
        return ()
    objects = []
    text = read_text(label_file, "label file", encoding="utf-8-sig")
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            objects.append(_parse_line(line, number, label_file, names, image))
        except OdprepError as error:
            raise_or_skip(on_invalid, "skipped_object", error)
    return tuple(objects)


def _record(image: Path, label_file: Path | None, names: list[str], on_invalid: OnInvalid | None,
            root: Path | None) -> ImageRecord:
    filename = image.relative_to(root).as_posix() if root is not None else image.name
    return ImageRecord(image_path=image, filename=filename, source_id=filename,
                       annotation_path=str(label_file or image), normalized_boxes=True,
                       objects=_objects(label_file, names, on_invalid, filename), image_root=root)


def _images_in(folder: Path) -> list[Path]:
    require_dir(folder, "images directory")
    return [folder / name for name in sorted(list_files(folder, "images directory"))
            if os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS]


class YoloDataset:
    """Images of a folder with their label files (by stem in a labels folder, or by
    Ultralytics' images/ -> labels/ rule). Records are built on demand."""

    def __init__(self, images: list[Path], labels: list[Path | None], names: list[str],
                 on_invalid: OnInvalid | None = None, root: Path | None = None) -> None:
        self.images, self.labels, self.names = images, labels, names
        self.on_invalid, self.root = on_invalid, root

    def __len__(self) -> int:
        return len(self.images)

    def record(self, position: int) -> ImageRecord:
        return _record(self.images[position], self.labels[position], self.names, self.on_invalid, self.root)

    def as_sequence(self) -> Sequence[ImageRecord]:
        if self.on_invalid is not None:  # skips must be reported by this process
            return build_all(len(self), self.record, self.on_invalid)
        return LazyRecords(len(self), self.record)


def read_yolo(labels_dir: Path | str, images_dir: Path | str, names: list[str],
              on_invalid: OnInvalid | None = None, allow_outside: bool = False) -> YoloDataset:
    """Every image of ``images_dir``, with ``labels_dir/STEM.txt`` when there is one. A label
    file without an image is bad input (the wrong folder, most often)."""
    labels_dir = require_dir(labels_dir, "labels directory")
    images = _images_in(Path(images_dir))
    by_stem = {Path(name).stem: labels_dir / name for name in list_files(labels_dir, "labels directory", unreadable=True)
               if name.lower().endswith(".txt") and name.lower() != "classes.txt"}
    stems = {image.stem for image in images}
    orphans = sorted(stem for stem in by_stem if stem not in stems)
    if orphans and len(orphans) == len(by_stem):
        raise OdprepError(images_dir, f"0 of {len(by_stem)} label files have an image here (first: "
                          f"{by_stem[orphans[0]].name})", "Check --images-dir")
    for stem in orphans:
        _orphan(by_stem[stem], on_invalid)
    labels = [by_stem.get(image.stem) for image in images]
    if not images:
        raise OdprepError(images_dir, "no images found", "Check --images-dir")
    return YoloDataset(images, labels, names, on_invalid, None if allow_outside else Path(images_dir))


def _orphan(label_file: Path, on_invalid: OnInvalid | None) -> None:
    raise_or_skip(on_invalid, "skipped_image", OdprepError(
        label_file, "label file without an image", "Add the image, or pass --skip-invalid"))


def _orphans_beside(images: list[Path]) -> Iterator[Path]:
    """Label files beside these images' labels whose image is not in the images folder:
    the same policy as a labels folder given on its own (bad input, or a counted skip)."""
    for image_folder in sorted({image.parent for image in images}):
        label_folder = label_path_for(image_folder / "x").parent
        if label_folder == image_folder or not os.path.isdir(label_folder):
            continue
        stems = {os.path.splitext(name)[0] for name in list_files(image_folder, "images directory")
                 if os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS}
        for name in sorted(list_files(label_folder, "labels directory", unreadable=True)):
            stem, extension = os.path.splitext(name)
            if extension.lower() == ".txt" and name.lower() != "classes.txt" and stem not in stems:
                yield label_folder / name


def read_yolo_yaml(data_yaml: Path | str, on_invalid: OnInvalid | None = None
                   ) -> tuple[dict[str, YoloDataset], list[str]]:
    """The splits of an Ultralytics data.yaml (train/val/test that it names) and the names."""
    data_yaml = Path(data_yaml)
    data = _load_yaml(data_yaml)
    names = _names_from_yaml(data, data_yaml)
    root = Path(str(data.get("path") or "."))
    if not root.is_absolute():
        root = data_yaml.parent / root
    splits: dict[str, YoloDataset] = {}
    for split in ("train", "val", "test"):
        entry = data.get(split)
        if not entry:
            continue
        images: list[Path] = []
        for item in entry if isinstance(entry, list) else [entry]:
            images += _split_images(root, str(item), data_yaml)
        if not images:
            raise OdprepError(data_yaml, f"{split}: no images found in {entry!r}", "Check the paths")
        labels = [label if os.path.lexists(label := label_path_for(image)) else None for image in images]
        for orphan in _orphans_beside(images):
            _orphan(orphan, on_invalid)
        splits[split] = YoloDataset(images, labels, names, on_invalid, None)
    if not splits:
        raise OdprepError(data_yaml, "no train, val or test entry", "Name the image folders or list files")
    return splits, names


def _split_images(root: Path, item: str, data_yaml: Path) -> list[Path]:
    path = Path(item) if Path(item).is_absolute() else root / item
    if not os.path.exists(path) and item.startswith("../") and os.path.exists(root / item[3:]):
        path = root / item[3:]  # Ultralytics' rule, which Roboflow's exports (train: ../train/images) rely on
    if item.lower().endswith(".txt") and is_regular_file(path):
        images = []
        for line in read_text(path, "image list").splitlines():
            line = line.strip()
            if not line:
                continue
            entry = Path(line)
            if line.startswith("./"):
                entry = path.parent / line[2:]
            elif not entry.is_absolute():
                entry = root / line
            images.append(entry)
        return images
    if not os.path.isdir(path):
        raise OdprepError(data_yaml, f"{item!r} is {path}, which is neither a folder of images nor a list "
                          f"file (entries are relative to path:, here {root})",
                          "Fix the entry, or path: (a missing '../x' is also tried as 'x', as Ultralytics does)")
    return _images_in(path)
