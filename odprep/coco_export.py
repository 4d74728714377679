"""TFRecords back to a COCO instances JSON: what pycocotools and Model Garden's COCO
evaluator (``task.annotation_file``) read.

Boxes go back to pixels, ``iscrowd`` and ``area`` are kept, masks become RLE. Image ids
must be the ids the evaluator sees: the numeric ``image/source_id`` when every record has
one, otherwise the id Model Garden regenerates with ``regenerate_source_id: true``
(``tf.strings.to_hash_bucket_fast(image/encoded, 2**22 - 1)`` in official.vision's
TfExampleDecoder, computed here with FarmHash's Fingerprint64, which is what TensorFlow
uses).
"""

from __future__ import annotations

import io
import json
import math
import re
from collections.abc import Iterable
from pathlib import Path

from odprep import images, keys
from odprep.errors import OdprepError
from odprep.fileio import write_text_atomic
from odprep.labelmap import LabelMap
from odprep.proto import values_of
from odprep.tfrecord import read_image_examples

ID_MODES = ("auto", "source", "regenerated", "sequential")
_NUMERIC_ID = re.compile(r"-?[0-9]{1,18}")  # ASCII digits that fit an int64 ('²' is a digit to str.isdigit)


def numeric_id(source: str) -> int | None:
    """The image id a numeric image/source_id gives, or None when it is not one."""
    text = source.strip()
    return int(text) if _NUMERIC_ID.fullmatch(text) else None
REGENERATED_BUCKETS = 2**22 - 1  # official.vision: "22 bits since float32 has only 23 mantissa bits"


def regenerated_id(encoded: bytes) -> int:
    """The image id Model Garden gives a record with regenerate_source_id: true."""
    import farmhash

    return farmhash.fingerprint64(encoded) % REGENERATED_BUCKETS


def _mask_rle(png: bytes, where: str) -> tuple[dict, float]:
    import numpy as np
    from pycocotools import mask as mask_util

    try:
        with images.open_checked(png) as mask:
            pixels = np.asfortranarray((np.asarray(mask) > 0).astype(np.uint8))
    except (ValueError, OSError) as exc:
        raise OdprepError(where, f"a mask does not decode ({exc})", "Run odprep validate on the file") \
            from None
    rle = mask_util.encode(pixels)
    return {"size": list(rle["size"]), "counts": rle["counts"].decode("ascii")}, float(mask_util.area(rle))


def records_to_coco(paths: Iterable[Path | str], label_map: LabelMap | None = None,
                    image_ids: str = "auto") -> tuple[dict, str]:
    """The COCO dict for every record of the files, and how image ids were chosen."""
    if image_ids not in ID_MODES:
        raise OdprepError("--image-ids", f"{image_ids!r} is not one of {', '.join(ID_MODES)}", "Pick one")
    entries: list[dict] = []
    categories: dict[int, str] = {}
    for where, feature in read_image_examples(paths):
        entries.append(_entry(feature, where, label_map, categories))
    if not entries:
        raise OdprepError(", ".join(map(str, paths)), "no records", "Check the paths")
    mode = image_ids
    if mode == "auto":
        mode = "source" if all(numeric_id(e["source"]) is not None for e in entries) else "regenerated"
    coco: dict = {"info": {"description": "written by odprep tfr2coco", "image_id_rule": mode},
                  "images": [], "annotations": [], "categories": []}
    seen: dict[int, str] = {}
    next_annotation = 1
    for number, entry in enumerate(entries, start=1):
        if mode == "source":
            image_id = numeric_id(entry["source"])
            if image_id is None:
                raise OdprepError(entry["where"], f"image/source_id {entry['source'][:40]!r} is not a number "
                                  "(ASCII digits, at most 18)", "Use --image-ids regenerated (or sequential)")
        elif mode == "regenerated":
            image_id = regenerated_id(entry["encoded"])
        else:
            image_id = number
        if image_id in seen:
            why = ("the same image twice, or two images whose 22-bit regenerated ids collide: Model Garden's "
                   "evaluator would mix them up" if mode == "regenerated" else "the same image twice?")
            raise OdprepError(entry["where"], f"image id {image_id} is also {seen[image_id]} ({why})",
                              "Remove the duplicate, or give the records numeric image/source_id")
        seen[image_id] = entry["where"]
        coco["images"].append({"id": image_id, "file_name": entry["file_name"], "width": entry["width"],
                               "height": entry["height"]})
        for annotation in entry["annotations"]:
            coco["annotations"].append({"id": next_annotation, "image_id": image_id, **annotation})
            next_annotation += 1
    items = label_map.classes if label_map is not None else ()
    coco["categories"] = [{"id": item.id, "name": item.name, "supercategory": ""} for item in items] or \
        [{"id": i, "name": name, "supercategory": ""} for i, name in sorted(categories.items())]
    return coco, mode


