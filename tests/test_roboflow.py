"""Roboflow's exports as Roboflow writes them (sample_data/roboflow_*, made by
scripts/make_export_samples.py in the shape of real exports): read back through the OD
API's spec, with every record paired with its own image's bytes."""

from __future__ import annotations

import hashlib
import shutil

from .conftest import SAMPLE, parse_with_od_api_spec
from .helpers import assert_bad_input, run_cli
from .test_voc import TRUTH, assert_matches_truth

YOLO = SAMPLE / "roboflow_yolo"
COCO = SAMPLE / "roboflow_coco"
SPLITS = {"train": ["cat_dog.jpg", "street.png", "gray.jpg"], "val": ["Upper.JPG", "empty.jpg"],
          "test": ["palette.png"]}


def original_name(roboflow_name: str) -> str:
    """cat_dog_jpg.rf.HASH.jpg -> cat_dog.jpg (Roboflow keeps the source name before .rf.)."""
    stem, _, ext = roboflow_name.split(".rf.")[0].rpartition("_")
    return f"{stem}.{ext}"


def assert_records_are_the_sample(rows, names):
    for row in rows:
        original = original_name(row["image/filename"].decode())
        assert hashlib.sha256(row["image/encoded"]).digest() == \
            hashlib.sha256((SAMPLE / "images" / original).read_bytes()).digest()  # its own pixels
        row["image/filename"] = original.encode()
    assert_matches_truth(rows, expect_labels=False, images=names)
    for row in rows:
        objects = TRUTH[row["image/filename"].decode()][1]
        ids = {"cat": 1, "dog": 2, "traffic light": 3}  # names order + 1, whatever the file says
        assert list(row["image/object/class/label"]) == [ids[o[0]] for o in objects]


def test_roboflow_yolo_data_yaml_resolves_its_parent_paths(tf, tmp_path):
    result = run_cli("yolo2tfr", YOLO / "data.yaml", "-o", tmp_path / "{split}.record")
    assert result.exit_code == 0, result.output
    for split, names in SPLITS.items():
        assert_records_are_the_sample(parse_with_od_api_spec(tf, [tmp_path / f"{split}.record"]), names)


def test_a_data_yaml_entry_that_resolves_nowhere_says_how_it_was_resolved(tmp_path):
    copy = tmp_path / "export"
    shutil.copytree(YOLO, copy)
    shutil.rmtree(copy / "valid")
    result = run_cli("yolo2tfr", copy / "data.yaml", "-o", tmp_path / "{split}.record")
    assert_bad_input(result, "'../valid/images'", "relative to path:", "Ultralytics")


def test_a_label_file_without_an_image_is_refused_in_data_yaml_mode_too(tmp_path):
    copy = tmp_path / "export"
    shutil.copytree(YOLO, copy)
    (copy / "train" / "labels" / "lost.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    result = run_cli("yolo2tfr", copy / "data.yaml", "-o", tmp_path / "out" / "{split}.record")
    assert_bad_input(result, "lost.txt", "label file without an image")
    assert not (tmp_path / "out").exists()
    skipped = run_cli("yolo2tfr", copy / "data.yaml", "-o", tmp_path / "out" / "{split}.record",
                      "--skip-invalid")
    assert skipped.exit_code == 0 and "lost.txt" in skipped.output


def test_an_unreadable_label_file_is_never_a_silent_negative(tmp_path):
    copy = tmp_path / "export"
    shutil.copytree(YOLO, copy)
    label = next((copy / "train" / "labels").glob("cat_dog*.txt"))
    label.unlink()
    label.symlink_to(tmp_path / "nowhere.txt")  # dangling
    result = run_cli("yolo2tfr", copy / "data.yaml", "-o", tmp_path / "out" / "{split}.record")
    assert_bad_input(result, label.name)


def test_darknet_labels_file_names_the_classes(tmp_path):
    folder = tmp_path / "train"
    shutil.copytree(YOLO / "train" / "images", folder)
    for label in (YOLO / "train" / "labels").iterdir():
        shutil.copy(label, folder / label.name)
    (folder / "_darknet.labels").write_text("cat\ndog\ntraffic light\n")
    result = run_cli("yolo2tfr", folder, "--images-dir", folder, "-o", tmp_path / "train.record")
    assert result.exit_code == 0, result.output


def test_roboflow_coco_drops_its_unused_category_0(tf, tmp_path):
    for split, names in SPLITS.items():
        folder = COCO / ("valid" if split == "val" else split)
        out = tmp_path / split / "x.record"
        result = run_cli("coco2tfr", folder / "_annotations.coco.json", "--images-dir", folder, "-o", out)
        assert result.exit_code == 0, result.output
        assert "category 0 ('pets-and-streets') is used by no annotation" in result.output
        label_map = (tmp_path / split / "label_map.pbtxt").read_text()
        assert "pets-and-streets" not in label_map and label_map.count("item {") == 3
        assert_records_are_the_sample(parse_with_od_api_spec(tf, [out]), names)
