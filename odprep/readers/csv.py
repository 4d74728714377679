"""CSV box annotations (one row per object) to ImageRecords, one per image.

The default schema is the tutorials': filename,width,height,class,xmin,ymin,xmax,ymax
in pixels. Columns are found by header name in any order; ``columns`` maps other
names (e.g. {"class": "cell_type"}). width/height are optional. A row whose class
and box are empty stands for an image without objects.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

from odprep.errors import OdprepError
from odprep.model import ImageRecord, ObjectAnnotation
from odprep.readers.common import ImageIndex, OnInvalid, raise_or_skip

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
    """(line number, {canonical name: stripped value}) for every data row."""
    try:
        handle = open(path, newline="", encoding="utf-8-sig")  # noqa: SIM115
    except FileNotFoundError:
        raise OdprepError(path, "file not found", "Check the path") from None
    with handle:
        reader = csv.reader(handle, skipinitialspace=True)
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            raise OdprepError(path, "empty CSV", "Add a header and rows") from None
        except UnicodeDecodeError:
            raise OdprepError(path, "not UTF-8 text", "Save the CSV as UTF-8") from None
        lookup = {h.lower(): i for i, h in enumerate(header)}
        wanted = {name: (columns or {}).get(name, name) for name in REQUIRED + OPTIONAL}
        positions = {}
        for name, column in wanted.items():
            if column.lower() in lookup:
                positions[name] = lookup[column.lower()]
            elif name in REQUIRED:
                raise OdprepError(path, f"no {column!r} column (columns: {', '.join(header)})",
                                  f"Rename it, or map it with --columns {name}=YOUR_COLUMN")
        try:
            for row in reader:
                if not any(cell.strip() for cell in row):
                    continue
                values = {name: (row[i].strip() if i < len(row) else "") for name, i in positions.items()}
                yield reader.line_num, values
        except UnicodeDecodeError:
            raise OdprepError(path, "not UTF-8 text", "Save the CSV as UTF-8") from None
        except csv.Error as exc:
            raise OdprepError(path, f"line {reader.line_num}: malformed CSV ({exc})", "Fix the row") \
                from None


def _number(value: str, name: str, path: Path, where: str) -> float:
    try:
        return float(value)
    except ValueError:
        problem = f"{name} is missing" if not value else f"{name} {value!r} is not a number"
        raise OdprepError(path, problem, "Fix the row", where) from None


def _size(values: dict[str, str], path: Path, where: str) -> tuple[int | None, int | None]:
    size = []
    for name in ("width", "height"):
        raw = values.get(name, "")
        if not raw:
            size.append(None)
            continue
        number = _number(raw, name, path, where)
        if number != int(number) or number < 0:
            raise OdprepError(path, f"{name} {raw!r} is not a whole number of pixels", "Fix the row",
                              where)
        size.append(int(number) or None)
    return size[0], size[1]


def read_csv(path: Path | str, images_dir: Path | str, columns: dict[str, str] | None = None,
             normalized: bool = False, on_invalid: OnInvalid | None = None) -> Iterator[ImageRecord]:
    """Yield one record per image (rows grouped by filename, first-seen order)."""
    path = Path(path)
    index = ImageIndex(images_dir)
    groups: dict[str, list[tuple[int, dict[str, str]]]] = {}
    for line, values in _rows(path, columns):
        if not values["filename"]:
            raise_or_skip(on_invalid, "skipped_object",
                          OdprepError(path, "filename is empty", "Fix the row", f"line {line}"))
            continue
        groups.setdefault(values["filename"], []).append((line, values))
    if not groups:
        raise OdprepError(path, "no annotations found (no data rows)", "Add rows")
    for filename, rows in groups.items():
        try:
            yield _record(path, index, filename, rows, normalized, on_invalid)
        except OdprepError as error:
            raise_or_skip(on_invalid, "skipped_image", error)


def _record(path: Path, index: ImageIndex, filename: str, rows, normalized: bool,
            on_invalid: OnInvalid | None) -> ImageRecord:
    sizes = {_size(values, path, f"line {line}") for line, values in rows}
    if len(sizes) > 1:
        raise OdprepError(path, f"rows for {filename} disagree on the image size: "
                          f"{sorted(sizes, key=str)}", "Make width/height the same on every row",
                          f"line {rows[0][0]}")
    width, height = sizes.pop()
    objects = []
    for line, values in rows:
        where = f"line {line}"
        coords = [values[k] for k in ("xmin", "ymin", "xmax", "ymax")]
        if not values["class"] and not any(coords):
            continue  # an image without objects
        try:
            if not values["class"]:
                raise OdprepError(path, "class is empty", "Fix the row", where)
            where = f"line {line} ({values['class']})"
            xmin, ymin, xmax, ymax = (_number(values[k], k, path, where)
                                      for k in ("xmin", "ymin", "xmax", "ymax"))
            objects.append(ObjectAnnotation(values["class"], xmin, ymin, xmax, ymax, ref=where))
        except OdprepError as error:
            raise_or_skip(on_invalid, "skipped_object", error)
    image_path = index.exact(filename) or index.root / filename
    return ImageRecord(image_path=image_path, filename=filename, source_id=filename,
                       annotation_path=str(path), width=width, height=height, objects=tuple(objects),
                       normalized_boxes=normalized, ref=f"line {rows[0][0]}")


def csv_class_names(path: Path | str, columns: dict[str, str] | None = None) -> list[str]:
    """Every class name in first-seen order."""
    return [values["class"] for _, values in _rows(Path(path), columns) if values["class"]]