def _entry(feature, where: str, label_map: LabelMap | None, categories: dict[int, str]) -> dict:
    encoded = feature[keys.IMAGE_ENCODED].bytes_list.value[0]
    width = (values_of(feature, keys.IMAGE_WIDTH) or [0])[0]
    height = (values_of(feature, keys.IMAGE_HEIGHT) or [0])[0]
    if not width or not height:
        try:
            width, height, _ = images.header_size(encoded)
        except ValueError as exc:
            raise OdprepError(where, f"no size and the image header is unreadable ({exc})",
                              "Run odprep validate on the file") from None
    texts = [t.decode("utf-8", "replace") for t in values_of(feature, keys.CLASS_TEXT)]
    labels = list(values_of(feature, keys.CLASS_LABEL))
    boxes = [values_of(feature, k) for k in keys.BBOX_KEYS]
    count = len(boxes[0])
    lists = {"class/label": labels, "class/text": texts, **{k: b for k, b in zip(keys.BBOX_KEYS, boxes,
                                                                                  strict=True)}}
    if any(len(values) not in (0, count) for values in lists.values()) or (count and not (labels or texts)):
        raise OdprepError(where, "per-object lists differ in length (or objects have no class)",
                          "Run odprep validate on the file")
    crowds = list(values_of(feature, keys.IS_CROWD))
    areas = list(values_of(feature, keys.AREA))
    masks = list(values_of(feature, keys.MASK))
    annotations = []
    for i in range(count):
        xmin, xmax, ymin, ymax = (b[i] for b in boxes)
        if not all(math.isfinite(v) for v in (xmin, xmax, ymin, ymax)):
            raise OdprepError(where, f"object {i + 1}: its box holds NaN or infinity, which JSON cannot carry",
                              "Run odprep validate on the file, and fix the records")
        category = _category(labels[i] if labels else None, texts[i] if texts else None, label_map, where,
                             categories)
        annotation: dict = {
            "category_id": category,
            "bbox": [round(xmin * width, 3), round(ymin * height, 3), round((xmax - xmin) * width, 3),
                     round((ymax - ymin) * height, 3)],
            "iscrowd": int(crowds[i]) if i < len(crowds) else 0,
        }
        area = areas[i] if i < len(areas) else None
        if i < len(masks):
            annotation["segmentation"], mask_area = _mask_rle(masks[i], where)
            area = mask_area if area is None else area
        annotation["area"] = float(area) if area is not None else annotation["bbox"][2] * annotation["bbox"][3]
        if not math.isfinite(annotation["area"]):
            raise OdprepError(where, f"object {i + 1}: its area is {annotation['area']}, which JSON cannot carry",
                              "Run odprep validate on the file, and fix the records")
        annotations.append(annotation)
    file_name = (values_of(feature, keys.IMAGE_FILENAME) or [b""])[0].decode("utf-8", "replace")
    source = (values_of(feature, keys.IMAGE_SOURCE_ID) or [b""])[0].decode("utf-8", "replace")
    return {"where": where, "encoded": encoded, "width": int(width), "height": int(height),
            "file_name": file_name, "source": source, "annotations": annotations}


def _category(label: int | None, text: str | None, label_map: LabelMap | None, where: str,
              categories: dict[int, str]) -> int:
    if label_map is not None:
        mapped = label_map.id_of(text) if text is not None else None
        category = mapped if mapped is not None else label
        if category is None or label_map.name_of(category) is None:
            raise OdprepError(where, f"class {text or label!r} is not in {label_map.source or 'the label map'}",
                              "Pass the label map the records were made with")
        return category
    if label is None:
        raise OdprepError(where, f"object {text!r} has no class/label", "Pass --label-map to map the texts")
    name = text if text is not None else str(label)
    if categories.setdefault(label, name) != name:
        raise OdprepError(where, f"class/label {label} is both {categories[label]!r} and {name!r}",
                          "Pass --label-map, or re-create the records")
    return label


def write_coco(paths: Iterable[Path | str], output: Path | str, label_map: LabelMap | None = None,
               image_ids: str = "auto") -> tuple[dict, str]:
    coco, mode = records_to_coco(paths, label_map, image_ids)
    out = io.StringIO()
    json.dump(coco, out, allow_nan=False)  # strict JSON, always
    write_text_atomic(output, out.getvalue())
    return coco, mode
