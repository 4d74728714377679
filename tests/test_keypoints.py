"""coco2tfr --include-keypoints and the label map's keypoints blocks."""

from __future__ import annotations

import json

import numpy as np
import pytest

from odprep.labelmap import LabelMap

from .conftest import SAMPLE
from .helpers import assert_bad_input, run_cli

NAMES = ["nose", "left_eye", "right_eye"]


def keypoint_coco(keypoints=(50, 20, 2, 0, 0, 0, 60, 22, 1), extra=None) -> dict:
    return {"images": [{"id": 1, "file_name": "cat_dog.jpg", "width": 96, "height": 64}],
            "categories": [{"id": 1, "name": "person", "keypoints": NAMES, "skeleton": [[1, 2]]},
                           {"id": 2, "name": "dog"}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [40, 10, 30, 40],
                             "keypoints": list(keypoints), "num_keypoints": 2},
                            {"id": 2, "image_id": 1, "category_id": 2, "bbox": [5, 5, 20, 20]},
                            *(extra or [])]}


def test_keypoints_are_written_as_the_od_api_writes_them(tf, tmp_path):
    (tmp_path / "k.json").write_text(json.dumps(keypoint_coco()))
    out = tmp_path / "x.record"
    result = run_cli("coco2tfr", tmp_path / "k.json", "--images-dir", SAMPLE / "images", "-o", out,
                     "--include-keypoints")
    assert result.exit_code == 0, result.output
    spec = {"image/object/keypoint/x": tf.io.VarLenFeature(tf.float32),
            "image/object/keypoint/y": tf.io.VarLenFeature(tf.float32),
            "image/object/keypoint/visibility": tf.io.VarLenFeature(tf.int64),
            "image/object/keypoint/num": tf.io.VarLenFeature(tf.int64),
            "image/object/keypoint/text": tf.io.VarLenFeature(tf.string)}
    raw = next(iter(tf.data.TFRecordDataset([str(out)])))
    row = {k: tf.sparse.to_dense(v).numpy() for k, v in tf.io.parse_single_example(raw, spec).items()}
    np.testing.assert_allclose(row["image/object/keypoint/x"], [50 / 96, 0, 60 / 96, 0, 0, 0], atol=1e-7)
    np.testing.assert_allclose(row["image/object/keypoint/y"], [20 / 64, 0, 22 / 64, 0, 0, 0], atol=1e-7)
    assert list(row["image/object/keypoint/visibility"]) == [2, 0, 1, 0, 0, 0]  # the dog: 3 unlabeled
    assert list(row["image/object/keypoint/num"]) == [2, 0]
    assert [t.decode() for t in row["image/object/keypoint/text"]] == NAMES * 2
    assert run_cli("validate", out, "--strict").exit_code == 0


def test_make_labelmap_writes_the_keypoints_blocks_and_reads_them_back(tmp_path):
    (tmp_path / "k.json").write_text(json.dumps(keypoint_coco()))
    assert run_cli("make-labelmap", tmp_path / "k.json", "-o", tmp_path / "lm.pbtxt").exit_code == 0
    text = (tmp_path / "lm.pbtxt").read_text()
    assert 'keypoints { id: 0 label: "nose" }' in text and 'keypoints { id: 2 label: "right_eye" }' in text
    loaded = LabelMap.load(tmp_path / "lm.pbtxt")
    assert loaded.items[0].keypoints == ((0, "nose"), (1, "left_eye"), (2, "right_eye"))
    assert loaded.items[1].keypoints == ()


@pytest.mark.parametrize("keypoints, fragment", [
    ((50, 20, 2, 0, 0), "keypoints holds 5 values"),
    ((50, 20, 3, 0, 0, 0, 60, 22, 1), "visibility is not 0, 1 or 2"),
    ((50, float("nan"), 2, 0, 0, 0, 60, 22, 1), "keypoints holds NaN"),
])
def test_bad_keypoints_name_the_annotation(tmp_path, keypoints, fragment):
    (tmp_path / "k.json").write_text(json.dumps(keypoint_coco(keypoints)))
    result = run_cli("coco2tfr", tmp_path / "k.json", "--images-dir", SAMPLE / "images", "-o",
                     tmp_path / "x.record", "--include-keypoints")
    assert_bad_input(result, "annotation id 1", fragment)


def test_keypoints_need_a_keypoint_category(tmp_path):
    result = run_cli("coco2tfr", SAMPLE / "coco" / "instances.json", "--images-dir", SAMPLE / "images", "-o",
                     tmp_path / "x.record", "--include-keypoints")
    assert_bad_input(result, "no category names keypoints", "person_keypoints")
