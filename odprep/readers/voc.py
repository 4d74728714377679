"""Pascal VOC XML annotations (one file per image) to ImageRecords."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from lxml import etree

from odprep import keys
from odprep.errors import OdprepError, object_where
from odprep.fileio import is_regular_file, list_files, open_binary, require_dir
from odprep.model import ImageRecord, ObjectAnnotation
from odprep.parallel import ordered_map
from odprep.readers.common import (
    ImageIndex,
    LazyRecords,
    OnInvalid,
    already_reported,
    basename_any_os,
    finite_number,
    flag,
    pixel_size,
    raise_or_skip,
)

VOC_OBJECT_KEYS = (keys.DIFFICULT, keys.TRUNCATED, keys.VIEW)


class FileList(Sequence):
    """Files as one folder and their names: a Path object per file would cost ~400 bytes,
    80 MB at 200k files, and copy-on-write pages in every forked worker."""

    def __init__(self, folder: Path, names: list[str]) -> None:
        self.folder, self.names = folder, names

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self.folder / name for name in self.names[index]]
        return self.folder / self.names[index]


def list_voc_annotations(annotations: Path | str) -> Sequence[Path]:
    """The XML files of a directory (or the one file given), sorted by name."""
    annotations = Path(annotations)
    if is_regular_file(annotations):
        return [annotations]
    require_dir(annotations, "annotations directory")
    names = sorted(name for name in list_files(annotations, "annotations directory", unreadable=True)
                   if name.lower().endswith(".xml"))
    if not names:
        raise OdprepError(annotations, "no annotations found (no .xml files)",
                          "Point to the folder holding the VOC XML files (often Annotations/)")
    return FileList(annotations, names)


STREAM_ABOVE = 4 << 20  # bytes: larger files are streamed child by child (iterparse)
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, remove_comments=True, remove_pis=True)


def _check_root(element, path: Path) -> None:
    if element.tag != "annotation":
        raise OdprepError(path, f"root element is <{element.tag}>, not <annotation>",
                          "This is not a Pascal VOC annotation")
    if element.getroottree().docinfo.internalDTD is not None:
        raise OdprepError(path, "the XML declares a DTD; its entities are never expanded",
                          "Remove the <!DOCTYPE ...> block")


def _top_level(path: Path) -> Iterator[etree._Element]:
    """The children of <annotation>. A usual file is parsed whole (fast); a huge one is streamed,
    each child freed once the caller is done with it. Entities are never resolved."""
    try:
        with open_binary(path, "annotation") as handle:
            if os.fstat(handle.fileno()).st_size <= STREAM_ABOVE:
                root = etree.parse(handle, _PARSER).getroot()
                _check_root(root, path)
                yield from root
                return
            events = etree.iterparse(handle, events=("start", "end"), resolve_entities=False,
                                     no_network=True, remove_comments=True, remove_pis=True)
            depth = 0
            for event, element in events:
                if event == "start":
                    depth += 1
                    if depth == 1:
                        _check_root(element, path)
                    continue
                depth -= 1
                if depth == 1:
                    yield element
                    element.clear(keep_tail=False)
                    while element.getprevious() is not None:
                        del element.getparent()[0]
    except etree.XMLSyntaxError as exc:
        raise OdprepError(path, f"malformed XML ({' '.join((exc.msg or 'unknown error').split())}, line {exc.lineno})",
                          "Fix the file or remove it") from None
    except MemoryError:
        raise OdprepError(path, "the XML does not fit in memory", "Split the file") from None


def _children(element) -> dict[str, str | etree._Element]:
    """Direct children by tag (first wins): text for leaves, the element otherwise."""
    found: dict = {}
    for child in element:
        tag = child.tag
        if isinstance(tag, str) and tag not in found:
            found[tag] = child if len(child) else (child.text or "").strip()
    return found


def _text(fields: dict, tag: str) -> str:
    value = fields.get(tag, "")
    return value if isinstance(value, str) else (value.text or "").strip()


def _number(fields: dict, tag: str, path: Path, where: str = "") -> float | None:
    text = _text(fields, tag)
    return finite_number(text, f"<{tag}>", path, where) if text else None


def _image_size(size, path: Path) -> tuple[int | None, int | None]:
    if not isinstance(size, etree._Element):
        return None, None
    size_fields = _children(size)
    return tuple(pixel_size(_text(size_fields, tag), f"<size><{tag}>", path)  # type: ignore[return-value]
                 for tag in ("width", "height"))


def _object(element, index: int, path: Path) -> ObjectAnnotation:
    fields = _children(element)
    label = _text(fields, "name")
    where = object_where(index, label or "no name")
    if not label:
        raise OdprepError(path, "<object> has no <name>", "Add the class name", where)
    box = fields.get("bndbox")
    if not isinstance(box, etree._Element):
        raise OdprepError(path, "<object> has no <bndbox>", "Add the box or remove the object", where)
    box_fields = _children(box)
    coords = {}
    for tag in ("xmin", "ymin", "xmax", "ymax"):
        value = _number(box_fields, tag, path, where)
        if value is None:
            raise OdprepError(path, f"<bndbox> has no <{tag}>", f"Add <{tag}>", where)
        coords[tag] = value
    return ObjectAnnotation(
        label=sys.intern(label), **coords,
        difficult=flag(_text(fields, "difficult"), "<difficult>", path, where),
        truncated=flag(_text(fields, "truncated"), "<truncated>", path, where),
        view=sys.intern(_text(fields, "pose")), ref=where,
    )


def _resolve_image(fields: dict, path: Path, index: ImageIndex) -> tuple[Path | None, list[str]]:
    filename = _text(fields, "filename")
    from_path = basename_any_os(_text(fields, "path"))
    found = index.exact(filename)
    if found is not None:
        return found, []
    found = index.forgiving(filename, basename_any_os(filename), from_path, path.stem)
    if found is None:
        return None, []
    asked = filename or from_path or path.stem
    return found, [f"{path}: image {asked!r} not found as written; using {found.name}"]


def parse_voc_file(path: Path, index: ImageIndex | None,
                   on_invalid: OnInvalid | None = None) -> ImageRecord:
    """One VOC XML file as a record; the image is looked up in ``index``."""
    fields: dict = {}
    objects = []
    count = 0
    for element in _top_level(path):
        tag = element.tag
        if tag == "object":
            count += 1
            try:
                objects.append(_object(element, count, path))
            except OdprepError as error:
                raise_or_skip(on_invalid, "skipped_object", error)
        elif isinstance(tag, str) and tag not in fields and tag in ("filename", "path", "size"):
            fields[tag] = element if tag == "size" else (element.text or "").strip()
            if tag == "size":
                fields["size"] = _image_size(element, path)
    width, height = fields.get("size", (None, None))
    notes: list[str] = []
    filename = _text(fields, "filename") or path.stem
    image_path = Path(filename)
    if index is not None:
        found, notes = _resolve_image(fields, path, index)
        image_path = found if found is not None else index.root / basename_any_os(filename)
        if found is not None:
            try:
                filename = found.relative_to(index.root).as_posix()
            except ValueError:  # an absolute <filename>: refused when the image is read
                filename = found.as_posix()
    return ImageRecord(
        image_path=image_path, filename=filename, source_id=filename, annotation_path=str(path),
        width=width, height=height, objects=tuple(objects), object_keys=VOC_OBJECT_KEYS,
        notes=tuple(notes), image_root=index.confinement if index is not None else None,
    )


class VocDataset:
    """A folder of VOC XML files: records one file at a time, as a stream or a lazy
    sequence (forked writer workers then parse their own files), and the class names."""

    def __init__(self, annotations: Path | str, images_dir: Path | str,
                 on_invalid: OnInvalid | None = None, allow_outside: bool = False) -> None:
        self.index = ImageIndex(images_dir, allow_outside)
        self.paths = list_voc_annotations(annotations)
        self.on_invalid = on_invalid

    def __len__(self) -> int:
        return len(self.paths)

    def record(self, position: int) -> ImageRecord:
        return parse_voc_file(self.paths[position], self.index, self.on_invalid)

    def records(self, workers: int = 1) -> Iterator[ImageRecord]:
        """Records in file order; with ``workers`` > 1 parsed in worker processes."""
        if workers <= 1:
            for path in self.paths:
                try:
                    yield parse_voc_file(path, self.index, self.on_invalid)
                except OdprepError as error:
                    raise_or_skip(self.on_invalid, "skipped_image", error)
            return
        chunks = (self.paths[i:i + _PARSE_CHUNK] for i in range(0, len(self.paths), _PARSE_CHUNK))
        for parsed in ordered_map(_parse_chunk, chunks, workers, initializer=_init_parser,
                                  initargs=(self.index, self.on_invalid is not None)):
            for record, skips in parsed:
                for kind, error in skips:
                    raise_or_skip(self.on_invalid, kind, error)
                if record is not None:
                    yield record

    def as_sequence(self, workers: int = 1) -> Sequence[ImageRecord]:
        """Records parsed on demand (forked writer workers parse their own files)."""
        if self.on_invalid is not None:
            return self.checked(workers)[0]
        return LazyRecords(len(self), self.record)

    def checked(self, workers: int = 1) -> tuple[Sequence[ImageRecord], list[str]]:
        """For --skip-invalid: parse every file once to report here what is skipped, and to
        list the classes of the objects kept; the records stay lazy (the writer's workers
        parse the remaining files again, without reporting twice), so memory stays flat."""
        chunks = (self.paths[i:i + _PARSE_CHUNK] for i in range(0, len(self.paths), _PARSE_CHUNK))
        _init_parser(self.index, True)
        checked = ordered_map(_check_chunk, chunks, workers, initializer=_init_parser,
                              initargs=(self.index, True)) if workers > 1 else map(_check_chunk, chunks)
        kept: list[int] = []
        names: list[str] = []
        position = 0
        for chunk in checked:
            for labels, skips in chunk:
                for kind, error in skips:
                    raise_or_skip(self.on_invalid, kind, error)
                if labels is not None:
                    kept.append(position)
                    names += labels
                position += 1
        rebuilt = LazyRecords(len(self), lambda position: parse_voc_file(self.paths[position], self.index,
                                                                         already_reported))
        return rebuilt.subset(kept), names

    def class_names(self, workers: int = 1) -> list[str]:
        """Every object's class name, in file order (a light parse: names only)."""
        chunks = (self.paths[i:i + _PARSE_CHUNK] for i in range(0, len(self.paths), _PARSE_CHUNK))
        return [name for names in ordered_map(_names_in_files, chunks, workers) for name in names]


