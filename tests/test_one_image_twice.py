"""Two annotation files that name one image (a LabelMe folder with a copied JSON, VOC
XMLs merged from two tasks) would become two examples of one picture, each missing the
other's objects. Refused in one line naming both files, with a split or without, and
nothing is written; a record that oversampling repeats is still one annotation file."""

from __future__ import annotations

import json
import shutil

import pytest

from .conftest import SAMPLE
from .helpers import VOC_TEMPLATE, assert_bad_input, run_cli, voc_object


def _labelme(folder, name: str, image: str, label: str) -> None:
    shape = {"label": label, "points": [[8, 10], [40, 50]], "shape_type": "rectangle"}
    (folder / name).write_text(json.dumps({"shapes": [shape], "imagePath": image, "imageWidth": 96,
                                           "imageHeight": 64}))


@pytest.mark.parametrize("split", [(), ("--split", "train=0.5,val=0.5")])
def test_two_labelme_files_naming_one_image_are_refused(tmp_path, split):
    folder = tmp_path / "json"
    folder.mkdir()
    shutil.copy(SAMPLE / "images" / "cat_dog.jpg", folder / "cat_dog.jpg")
    _labelme(folder, "a.json", "cat_dog.jpg", "cat")
    _labelme(folder, "b.json", "./cat_dog.jpg", "dog")
    result = run_cli("labelme2tfr", folder, "-o", tmp_path / "out" / "{split}.record" if split else
                     tmp_path / "out" / "train.record", *split)
    assert_bad_input(result, "b.json", "a.json", "cat_dog.jpg", "the same image", "Merge the two")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("split", [(), ("--split", "train=0.5,val=0.5")])
def test_two_voc_files_naming_one_image_are_refused(tmp_path, split):
    annotations = tmp_path / "Annotations"
    annotations.mkdir()
    for name, label in (("task1.xml", "cat"), ("task2.xml", "dog")):
        (annotations / name).write_text(VOC_TEMPLATE.format(filename="cat_dog.jpg", width=96, height=64,
                                                            objects=voc_object(label)))
    out = tmp_path / "out"
    result = run_cli("voc2tfr", annotations, "--images-dir", SAMPLE / "images", "-o",
                     out / ("{split}.record" if split else "train.record"), *split)
    assert_bad_input(result, "task2.xml", "task1.xml", "cat_dog.jpg")
    assert not out.exists()


def test_oversampling_repeats_a_record_without_being_refused(tmp_path):
    result = run_cli("voc2tfr", SAMPLE / "voc" / "Annotations", "--images-dir", SAMPLE / "images", "-o",
                     tmp_path / "out" / "{split}.record", "--split", "train=0.7,val=0.3", "--oversample",
                     "repeat-factor", "--threshold", "0.9", "--oversample-rounding", "ceil")
    assert result.exit_code == 0, result.output
    assert "traffic light      1 -> 2" in result.output  # its image is written twice
