"""CSV box annotations (one row per object) to ImageRecords, one per image.

The default schema is the tutorials': filename,width,height,class,xmin,ymin,xmax,ymax
in pixels. Columns are found by header name in any order; ``columns`` maps other
names (e.g. {"class": "cell_type"}). width/height are optional. A row whose class
and box are empty stands for an image without objects.
"""

from __future__ import annotations

import csv
from array import array
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from odprep.errors import OdprepError
from odprep.fileio import open_text
from odprep.model import ImageRecord, ObjectAnnotation
from odprep.readers.common import ImageIndex, OnInvalid, finite_number, pixel_size, raise_or_skip

REQUIRED = ("filename", "class", "xmin", "ymin", "xmax", "ymax")
OPTIONAL = ("width", "height")


def parse_column_mapping(text: str | None) -> dict[str, str]:
    """'class=cell_type,xmin=x1' -> {"class": "cell_type", "xmin": "x1"}."""
    mapping: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in (text or "").split(","))):
        ours, sep, theirs = part.partition("=")
        if not sep or ours.strip() not in REQUIRED + OPTIONAL:
            raise OdprepError("--columns", f"{part!r} is not NAME=HEADER with NAME one of "
                              f"{', '.join(REQUIRED + OPTIONAL)}", "Example: --columns class=cell_type")
        mapping[ours.strip()] = theirs.strip()
    return mapping


def _rows(path: Path, columns: dict[str, str] | None) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, {canonical name: stripped value}) for every data row, streamed."""
    with open_text(path, "CSV", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle, skipinitialspace=True)
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            raise OdprepError(path, "empty CSV", "Add a header and rows") from None
        except csv.Error as exc:
            raise OdprepError(path, f"line 1: malformed CSV ({exc})", "Fix the header") from None
        lookup = {h.lower(): i for i, h in enumerate(header)}
        wanted = {name: (columns or {}).get(name, name) for name in REQUIRED + OPTIONAL}
        positions = {}
        for name, column in wanted.items():
            if column.lower() in lookup:
                positions[name] = lookup[column.lower()]
            elif name in REQUIRED:
                raise OdprepError(path, f"no {column!r} column (columns: {', '.join(header)[:200]})",
                                  f"Rename it, or map it with --columns {name}=YOUR_COLUMN")
        try:
            for row in reader:
                if not any(cell.strip() for cell in row):
                    continue
                values = {name: (row[i].strip() if i < len(row) else "") for name, i in positions.items()}
                yield reader.line_num, values
        except csv.Error as exc:
            raise OdprepError(path, f"line {reader.line_num}: malformed CSV ({exc})", "Fix the row") \
                from None


class CsvDataset(Sequence):
    """A CSV read once into compact columns (about 44 bytes a row), grouped by image.
    Records are built on demand, so forked writer workers build their own."""

    def __init__(self, path: Path | str, images_dir: Path | str, columns: dict[str, str] | None = None,
                 normalized: bool = False, on_invalid: OnInvalid | None = None,
                 allow_outside: bool = False) -> None:
        self.path = Path(path)
        self.index = ImageIndex(images_dir, allow_outside)
        self.normalized = normalized
        self.filenames: list[str] = []
        self.sizes: list[tuple[int | None, int | None]] = []
        self.first_line = array("q")
        self.classes: list[str] = []
        image_of, line_of, class_of = array("i"), array("q"), array("i")
        coords = [array("d") for _ in range(4)]
        images: dict[str, int] = {}
        class_ids: dict[str, int] = {}
        rejected: set[int] = set()
        for line, values in _rows(self.path, columns):
            where = f"line {line}"
            filename = values["filename"]
            if not filename:
                raise_or_skip(on_invalid, "skipped_object",
                              OdprepError(self.path, "filename is empty", "Fix the row", where))
                continue
            image = images.get(filename)
            size = _size(values, self.path, where)
            if image is None:
                image = images[filename] = len(self.filenames)
                self.filenames.append(filename)
                self.sizes.append(size)
                self.first_line.append(line)
            elif size != self.sizes[image] and image not in rejected:
                rejected.add(image)
                raise_or_skip(on_invalid, "skipped_image", OdprepError(
                    self.path, f"rows for {filename} disagree on the image size: {self.sizes[image]} and "
                    f"{size}", "Make width/height the same on every row", where))
            box = [values[k] for k in ("xmin", "ymin", "xmax", "ymax")]
            if not values["class"] and not any(box):
                continue  # a row for an image without objects
            try:
                if not values["class"]:
                    raise OdprepError(self.path, "class is empty", "Fix the row", where)
                where = f"line {line} ({values['class'][:80]})"
                numbers = [finite_number(v, k, self.path, where) for v, k in
                           zip(box, ("xmin", "ymin", "xmax", "ymax"), strict=True)]
            except OdprepError as error:
                raise_or_skip(on_invalid, "skipped_object", error)
                continue
            label = class_ids.get(values["class"])
            if label is None:
                label = class_ids[values["class"]] = len(self.classes)
                self.classes.append(values["class"])
            image_of.append(image)
            line_of.append(line)
            class_of.append(label)
            for column, number in zip(coords, numbers, strict=True):
                column.append(number)
        if not self.filenames:
            raise OdprepError(self.path, "no annotations found (no data rows)", "Add rows")
        self.keep = [i for i in range(len(self.filenames)) if i not in rejected]
        by_image = np.frombuffer(image_of, dtype=np.int32) if image_of else np.zeros(0, np.int32)
        self.rows = np.argsort(by_image, kind="stable")  # rows grouped by image, in file order
        self.starts = np.concatenate([[0], np.cumsum(np.bincount(by_image, minlength=len(self.filenames)))])
        self.row_line, self.row_class, self.coords = line_of, class_of, coords

    def __len__(self) -> int:
        return len(self.keep)

    def __getitem__(self, position):
        if isinstance(position, slice):
            return [self[i] for i in range(*position.indices(len(self)))]
        image = self.keep[position]
        objects = []
        for row in self.rows[self.starts[image]:self.starts[image + 1]].tolist():
            label = self.classes[self.row_class[row]]
            xmin, ymin, xmax, ymax = (column[row] for column in self.coords)
            objects.append(ObjectAnnotation(label, xmin, ymin, xmax, ymax,
                                            ref=f"line {self.row_line[row]} ({label[:80]})"))
        filename = self.filenames[image]
        width, height = self.sizes[image]
        image_path = self.index.exact(filename) or self.index.root / filename
        return ImageRecord(image_path=image_path, filename=filename, source_id=filename,
                           annotation_path=str(self.path), width=width, height=height,
                           objects=tuple(objects), normalized_boxes=self.normalized,
                           ref=f"line {self.first_line[image]}", image_root=self.index.confinement)

    def class_names(self) -> list[str]:
        return list(self.classes)


def _size(values: dict[str, str], path: Path, where: str) -> tuple[int | None, int | None]:
    return pixel_size(values.get("width", ""), "width", path, where), \
        pixel_size(values.get("height", ""), "height", path, where)


def read_csv(path: Path | str, images_dir: Path | str, columns: dict[str, str] | None = None,
             normalized: bool = False, on_invalid: OnInvalid | None = None,
             allow_outside: bool = False) -> CsvDataset:
    """One record per image (rows grouped by filename, first-seen order), built on demand."""
    return CsvDataset(path, images_dir, columns, normalized, on_invalid, allow_outside)


def csv_class_names(path: Path | str, columns: dict[str, str] | None = None) -> list[str]:
    """Every class name in first-seen order."""
    return [values["class"] for _, values in _rows(Path(path), columns) if values["class"]]
