"""yolo2tfr: YOLO label folders and Ultralytics data.yaml, read back by the real consumers."""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from odprep.errors import OdprepError

from .conftest import SAMPLE, parse_with_od_api_spec
from .helpers import assert_bad_input, leftovers, run_cli
from .test_fuzz import FUZZ
from .test_voc import assert_matches_truth

YOLO = SAMPLE / "yolo"


def test_yolo_records_equal_the_ground_truth_of_the_other_formats(tf, tmp_path):
    out = tmp_path / "train.record"
    result = run_cli("yolo2tfr", YOLO / "labels", "--images-dir", SAMPLE / "images", "-o", out)
    assert result.exit_code == 0, result.output
    rows = parse_with_od_api_spec(tf, [out])
    assert_matches_truth(rows, atol=2e-6)  # the files hold 6 decimals


@pytest.fixture
def ultralytics(tmp_path) -> Path:
    """An Ultralytics layout: images/{train,val}, labels/{train,val}, data.yaml."""
    root = tmp_path / "dataset"
    split_of = {"cat_dog": "train", "gray": "train", "street": "train", "Upper": "val", "palette": "val",
                "empty": "val"}
    for image in (SAMPLE / "images").iterdir():
        split = split_of[image.stem]
        for kind, source in (("images", image), ("labels", YOLO / "labels" / f"{image.stem}.txt")):
            (root / kind / split).mkdir(parents=True, exist_ok=True)
            if kind == "labels" and image.stem == "empty":
                continue  # no label file at all: a negative
            target = root / kind / split / (source.name if kind == "images" else f"{image.stem}.txt")
            shutil.copy(source, target)
    (root / "data.yaml").write_text("path: .\ntrain: images/train\nval: [images/val]\n"
                                    "names:\n  0: cat\n  1: dog\n  2: traffic light\n")
    return root


def test_data_yaml_splits_and_labels_beside_images(ultralytics, tmp_path):
    out = tmp_path / "out"
    result = run_cli("yolo2tfr", ultralytics / "data.yaml", "-o", out / "{split}.record")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    images = next(line for line in lines if line.startswith("images")).split()
    assert images[1:] == ["3", "3"]  # train, val
    assert (out / "label_map.pbtxt").read_text().count("item") == 3


def test_data_yaml_with_a_list_file(ultralytics, tmp_path):
    listing = ultralytics / "train.txt"
    listing.write_text("./images/train/cat_dog.jpg\nimages/train/gray.jpg\n")
    (ultralytics / "data.yaml").write_text("path: .\ntrain: train.txt\nnames: [cat, dog, traffic light]\n")
    result = run_cli("yolo2tfr", ultralytics / "data.yaml", "-o", tmp_path / "{split}.record")
    assert result.exit_code == 0, result.output
    assert "objects written" not in result.output and "train" in result.output


def test_segment_lines_give_masks(tf, tmp_path):
    labels = tmp_path / "labels"
    labels.mkdir()
    (labels / "cat_dog.txt").write_text("0 0.25 0.25 0.5 0.25 0.5 0.75 0.25 0.75\n")
    out = tmp_path / "x.record"
    result = run_cli("yolo2tfr", labels, "--images-dir", SAMPLE / "images", "--names", YOLO / "classes.txt",
                     "-o", out, "--include-masks", "--skip-invalid")
    assert result.exit_code == 0, result.output
    rows = {r["image/filename"]: r for r in parse_with_od_api_spec(tf, [out], masks=True)}
    mask = tf.io.decode_png(rows[b"cat_dog.jpg"]["image/object/mask"][0]).numpy()[..., 0]
    assert mask.shape == (64, 96)
    assert mask[16:48, 24:48].all() and not mask[:14].any() and not mask[:, :22].any()


def _labels(tmp_path, text: str, name: str = "cat_dog.txt") -> Path:
    labels = tmp_path / "labels"
    labels.mkdir(exist_ok=True)
    (labels / name).write_text(text)
    return labels


