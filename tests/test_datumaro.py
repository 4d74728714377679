"""Each reader against a third-party reader of the same format: datumaro reads the sample
folders (laid out the way its importers expect) and its boxes must equal the boxes in
odprep's records, class by class, to 1e-4 of the image size.

LabelMe JSON has no datumaro importer (its ``label_me`` is the MIT LabelMe XML format);
those files are checked against ground truth in tests/test_labelme.py.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from odprep import proto
from odprep.tfrecord import read_records
from tests.conftest import SAMPLE

dm = pytest.importorskip("datumaro")
IMAGES = SAMPLE / "images"


def odprep_boxes(*args: object) -> dict[str, list[tuple]]:
    """image stem -> sorted (class text, xmin, ymin, xmax, ymax), normalised, from odprep's records."""
    out = Path(args[-1])
    done = subprocess.run([sys.executable, "-m", "odprep", *map(str, args[:-1]), "-o", str(out)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    boxes = {}
    for record in read_records(out):
        feature = proto.parse_example(record.data).features.feature
        texts = [t.decode() for t in feature["image/object/class/text"].bytes_list.value]
        columns = [feature[f"image/object/bbox/{k}"].float_list.value for k in ("xmin", "ymin", "xmax", "ymax")]
        stem = Path(feature["image/filename"].bytes_list.value[0].decode()).stem
        boxes[stem] = sorted((t, *(round(c[i], 4) for c in columns)) for i, t in enumerate(texts))
    return boxes


def datumaro_boxes(path: Path, importer: str, skip: tuple[str, ...] = ()) -> dict[str, list[tuple]]:
    """The same, as datumaro reads the folder: boxes, and the extent of polygons."""
    dataset = dm.Dataset.import_from(str(path), importer)
    names = dataset.categories()[dm.AnnotationType.label]
    boxes = {}
    for item in dataset:
        stem = Path(item.id).name
        with Image.open(_image(stem)) as image:
            width, height = image.size
        found = []
        for ann in item.annotations:
            if ann.type not in (dm.AnnotationType.bbox, dm.AnnotationType.rotated_bbox,
                                dm.AnnotationType.polygon):
                continue
            label = names[ann.label].name
            if label in skip:
                continue
            x, y, w, h = ann.get_bbox()
            found.append((label, *(round(v, 4) for v in (x / width, y / height, (x + w) / width,
                                                            (y + h) / height))))
        boxes[stem] = sorted(found)
    return boxes


def _image(stem: str) -> Path:
    return next(p for p in IMAGES.iterdir() if p.stem == stem)


def assert_same(ours: dict, theirs: dict) -> None:
    assert set(ours) == set(theirs)
    for stem in ours:
        assert len(ours[stem]) == len(theirs[stem]), stem
        for a, b in zip(ours[stem], theirs[stem], strict=True):
            assert a[0] == b[0], stem
            assert a[1:] == pytest.approx(b[1:], abs=2e-4), stem


def test_kitti_agrees_with_datumaro(tmp_path):
    layout = tmp_path / "kitti"
    shutil.copytree(SAMPLE / "kitti" / "label_2", layout / "label_2")
    shutil.copytree(IMAGES, layout / "image_2")
    theirs = datumaro_boxes(layout, "kitti_detection", skip=("DontCare",))
    ours = odprep_boxes("kitti2tfr", SAMPLE / "kitti" / "label_2", "--images-dir", IMAGES,
                        tmp_path / "k.record")
    assert sum(map(len, ours.values())) > 3
    assert_same(ours, theirs)


def test_cvat_agrees_with_datumaro(tmp_path):
    layout = tmp_path / "cvat"
    layout.mkdir()
    # datumaro skips <ellipse>; odprep's ellipses are checked in tests/test_cvat.py
    xml = re.sub(r"<ellipse [^>]*/>", "", (SAMPLE / "cvat" / "annotations.xml").read_text())
    (layout / "annotations.xml").write_text(xml)
    shutil.copytree(IMAGES, layout / "images")
    theirs = datumaro_boxes(layout, "cvat")
    ours = odprep_boxes("cvat2tfr", layout / "annotations.xml", "--images-dir", IMAGES,
                        tmp_path / "c.record")
    assert sum(map(len, ours.values())) > 3
    assert_same(ours, theirs)


def test_yolo_agrees_with_datumaro(tmp_path):
    layout = tmp_path / "yolo"
    data = layout / "obj_train_data"
    data.mkdir(parents=True)
    names = (SAMPLE / "yolo" / "classes.txt").read_text().splitlines()
    for image in IMAGES.iterdir():
        shutil.copy(image, data / image.name)
        lines = (SAMPLE / "yolo" / "labels" / f"{image.stem}.txt").read_text().splitlines(keepends=True)
        # datumaro reads box lines only; segment lines are checked in tests/test_yolo.py
        (data / f"{image.stem}.txt").write_text("".join(x for x in lines if len(x.split()) == 5))
    (layout / "obj.names").write_text("\n".join(names) + "\n")
    (layout / "train.txt").write_text("".join(f"obj_train_data/{p.name}\n" for p in sorted(IMAGES.iterdir())))
    (layout / "obj.data").write_text(f"classes = {len(names)}\nnames = obj.names\ntrain = train.txt\n")
    theirs = datumaro_boxes(layout, "yolo")
    ours = odprep_boxes("yolo2tfr", data, "--images-dir", IMAGES, "--names",
                        SAMPLE / "yolo" / "classes.txt", tmp_path / "y.record")
    assert sum(map(len, ours.values())) > 3
    assert_same(ours, theirs)


def test_open_images_agrees_with_datumaro(tmp_path):
    layout = tmp_path / "oid"
    (layout / "annotations").mkdir(parents=True)
    (layout / "images" / "train").mkdir(parents=True)
    for image in IMAGES.iterdir():
        Image.open(image).convert("RGB").save(layout / "images" / "train" / f"{image.stem}.jpg")
    descriptions = (SAMPLE / "oid" / "class-descriptions-boxable.csv").read_text()
    (layout / "annotations" / "oidv6-class-descriptions.csv").write_text("LabelName,DisplayName\n" + descriptions)
    shutil.copy(SAMPLE / "oid" / "boxes.csv", layout / "annotations" / "train-annotations-bbox.csv")
    display = dict(line.split(",", 1) for line in descriptions.splitlines())
    theirs = {stem: sorted((display[mid], *box) for mid, *box in boxes)
              for stem, boxes in datumaro_boxes(layout, "open_images").items()}
    ours = odprep_boxes("oid2tfr", SAMPLE / "oid" / "boxes.csv", "--images-dir", IMAGES,
                        "--class-descriptions", SAMPLE / "oid" / "class-descriptions-boxable.csv",
                        tmp_path / "o.record")
    assert sum(map(len, ours.values())) > 3
    assert_same(ours, {stem: boxes for stem, boxes in theirs.items() if stem in ours})
