"""Pascal VOC XML annotations (one file per image) to ImageRecords."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from lxml import etree

from odprep import keys
from odprep.errors import OdprepError, object_where
from odprep.model import ImageRecord, ObjectAnnotation
from odprep.readers.common import ImageIndex, OnInvalid, basename_any_os, raise_or_skip

VOC_OBJECT_KEYS = (keys.DIFFICULT, keys.TRUNCATED, keys.VIEW)


def list_voc_annotations(annotations: Path | str) -> list[Path]:
    """The XML files of a directory (or the one file given), sorted by name."""
    annotations = Path(annotations)
    if annotations.is_file():
        return [annotations]
    if not annotations.is_dir():
        raise OdprepError(annotations, "annotations directory not found", "Check the path")
    files = sorted(p for p in annotations.iterdir() if p.suffix.lower() == ".xml" and p.is_file())
    if not files:
        raise OdprepError(annotations, "no annotations found (no .xml files)",
                          "Point to the folder holding the VOC XML files (often Annotations/)")
    return files


def _parse_xml(path: Path) -> etree._Element:
    try:
        root = etree.parse(str(path)).getroot()
    except etree.XMLSyntaxError as exc:
        raise OdprepError(path, f"malformed XML ({exc.msg}, line {exc.lineno})",
                          "Fix the file or remove it") from None
    except OSError as exc:
        raise OdprepError(path, f"cannot read the file ({exc})", "Check the file") from None
    if root.tag != "annotation":
        raise OdprepError(path, f"root element is <{root.tag}>, not <annotation>",
                          "This is not a Pascal VOC annotation")
    return root


def _text(element, tag: str) -> str:
    return (element.findtext(tag) or "").strip()


def _number(element, tag: str, path: Path, where: str = "") -> float | None:
    text = _text(element, tag)
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        raise OdprepError(path, f"<{tag}> is {text!r}, not a number", f"Fix <{tag}>", where) from None


def _flag(element, tag: str, path: Path, where: str) -> int:
    text = _text(element, tag).lower()
    if text in ("", "0", "false", "no"):
        return 0
    if text in ("1", "true", "yes"):
        return 1
    try:
        return int(float(text))
    except ValueError:
        raise OdprepError(path, f"<{tag}> is {text!r}, expected 0 or 1", f"Fix <{tag}>", where) from None


def _image_size(root, path: Path) -> tuple[int | None, int | None]:
    size = root.find("size")
    if size is None:
        return None, None
    values = []
    for tag in ("width", "height"):
        value = _number(size, tag, path)
        if value is not None and (value < 0 or value != int(value)):
            raise OdprepError(path, f"<size><{tag}> {value:g} is not a whole number of pixels",
                              f"Fix <{tag}>")
        values.append(int(value) if value else None)
    return values[0], values[1]


def _objects(root, path: Path, on_invalid: OnInvalid | None) -> tuple[ObjectAnnotation, ...]:
    objects = []
    for index, element in enumerate(root.iterfind("object"), start=1):
        label = _text(element, "name")
        where = object_where(index, label or "no name")
        try:
            if not label:
                raise OdprepError(path, "<object> has no <name>", "Add the class name", where)
            box = element.find("bndbox")
            if box is None:
                raise OdprepError(path, "<object> has no <bndbox>", "Add the box or remove the object",
                                  where)
            coords = {}
            for tag in ("xmin", "ymin", "xmax", "ymax"):
                value = _number(box, tag, path, where)
                if value is None:
                    raise OdprepError(path, f"<bndbox> has no <{tag}>", f"Add <{tag}>", where)
                coords[tag] = value
            objects.append(ObjectAnnotation(
                label=label, **coords,
                difficult=_flag(element, "difficult", path, where),
                truncated=_flag(element, "truncated", path, where),
                view=_text(element, "pose"), ref=where,
            ))
        except OdprepError as error:
            raise_or_skip(on_invalid, "skipped_object", error)
    return tuple(objects)


def _resolve_image(root, path: Path, index: ImageIndex) -> tuple[Path | None, list[str]]:
    filename = _text(root, "filename")
    from_path = basename_any_os(_text(root, "path"))
    found = index.exact(filename)
    if found is not None:
        return found, []
    found = index.forgiving(filename, from_path, path.stem)
    if found is None:
        return None, []
    asked = filename or from_path or path.stem
    return found, [f"{path}: image {asked!r} not found as written; using {found.name}"]


def parse_voc_file(path: Path, index: ImageIndex | None,
                   on_invalid: OnInvalid | None = None) -> ImageRecord:
    """One VOC XML file as a record; the image is looked up in ``index``."""
    root = _parse_xml(path)
    width, height = _image_size(root, path)
    objects = _objects(root, path, on_invalid)
    notes: list[str] = []
    filename = _text(root, "filename") or path.stem
    image_path = Path(filename)
    if index is not None:
        found, notes = _resolve_image(root, path, index)
        image_path = found if found is not None else index.root / basename_any_os(filename)
        if found is not None:
            filename = found.relative_to(index.root).as_posix()
    return ImageRecord(
        image_path=image_path, filename=filename, source_id=filename, annotation_path=str(path),
        width=width, height=height, objects=objects, object_keys=VOC_OBJECT_KEYS, notes=tuple(notes),
    )


def read_voc(annotations: Path | str, images_dir: Path | str,
             on_invalid: OnInvalid | None = None) -> Iterator[ImageRecord]:
    """Yield one record per XML file, sorted by file name.

    ``on_invalid`` receives what --skip-invalid skips; without it, bad input raises.
    """
    index = ImageIndex(images_dir)
    for path in list_voc_annotations(annotations):
        try:
            yield parse_voc_file(path, index, on_invalid)
        except OdprepError as error:
            raise_or_skip(on_invalid, "skipped_image", error)


def voc_class_names(annotations: Path | str) -> list[str]:
    """Every object's class name in first-seen order (files sorted by name)."""
    names: list[str] = []
    for path in list_voc_annotations(annotations):
        root = _parse_xml(path)
        for index, element in enumerate(root.iterfind("object"), start=1):
            label = _text(element, "name")
            if not label:
                raise OdprepError(path, "<object> has no <name>", "Add the class name",
                                  object_where(index, "no name"))
            names.append(label)
    return names
