"""Regenerate sample_data/roboflow_yolo/, roboflow_coco/, cvat_project/ and labelme_layouts/
from the sample set.

They are laid out as Roboflow writes its exports: YOLO with ``data.yaml`` saying
``train: ../train/images`` (resolved as Ultralytics does) and images renamed
``STEM_EXT.rf.HASH.EXT``; COCO with one ``_annotations.coco.json`` per split folder,
image ids from 0, and category 0 holding the dataset's name with no annotation; a CVAT
project export with images in ``images/<subset>/``, a ``subset`` on every ``<image>``, and
one file name (cat_dog.jpg) in two subsets holding different pictures; labelme's own
layouts: ``tutorial/`` (imageData embedded, imagePath naming the JSON itself, as in
labelme's examples/tutorial) and ``data_annotated/`` (JSON beside each JPEG, instances
as (label, group_id), an ``__ignore__`` region and a point 0.385 px past the edge, as in
examples/instance_segmentation). Run from
the repo root after scripts/make_sample_data.py:
    python scripts/make_export_samples.py
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
from pathlib import Path

from lxml import etree
from PIL import Image, ImageOps

ROOT = Path(__file__).resolve().parents[1] / "sample_data"
SPLITS = {"train": ["cat_dog.jpg", "street.png", "gray.jpg"], "valid": ["Upper.JPG", "empty.jpg"],
          "test": ["palette.png"]}
NAMES = ["cat", "dog", "traffic light"]
DATASET = "pets-and-streets"


def roboflow_name(name: str) -> str:
    stem, _, ext = name.rpartition(".")
    digest = hashlib.sha1(name.encode()).hexdigest()[:20]
    return f"{stem}_{ext}.rf.{digest}.{ext.lower()}"


def make_yolo() -> None:
    out = ROOT / "roboflow_yolo"
    shutil.rmtree(out, ignore_errors=True)
    for split, files in SPLITS.items():
        for kind in ("images", "labels"):
            (out / split / kind).mkdir(parents=True)
        for name in files:
            renamed = roboflow_name(name)
            shutil.copy(ROOT / "images" / name, out / split / "images" / renamed)
            label = ROOT / "yolo" / "labels" / f"{Path(name).stem}.txt"
            target = out / split / "labels" / f"{Path(renamed).stem}.txt"
            target.write_text(label.read_text() if label.exists() else "")
    names = ", ".join(f"'{n}'" for n in NAMES)
    (out / "data.yaml").write_text(
        "train: ../train/images\nval: ../valid/images\ntest: ../test/images\n\n"
        f"nc: {len(NAMES)}\nnames: [{names}]\n\nroboflow:\n  workspace: odprep\n"
        f"  project: {DATASET}\n  version: 1\n  license: CC BY 4.0\n")


def make_coco() -> None:
    out = ROOT / "roboflow_coco"
    shutil.rmtree(out, ignore_errors=True)
    source = json.loads((ROOT / "coco" / "instances.json").read_text())
    by_name = {c["name"]: c["id"] for c in source["categories"]}
    new_id = {by_name[name]: number for number, name in enumerate(NAMES, start=1)}
    categories = [{"id": 0, "name": DATASET, "supercategory": "none"}]
    categories += [{"id": i, "name": n, "supercategory": DATASET} for i, n in enumerate(NAMES, start=1)]
    for split, files in SPLITS.items():
        (out / split).mkdir(parents=True)
        images, annotations = [], []
        for image in source["images"]:
            if image["file_name"] not in files:
                continue
            renamed = roboflow_name(image["file_name"])
            shutil.copy(ROOT / "images" / image["file_name"], out / split / renamed)
            image_id = len(images)
            images.append({"id": image_id, "license": 1, "file_name": renamed, "height": image["height"],
                           "width": image["width"], "date_captured": "2026-11-26T00:00:00+00:00"})
            for annotation in source["annotations"]:
                if annotation["image_id"] == image["id"] and annotation["category_id"] in new_id:
                    annotations.append({"id": len(annotations), "image_id": image_id,
                                        "category_id": new_id[annotation["category_id"]],
                                        "bbox": annotation["bbox"], "area": annotation["area"],
                                        "segmentation": [], "iscrowd": 0})
        document = {"info": {"year": "2026", "version": "1", "description": "Exported from roboflow.com"},
                    "licenses": [{"id": 1, "url": "https://creativecommons.org/licenses/by/4.0/",
                                  "name": "CC BY 4.0"}],
                    "categories": categories, "images": images, "annotations": annotations}
        (out / split / "_annotations.coco.json").write_text(json.dumps(document))


CVAT_SUBSETS = {"Train": ["cat_dog.jpg", "street.png", "gray.jpg"], "Validation": ["empty.jpg", "Upper.JPG"],
                "Test": ["palette.png", "cat_dog.jpg"]}


def make_cvat_project() -> None:
    """The task sample's <image> elements, regrouped as a project export. Test's cat_dog.jpg
    is the train picture mirrored, with its shapes mirrored: paired with the wrong subset's
    file, its pixels would not match its boxes."""
    out = ROOT / "cvat_project"
    shutil.rmtree(out, ignore_errors=True)
    task = etree.parse(str(ROOT / "cvat" / "annotations.xml")).getroot()
    project = etree.Element("annotations")
    etree.SubElement(project, "version").text = "1.1"
    meta = etree.SubElement(project, "meta")
    details = etree.SubElement(meta, "project")
    for tag, text in (("id", "1"), ("name", "sample project"), ("created", "2024-05-01 10:00:00+00:00")):
        etree.SubElement(details, tag).text = text
    details.append(task.find("meta/task/labels"))
    etree.SubElement(details, "subsets").text = "\n".join(CVAT_SUBSETS)
    by_name = {image.get("name"): image for image in task.iter("image")}
    number = 0
    for subset, names in CVAT_SUBSETS.items():
        (out / "images" / subset).mkdir(parents=True)
        for name in names:
            image = etree.fromstring(etree.tostring(by_name[name]))
            image.set("id", str(number))
            image.set("subset", subset)
            number += 1
            if subset == "Test" and name == "cat_dog.jpg":
                width = float(image.get("width"))
                for box in image.iter("box"):
                    left, right = width - float(box.get("xbr")), width - float(box.get("xtl"))
                    box.set("xtl", f"{left:.2f}")
                    box.set("xbr", f"{right:.2f}")
                with Image.open(ROOT / "images" / name) as picture:
                    ImageOps.mirror(picture).save(out / "images" / subset / name, quality=95)
            else:
                shutil.copy(ROOT / "images" / name, out / "images" / subset / name)
            project.append(image)
    etree.ElementTree(project).write(str(out / "annotations.xml"), xml_declaration=True, encoding="utf-8",
                                     pretty_print=True)


def _labelme(shapes: list[dict], image_path: str, size: tuple[int, int], data: bytes | None) -> str:
    return json.dumps({"version": "5.4.1", "flags": {}, "shapes": shapes, "imagePath": image_path,
                       "imageData": base64.b64encode(data).decode() if data else None,
                       "imageHeight": size[1], "imageWidth": size[0]}, indent=2)


def _shape(label: str, points: list, kind: str = "polygon", group: int | None = None) -> dict:
    return {"label": label, "points": points, "group_id": group, "description": "", "shape_type": kind,
            "flags": {}, "mask": None}


def make_labelme_layouts() -> None:
    out = ROOT / "labelme_layouts"
    shutil.rmtree(out, ignore_errors=True)
    (out / "tutorial").mkdir(parents=True)
    (out / "data_annotated").mkdir(parents=True)
    street = (ROOT / "images" / "street.png").read_bytes()
    (out / "tutorial" / "street_obj.json").write_text(_labelme(
        [_shape("traffic light", [[10.5, 4], [22.5, 30]], "rectangle"),
         _shape("dog", [[30, 20], [78, 20], [78, 58], [30, 58]])], "street_obj.json", (80, 60), street))
    shutil.copy(ROOT / "images" / "cat_dog.jpg", out / "data_annotated" / "cat_dog.jpg")
    (out / "data_annotated" / "cat_dog.json").write_text(_labelme(
        [_shape("cat", [[8, 10], [24, 10], [24, 50], [8, 50]], group=1),  # one cat in two parts
         _shape("cat", [[24, 10], [40, 10], [40, 50], [24, 50]], group=1),
         _shape("dog", [[50, 5], [90, 5], [90, 60], [50, 60]], group=1),  # a group id per label
         _shape("__ignore__", [[0, 55], [10, 55], [10, 63], [0, 63]])], "cat_dog.jpg", (96, 64), None))
    shutil.copy(ROOT / "images" / "gray.jpg", out / "data_annotated" / "gray.jpg")
    (out / "data_annotated" / "gray.json").write_text(_labelme(  # a point 0.385 px past the edge
        [_shape("cat", [[0, 0], [64.385, 0], [64, 48], [0, 48]])], "gray.jpg", (64, 48), None))


if __name__ == "__main__":
    make_yolo()
    make_coco()
    make_cvat_project()
    make_labelme_layouts()