def read_voc(annotations: Path | str, images_dir: Path | str,
             on_invalid: OnInvalid | None = None, workers: int = 1) -> Iterator[ImageRecord]:
    """Yield one record per XML file, sorted by file name.

    ``on_invalid`` receives what --skip-invalid skips; without it, bad input raises.
    With ``workers`` > 1 the files are parsed in worker processes; records and
    skips still come in file order.
    """
    yield from VocDataset(annotations, images_dir, on_invalid).records(workers)


_PARSE_CHUNK = 64
_parser_state: dict = {}


def _init_parser(index: ImageIndex, skipping: bool) -> None:
    _parser_state.update(index=index, skipping=skipping)


def _collect(skips: list, kind: str, error: OdprepError) -> None:
    skips.append((kind, error))


def _parse_chunk(paths: list[Path]) -> list[tuple[ImageRecord | None, list]]:
    """Worker side: parse files, collecting skips (or raising) as the caller would."""
    out = []
    for path in paths:
        skips: list = []
        collect = functools.partial(_collect, skips) if _parser_state["skipping"] else None
        try:
            out.append((parse_voc_file(path, _parser_state["index"], collect), skips))
        except OdprepError as error:
            if collect is None:
                raise
            skips.append(("skipped_image", error))
            out.append((None, skips))
    return out


def _check_chunk(paths: list[Path]) -> list[tuple[list[str] | None, list]]:
    """Worker side: each file's kept classes (None: the image is skipped) and its skips."""
    return [(record.labels if record is not None else None, skips) for record, skips in _parse_chunk(paths)]


def _names_in_files(paths: list[Path]) -> list[str]:
    names: list[str] = []
    for path in paths:
        count = 0
        for element in _top_level(path):
            if element.tag != "object":
                continue
            count += 1
            name = element.find("name")
            label = (name.text or "").strip() if name is not None else ""
            if not label:
                raise OdprepError(path, "<object> has no <name>", "Add the class name",
                                  object_where(count, "no name"))
            names.append(sys.intern(label))
    return names


def voc_class_names(annotations: Path | str) -> list[str]:
    """Every object's class name in first-seen order (files sorted by name)."""
    return _names_in_files(list_voc_annotations(annotations))
