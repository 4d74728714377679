"""Regenerate sample_data/roboflow_yolo/ and sample_data/roboflow_coco/ from the sample set.

They are laid out as Roboflow writes its exports: YOLO with ``data.yaml`` saying
``train: ../train/images`` (resolved as Ultralytics does) and images renamed
``STEM_EXT.rf.HASH.EXT``; COCO with one ``_annotations.coco.json`` per split folder,
image ids from 0, and category 0 holding the dataset's name with no annotation. Run from
the repo root after scripts/make_sample_data.py:
    python scripts/make_export_samples.py
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

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


if __name__ == "__main__":
    make_yolo()
    make_coco()