BAD = {
    "class beyond names": ("7 0.5 0.5 0.2 0.2\n", "class '7' is not an id of the 3 names"),
    "negative class": ("-1 0.5 0.5 0.2 0.2\n", "is not an id of the 3 names"),
    "fractional class": ("1.5 0.5 0.5 0.2 0.2\n", "is not an id"),
    "four fields": ("0 0.5 0.5 0.2\n", "4 field(s)"),
    "six fields": ("0 0.5 0.5 0.2 0.2 0.1\n", "6 field(s)"),
    "pixels, not normalised": ("0 48 32 20 20\n", "value 48 is outside [0, 1]"),
    "nan": ("0 nan 0.5 0.2 0.2\n", "not a finite number"),
    "text": ("0 a b c d\n", "'a' is not a number"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_label_lines_name_file_and_line(tmp_path, case):
    text, fragment = BAD[case]
    labels = _labels(tmp_path, "0 0.5 0.5 0.2 0.2\n" + text)
    out = tmp_path / "out"
    result = run_cli("yolo2tfr", labels, "--images-dir", SAMPLE / "images", "--names", YOLO / "classes.txt",
                     "-o", out / "x.record")
    assert_bad_input(result, "cat_dog.txt: line 2", fragment)
    assert not out.exists() or leftovers(out) == []


def test_label_files_without_images(tmp_path):
    labels = _labels(tmp_path, "0 0.5 0.5 0.2 0.2\n", name="ghost.txt")
    result = run_cli("yolo2tfr", labels, "--images-dir", SAMPLE / "images", "--names", YOLO / "classes.txt",
                     "-o", tmp_path / "x.record")
    assert_bad_input(result, "0 of 1 label files have an image here", "Check --images-dir")
    _labels(tmp_path, "0 0.5 0.5 0.2 0.2\n")
    result = run_cli("yolo2tfr", labels, "--images-dir", SAMPLE / "images", "--names", YOLO / "classes.txt",
                     "-o", tmp_path / "x.record")
    assert_bad_input(result, "ghost.txt", "label file without an image")
    result = run_cli("yolo2tfr", labels, "--images-dir", SAMPLE / "images", "--names", YOLO / "classes.txt",
                     "-o", tmp_path / "x.record", "--skip-invalid")
    assert result.exit_code == 0 and "skipped images: 1" in result.output


@pytest.mark.parametrize("yaml_text, fragment", [
    ("names: {0: a, 2: b}\ntrain: x\n", "the ids are not 0..N-1"),
    ("names: [a, a]\ntrain: x\n", "listed twice"),
    ("names: 7\ntrain: x\n", "names is not a list"),
    ("[1, 2]\n", "no mapping at the top"),
    ("names: [a]\n", "no train, val or test entry"),
    ("names: [a\n", "not valid YAML"),
])
def test_bad_data_yaml(tmp_path, yaml_text, fragment):
    (tmp_path / "data.yaml").write_text(yaml_text)
    assert_bad_input(run_cli("yolo2tfr", tmp_path / "data.yaml", "-o", tmp_path / "{split}.record"),
                     fragment)


def test_make_labelmap_from_a_data_yaml(ultralytics, tmp_path):
    result = run_cli("make-labelmap", ultralytics / "data.yaml", "--order", "first-seen", "-o",
                     tmp_path / "lm.pbtxt")
    assert result.exit_code == 0, result.output
    assert 'id: 3\n  name: "traffic light"' in (tmp_path / "lm.pbtxt").read_text()


@FUZZ
@given(st.lists(st.sampled_from(["0", "1", "2", "9", "-1", "0.5", "1e400", "nan", "inf", "x", "", " ",
                                 "\t", "0.123456", "1.0001"]), max_size=12).map(" ".join))
def test_line_parser_raises_only_its_own_error(line):
    from odprep.readers.yolo import _parse_line

    with contextlib.suppress(OdprepError):
        obj = _parse_line(line, 1, Path("a.txt"), ["cat", "dog", "light"], "a.jpg")
        assert obj.xmin <= obj.xmax and obj.ymin <= obj.ymax


def test_a_run_with_no_object_anywhere_is_refused_unless_a_label_map_is_given(tmp_path):
    """The images folder given as the labels: every image a negative, no class for a label map."""
    out = tmp_path / "out"
    result = run_cli("yolo2tfr", SAMPLE / "images", "--images-dir", SAMPLE / "images", "--names",
                     YOLO / "classes.txt", "-o", out / "train.record")
    assert_bad_input(result, "none of the 6 image(s) has an object", "--label-map")
    assert not out.exists() or list(out.iterdir()) == []
    (tmp_path / "map.pbtxt").write_text('item {\n  id: 1\n  name: "cat"\n}\n')
    negatives = run_cli("yolo2tfr", SAMPLE / "images", "--images-dir", SAMPLE / "images", "--names",
                        YOLO / "classes.txt", "-o", out / "train.record", "--label-map", tmp_path / "map.pbtxt")
    assert negatives.exit_code == 0, negatives.output
