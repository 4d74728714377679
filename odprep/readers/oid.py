"""Open Images (V6/V7) box CSVs to ImageRecords, read with pyarrow's CSV parser.

The box CSV has one row per box (``ImageID,...,LabelName,...,XMin,XMax,YMin,YMax,
IsOccluded,IsTruncated,IsGroupOf,IsDepiction``), normalised; it can hold millions of rows,
so it is read at once into compact columns and records are built on demand. Labels are
MIDs; ``class/text`` (and the label map's name) is the class's display name from the
descriptions file (with or without a header row). Only images with rows are written.
Verified image-level labels (``--image-labels``) become ``image/class/{label,text}``.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from odprep import keys
from odprep.errors import OdprepError
from odprep.fileio import open_binary, open_text
from odprep.model import ImageRecord, ObjectAnnotation
from odprep.readers.common import ImageIndex

BOX_COLUMNS = ("ImageID", "LabelName", "XMin", "XMax", "YMin", "YMax")
FLAGS = {"IsOccluded": "occluded", "IsTruncated": "truncated", "IsGroupOf": "group_of",
         "IsDepiction": "depiction"}
OID_OBJECT_KEYS = (keys.OCCLUDED, keys.TRUNCATED, keys.GROUP_OF, keys.DEPICTION)
TOLERANCE = 1e-3


def _read(path: Path, what: str, strings: tuple[str, ...] = (), wanted: tuple[str, ...] | None = None):
    """A CSV with a header row as a DataFrame. The ``strings`` columns are parsed as text,
    never as numbers: an Open Images ID such as 0000048549557964 keeps its zeros (pandas'
    ``dtype`` is applied only after pyarrow has read such a column as an integer). Read with
    pyarrow's multi-threaded parser into Arrow columns when pyarrow imports (pyarrow >= 20
    needs NumPy 2, which TensorFlow 2.15 setups lack), else with pandas' C engine."""
    import pandas as pd

    try:
        with open_binary(path, what) as handle:
            first = handle.readline().decode("utf-8-sig", errors="replace")
            header = next(csv.reader([first]), [])
            columns = [c for c in header if wanted is None or c in wanted]
            handle.seek(0)
            try:
                import pyarrow as pa
                import pyarrow.csv as pacsv
            except ImportError:
                return pd.read_csv(handle, engine="c", usecols=columns,
                                   dtype={c: str for c in strings if c in header}, keep_default_na=False)
            table = pacsv.read_csv(handle, convert_options=pacsv.ConvertOptions(
                include_columns=columns, column_types={c: pa.string() for c in strings if c in header}))
            return table.to_pandas(types_mapper=pd.ArrowDtype)
    except OdprepError:
        raise
    except Exception as exc:  # noqa: BLE001 - pyarrow's parse errors have many types
        raise OdprepError(path, f"not a readable CSV ({str(exc).splitlines()[0][:160]})", "Fix the file") \
            from None


def read_class_descriptions(path: Path | str) -> dict[str, str]:
    """MID -> display name, from a descriptions CSV with or without its header row."""
    path = Path(path)
    try:
        with open_text(path, "class descriptions") as handle:
            rows = list(csv.reader(handle))  # a few thousand rows at most
    except csv.Error as exc:
        raise OdprepError(path, f"not a readable CSV ({exc})", "Fix the file") from None
    if any(len(row) < 2 for row in rows if row):
        raise OdprepError(path, "needs two columns: LabelName (MID), DisplayName", "Pass the descriptions CSV")
    pairs = [(row[0].strip(), row[1].strip()) for row in rows if row]
    if pairs and pairs[0] == ("LabelName", "DisplayName"):
        pairs = pairs[1:]
    names: dict[str, str] = {}
    for mid, name in pairs:
        if names.setdefault(mid, name) != name:
            raise OdprepError(path, f"{mid} is listed twice, as {names[mid]!r} and as {name!r}",
                              "Keep one display name per MID")
    if not names or any(not mid or not name or name == "nan" for mid, name in pairs):
        raise OdprepError(path, "a row has no MID or no display name", "Fix the descriptions CSV")
    return names


