"""TFRecords back to Pascal VOC: the images as they are stored, and one XML per image."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from lxml import etree

from odprep import images, keys
from odprep.errors import OdprepError
from odprep.fileio import below, commit, discard, stage_text, temp_path_for
from odprep.proto import values_of
from odprep.tfrecord import read_image_examples


def _xml(filename: str, width: int, height: int, depth: int, objects: list[dict]) -> str:
    root = etree.Element("annotation")
    etree.SubElement(root, "folder").text = "JPEGImages"
    etree.SubElement(root, "filename").text = filename
    size = etree.SubElement(root, "size")
    for tag, value in (("width", width), ("height", height), ("depth", depth)):
        etree.SubElement(size, tag).text = str(value)
    for obj in objects:
        element = etree.SubElement(root, "object")
        for tag in ("name", "pose", "truncated", "difficult"):
            etree.SubElement(element, tag).text = str(obj[tag])
        box = etree.SubElement(element, "bndbox")
        for tag in ("xmin", "ymin", "xmax", "ymax"):
            etree.SubElement(box, tag).text = f"{obj[tag]:.3f}".rstrip("0").rstrip(".")
    return etree.tostring(root, pretty_print=True, encoding="unicode")


def write_voc(paths: Iterable[Path | str], output: Path | str) -> int:
    """Write OUTPUT/JPEGImages/<filename> and OUTPUT/Annotations/<stem>.xml for every record;
    all files appear together, or none. Returns the number of images."""
    output = Path(output)
    pending: list[tuple[Path, Path]] = []
    names: dict[str, str] = {}
    stems: dict[str, str] = {}  # Annotations/<stem>.xml -> the image that has it
    try:
        for where, feature in read_image_examples(paths):
            encoded = feature[keys.IMAGE_ENCODED].bytes_list.value[0]
            try:
                width, height, mode = images.header_size(encoded)
            except ValueError as exc:
                raise OdprepError(where, f"the image header is unreadable ({exc})", "Run odprep validate") \
                    from None
            fmt = images.sniff_format(encoded) or "jpeg"
            stored = (values_of(feature, keys.IMAGE_FILENAME) or [b""])[0].decode("utf-8", "replace")
            filename = PurePosixPath(stored.replace("\\", "/")).name if stored else ""
            if not filename or filename in (".", "..") or "\0" in filename:
                filename = f"record_{len(names):06d}.{'png' if fmt == 'png' else 'jpg'}"
            if filename in names:
                raise OdprepError(where, f"image/filename {filename!r} is also {names[filename]}",
                                  "Give every image its own file name")
            names[filename] = where
            stem = Path(filename).stem
            if stem in stems:
                raise OdprepError(where, f"image/filename {filename!r} and {stems[stem]!r} would share "
                                  f"Annotations/{stem}.xml, and one image's objects would be lost",
                                  "Give the images names that differ before the extension")
            stems[stem] = filename
            texts = [t.decode("utf-8", "replace") for t in values_of(feature, keys.CLASS_TEXT)]
            labels = [str(v) for v in values_of(feature, keys.CLASS_LABEL)]
            xmin, xmax, ymin, ymax = (values_of(feature, k) for k in keys.BBOX_KEYS)
            count = len(xmin)
            names_of = texts or labels
            if len(names_of) != count or any(len(v) != count for v in (xmax, ymin, ymax)):
                raise OdprepError(where, "per-object lists differ in length", "Run odprep validate on it")
            flags = {key: values_of(feature, key) for key in (keys.TRUNCATED, keys.DIFFICULT)}
            poses = [p.decode("utf-8", "replace") for p in values_of(feature, keys.VIEW)]
            objects = [{"name": names_of[i], "pose": poses[i] if i < len(poses) else "Unspecified",
                        "truncated": flags[keys.TRUNCATED][i] if i < len(flags[keys.TRUNCATED]) else 0,
                        "difficult": flags[keys.DIFFICULT][i] if i < len(flags[keys.DIFFICULT]) else 0,
                        "xmin": xmin[i] * width, "ymin": ymin[i] * height, "xmax": xmax[i] * width,
                        "ymax": ymax[i] * height} for i in range(count)]
            image_target = below(output / "JPEGImages", filename, "image file", where)
            temp = temp_path_for(image_target)
            pending.append((temp, image_target))
            temp.write_bytes(encoded)
            depth = {"L": 1, "1": 1, "P": 3, "RGBA": 4, "LA": 2}.get(mode, 3)
            try:
                xml = _xml(filename, width, height, depth, objects)
            except ValueError:  # lxml: a control character or NUL, which XML 1.0 cannot hold
                raise OdprepError(where, "a class or file name holds a control character, which XML "
                                  "cannot carry", "Fix the name in the records (odprep inspect shows them)") \
                    from None
            pending.append(stage_text(below(output / "Annotations", f"{stem}.xml", "annotation", where), xml))
        if not names:
            raise OdprepError(", ".join(map(str, paths)), "no records", "Check the paths")
        commit(pending)
    finally:
        discard(pending)
    return len(names)
