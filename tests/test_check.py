"""odprep check: a consistent trio passes; each inconsistency is named."""

from __future__ import annotations

import pytest

from .conftest import SAMPLE
from .helpers import run_cli


@pytest.fixture
def trio(tmp_path, monkeypatch):
    """Records, label map and a patched config that agree, in a scratch folder."""
    monkeypatch.chdir(tmp_path)
    for split in ("train", "val"):
        result = run_cli("voc2tfr", SAMPLE / "voc" / "Annotations", "--images-dir",
                         SAMPLE / "images", "-o", f"data/{split}.record", "-q")
        assert result.exit_code == 0, result.output
    result = run_cli("patch-config", SAMPLE / "configs" / "pipeline.config", "--train-input",
                     "data/train.record", "--eval-input", "data/val.record", "--label-map",
                     "data/label_map.pbtxt", "-o", "pipeline.config")
    assert result.exit_code == 0, result.output
    return tmp_path


def test_consistent_trio_passes_with_overlap_warning(trio):
    result = run_cli("check", "pipeline.config")
    assert result.exit_code == 0, result.output
    assert "train-eval-overlap" in result.output  # same images in both: a warning only


def test_num_classes_off_by_one(trio):
    run_cli("patch-config", "pipeline.config", "--num-classes", "4", "--in-place")
    result = run_cli("check", "pipeline.config")
    assert result.exit_code == 1
    assert "num_classes is 4" in result.output and "Set num_classes: 3" in result.output


def test_class_missing_from_the_map(trio):
    (trio / "data" / "label_map.pbtxt").write_text('item { id: 1 name: "cat" }\n'
                                                  'item { id: 2 name: "dog" }\n')
    run_cli("patch-config", "pipeline.config", "--label-map", "data/label_map.pbtxt", "--in-place")
    result = run_cli("check", "pipeline.config")
    assert result.exit_code == 1
    assert "text-not-in-map" in result.output and "'traffic light'" in result.output
    assert "label-not-in-map" in result.output and "class/label 3" in result.output
    assert "-1" in result.output


def test_text_and_label_disagree(trio):
    (trio / "data" / "label_map.pbtxt").write_text(
        'item { id: 1 name: "dog" }\nitem { id: 2 name: "cat" }\nitem { id: 3 name: "traffic light" }\n')
    result = run_cli("check", "pipeline.config")
    assert result.exit_code == 1
    assert "text-label-disagree" in result.output


def test_input_path_that_matches_nothing(trio):
    run_cli("patch-config", "pipeline.config", "--eval-input", "data/nothing-*.record", "--in-place")
    result = run_cli("check", "pipeline.config")
    assert result.exit_code == 1
    assert "'data/nothing-*.record' matches no file" in result.output


def test_masks_switched_on_without_masks_in_records(trio):
    run_cli("patch-config", "pipeline.config", "--masks", "--in-place")
    result = run_cli("check", "pipeline.config")
    assert result.exit_code == 1 and "masks-missing" in result.output


def test_corrupt_record_is_a_finding(trio):
    path = trio / "data" / "val.record"
    data = bytearray(path.read_bytes())
    data[100] ^= 0xFF
    path.write_bytes(bytes(data))
    result = run_cli("check", "pipeline.config")
    assert result.exit_code == 1 and "record-corrupt" in result.output


def test_unreadable_config_exits_2(tmp_path):
    bad = tmp_path / "bad.config"
    bad.write_text("model { ssd { num_classes: 3 }\n")
    result = run_cli("check", bad)
    assert result.exit_code == 2 and "never closed" in result.output
    assert run_cli("check", tmp_path / "missing.config").exit_code == 2


def test_json_output(trio):
    import json

    result = run_cli("check", "pipeline.config", "--json")
    payload = json.loads(result.output)
    assert payload["errors"] == 0 and payload["findings"][0]["kind"] == "train-eval-overlap"


def test_paths_relative_to_the_config_folder_get_a_hint(trio, monkeypatch):
    monkeypatch.chdir(trio.parent)
    result = run_cli("check", trio / "pipeline.config")
    assert result.exit_code == 1
    assert "does match relative to the config's folder" in result.output


def test_patch_config_from_a_template(trio):
    result = run_cli("patch-config", "--template", "faster_rcnn_resnet50_v1_640", "--train-input",
                     "data/train.record", "--eval-input", "data/val.record", "--label-map",
                     "data/label_map.pbtxt", "-o", "frcnn.config")
    assert result.exit_code == 0, result.output
    assert run_cli("check", "frcnn.config").exit_code == 0