class OpenImagesDataset:
    """The box CSV as compact columns, grouped by image, first-seen order."""

    def __init__(self, boxes_csv: Path | str, images_dir: Path | str, descriptions: dict[str, str],
                 image_labels: Path | str | None = None, allow_outside: bool = False) -> None:
        self.path = Path(boxes_csv)
        self.index = ImageIndex(images_dir, allow_outside)
        table = _read(self.path, "box CSV", strings=("ImageID", "LabelName", *FLAGS),
                      wanted=(*BOX_COLUMNS, *FLAGS))
        missing = [c for c in BOX_COLUMNS if c not in table.columns]
        if missing:
            raise OdprepError(self.path, f"no {', '.join(missing)} column(s) (columns: "
                              f"{', '.join(map(str, table.columns))[:200]})", "Pass an Open Images box CSV")
        if table.empty:
            raise OdprepError(self.path, "no box rows", "Pass the box CSV of a split")
        images, self.image_ids = _factorize(table["ImageID"], "ImageID", self.path)
        self.mids = _factorize(table["LabelName"], "LabelName", self.path)
        unknown = sorted(set(self.mids[1]) - set(descriptions))
        if unknown:
            raise OdprepError(self.path, f"{len(unknown)} LabelName(s) are not in the class descriptions "
                              f"(first: {unknown[0]})", "Pass the matching descriptions CSV")
        self.names = [descriptions[mid] for mid in self.mids[1]]
        self.coords = {}
        for column in ("XMin", "XMax", "YMin", "YMax"):
            values = _numbers(table[column], column, self.path)
            outside = np.flatnonzero((values < -TOLERANCE) | (values > 1 + TOLERANCE))
            if outside.size:
                raise OdprepError(self.path, f"{column} {values[outside[0]]:g} is outside [0, 1]; Open Images "
                                  "boxes are normalised", "Fix the row", f"line {outside[0] + 2}")
            self.coords[column] = values.astype(np.float32)  # what tf.train.FloatList holds
        self.flags = {}
        for column, name in FLAGS.items():
            if column in table.columns:
                self.flags[name] = _flag(table[column], column, self.path)
        self.rows = np.argsort(images, kind="stable")
        self.starts = np.concatenate([[0], np.cumsum(np.bincount(images, minlength=len(self.image_ids)))])
        self.first_line = np.full(len(self.image_ids), 0, dtype=np.int64)
        self.first_line[images[::-1]] = np.arange(len(images))[::-1] + 2
        self.image_labels = _image_labels(Path(image_labels), descriptions) if image_labels else {}
        del table
        _release_arrow_memory()

    def __len__(self) -> int:
        return len(self.image_ids)

    def __getitem__(self, position: int) -> ImageRecord:
        if isinstance(position, slice):
            return [self[i] for i in range(*position.indices(len(self)))]
        image_id = self.image_ids[position]
        objects = []
        for row in self.rows[self.starts[position]:self.starts[position + 1]].tolist():
            label = self.names[self.mids[0][row]]
            flags = {name: int(values[row]) for name, values in self.flags.items()}
            objects.append(ObjectAnnotation(
                label=label, xmin=self.coords["XMin"][row], xmax=self.coords["XMax"][row],
                ymin=self.coords["YMin"][row], ymax=self.coords["YMax"][row], ref=f"line {row + 2} ({label})",
                **flags))
        image = self.index.exact(f"{image_id}.jpg") or self.index.forgiving(image_id) or \
            self.index.root / f"{image_id}.jpg"
        return ImageRecord(image_path=image, filename=image.name, source_id=image_id,
                           annotation_path=str(self.path), objects=tuple(objects), normalized_boxes=True,
                           object_keys=tuple(k for k in OID_OBJECT_KEYS
                                             if k.rsplit("/", 1)[-1] in self.flags),
                           image_classes=self.image_labels.get(image_id, ()),
                           ref=f"image {image_id} (line {self.first_line[position]})",
                           image_root=self.index.confinement)

    def class_names(self) -> list[str]:
        return list(self.names)


def _release_arrow_memory() -> None:
    """Give back what pyarrow's allocator keeps cached after parsing (about 600 MiB for 5M
    rows), before the writer's workers fork."""
    try:
        import pyarrow as pa
    except ImportError:
        return
    pa.default_memory_pool().release_unused()


def _factorize(column, name: str, path: Path) -> tuple[np.ndarray, list[str]]:
    """Codes and distinct values of a text column (kept as Arrow strings: no Python string
    per row)."""
    import pandas as pd

    codes, uniques = pd.factorize(column, sort=False, use_na_sentinel=True)
    values = [str(u).strip() for u in uniques]  # stripped per distinct value, not per row
    bad = [i for i, v in enumerate(values) if not v]
    if (codes < 0).any() or bad:
        first = np.flatnonzero((codes < 0) | np.isin(codes, bad))[0]
        raise OdprepError(path, f"{name} is empty", f"Fill in {name}", f"line {first + 2}")
    merged, distinct = pd.factorize(pd.Index(values), sort=False)  # ' a' and 'a' are one value
    return merged[codes].astype(np.int32), [str(v) for v in distinct]


_FLAG_VALUES = {"0": 0, "1": 1, "-1": -1}  # -1: unknown, as Open Images writes it


def _flag(column, name: str, path: Path) -> np.ndarray:
    """A flag column read as text, so that nothing ('nan', 'N/A', 'NULL', 'true', an empty
    cell) becomes 0 without a word: each distinct value must be -1, 0 or 1."""
    import pandas as pd

    codes, uniques = pd.factorize(column, sort=False, use_na_sentinel=True)
    values = [_FLAG_VALUES.get(str(u).strip()) for u in uniques]
    bad = [i for i, v in enumerate(values) if v is None]
    if (codes < 0).any() or bad:
        first = np.flatnonzero((codes < 0) | np.isin(codes, bad))[0]
        shown = "an empty cell" if codes[first] < 0 else repr(str(uniques[codes[first]]))
        raise OdprepError(path, f"{name} is {shown}, not -1, 0 or 1", "Fix the row", f"line {first + 2}")
    return np.array(values, dtype=np.int8)[codes]


def _numbers(column, name: str, path: Path) -> np.ndarray:
    import pandas as pd

    values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        raise OdprepError(path, f"{name} {column.iloc[bad[0]]!r} is not a finite number", "Fix the row",
                          f"line {bad[0] + 2}")
    return values


def _image_labels(path: Path, descriptions: dict[str, str]) -> dict[str, tuple[str, ...]]:
    """ImageID -> display names of its positive (Confidence 1) verified labels."""
    table = _read(path, "image labels CSV", strings=("ImageID", "LabelName", "Confidence"),
                  wanted=("ImageID", "LabelName", "Confidence"))
    missing = [c for c in ("ImageID", "LabelName", "Confidence") if c not in table.columns]
    if missing:
        raise OdprepError(path, f"no {', '.join(missing)} column(s)", "Pass an Open Images image-labels CSV")
    positive = table[table["Confidence"].astype(str).str.strip().isin(("1", "1.0"))]
    out: dict[str, list[str]] = {}
    for image_id, mid in zip(positive["ImageID"], positive["LabelName"], strict=True):
        name = descriptions.get(str(mid).strip())
        if name is not None:
            out.setdefault(str(image_id).strip(), []).append(name)
    return {image_id: tuple(dict.fromkeys(names)) for image_id, names in out.items()}
