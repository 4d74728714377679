"""odprep check: a consistent trio passes; each inconsistency is named."""

from __future__ import annotations

import pytest

from .conftest import SAMPLE
from .helpers import assert_bad_input, run_cli


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
                     "data/label_map.pbtxt", "--no-checkpoint", "--batch-size", "2",
                     "-o", "pipeline.config")
    assert result.exit_code == 0, result.output
    return tmp_path


def test_consistent_trio_passes_with_overlap_warning(trio):
    result = run_cli("check", "pipeline.config")
    assert result.exit_code == 0, result.output
    assert "train-eval-overlap" in result.output  # same images in both: a warning only


def test_num_classes_below_the_highest_id_is_an_error(trio):
    run_cli("patch-config", "pipeline.config", "--num-classes", "2", "--in-place")
    result = run_cli("check", "pipeline.config")
    assert result.exit_code == 1
    assert "num_classes is 2" in result.output and "Set num_classes: 3" in result.output


def test_num_classes_above_the_highest_id_is_an_error_with_its_fix(trio):
    run_cli("patch-config", "pipeline.config", "--num-classes", "90", "--in-place")  # left as the zoo's
    result = run_cli("check", "pipeline.config")
    assert result.exit_code == 1, result.output
    assert "ERROR num-classes-above-map" in result.output and "num_classes is 90" in result.output
    assert "patch-config --label-map data/label_map.pbtxt" in result.output
    assert run_cli("patch-config", "pipeline.config", "--label-map", "data/label_map.pbtxt", "--in-place").exit_code == 0
    assert "num-classes-above-map" not in run_cli("check", "pipeline.config").output


def test_gaps_in_the_map_are_a_warning_and_patching_covers_the_highest_id(trio):
    (trio / "data" / "label_map.pbtxt").write_text(
        'item { id: 3 name: "cat" }\nitem { id: 10 name: "dog" }\nitem { id: 18 name: "traffic light" }\n')
    result = run_cli("patch-config", "pipeline.config", "--label-map", "data/label_map.pbtxt", "--in-place")
    assert result.exit_code == 0 and "num_classes is set to 18 to cover the highest id, 18" in result.output
    result = run_cli("check", "pipeline.config")
    assert "WARNING label-map-id-gaps" in result.output and "1, 2, 4, 5" in result.output
    assert "num-classes-mismatch" not in result.output


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


def test_masks_on_a_model_without_a_mask_head_are_refused(trio):
    result = run_cli("patch-config", "pipeline.config", "--masks", "--in-place")
    assert_bad_input(result, "model ssd has no instance-mask head", "mask_rcnn_resnet50_v1_640")


def test_mask_model_on_records_without_masks(trio):
    result = run_cli("new-config", "--template", "mask_rcnn_resnet50_v1_640", "--train-input",
                     "data/train.record", "--eval-input", "data/val.record", "--label-map",
                     "data/label_map.pbtxt", "--no-checkpoint", "-o", "mask.config")
    assert result.exit_code == 0, result.output
    result = run_cli("check", "mask.config")
    assert result.exit_code == 1 and "masks-missing" in result.output


def test_mask_rcnn_that_resizes_padded_masks_is_an_error(trio):
    result = run_cli("new-config", "--template", "mask_rcnn_resnet50_v1_640", "--train-input",
                     "data/train.record", "--label-map", "data/label_map.pbtxt", "--no-masks",
                     "--no-checkpoint", "-o", "mask.config")
    text = (trio / "mask.config").read_text()
    text = text.replace("load_instance_masks: false", "load_instance_masks: true", 1)
    (trio / "mask.config").write_text(text.replace("resize_masks: false", "resize_masks: true"))
    result = run_cli("check", "mask.config")
    assert "resize-masks" in result.output and "Number of channels must be equal" in result.output
    (trio / "mask.config").write_text(text)
    assert "resize-masks" not in run_cli("check", "mask.config").output


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
    assert payload["errors"] == 0 and "train-eval-overlap" in [f["kind"] for f in payload["findings"]]


def test_paths_relative_to_the_config_folder_get_a_hint(trio, monkeypatch):
    monkeypatch.chdir(trio.parent)
    result = run_cli("check", trio / "pipeline.config")
    assert result.exit_code == 1
    assert "does match relative to the config's folder" in result.output


def test_patch_config_from_a_template(trio):
    result = run_cli("patch-config", "--template", "faster_rcnn_resnet50_v1_640", "--train-input",
                     "data/train.record", "--eval-input", "data/val.record", "--label-map",
                     "data/label_map.pbtxt", "--no-checkpoint", "--batch-size", "2", "-o", "frcnn.config")
    assert result.exit_code == 0, result.output
    assert run_cli("check", "frcnn.config").exit_code == 0


def _edit(path, old, new):
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


# kind -> how to break the consistent trio (a callable on its folder), and the severity expected.
BROKEN = {
    "records-empty": (lambda d: (d / "data" / "val.record").write_bytes(b""), 1),
    "path-not-set": (lambda d: _edit(d / "pipeline.config", 'input_path: "data/val.record"',
                                     'input_path: "PATH_TO_BE_CONFIGURED"'), 1),
    "checkpoint-missing": (lambda d: run_cli("patch-config", "pipeline.config", "--checkpoint",
                                             "nowhere/ckpt-0", "--in-place"), 1),
    "checkpoint-type": (lambda d: ((d / "ck").mkdir(), (d / "ck" / "ckpt-0.index").write_bytes(b""),
                                   run_cli("patch-config", "pipeline.config", "--checkpoint", "ck/ckpt-0",
                                           "--checkpoint-type", "fine_tune", "--in-place")), 1),
    "num-classes-not-integer": (lambda d: _edit(d / "pipeline.config", "num_classes: 3",
                                                "num_classes: 3.0"), 1),
    "batch-larger-than-data": (lambda d: run_cli("patch-config", "pipeline.config", "--batch-size", "64",
                                                 "--in-place"), 0),
    "eval-examples-above-data": (lambda d: run_cli("patch-config", "pipeline.config", "--eval-examples",
                                                   "500", "--in-place"), 0),
    "objects-vanish-after-resize": (lambda d: _edit(d / "pipeline.config", "height: 320 width: 320",
                                                    "height: 12 width: 12"), 0),
}


@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_each_problem_is_a_finding_with_a_fix_and_absent_without_it(trio, kind):
    assert kind not in run_cli("check", "pipeline.config").output
    breaker, exit_code = BROKEN[kind]
    breaker(trio)
    result = run_cli("check", "pipeline.config")
    assert kind in result.output and "fix:" in result.output, result.output
    assert result.exit_code == exit_code, result.output


def test_hex_num_classes_is_read_as_protobuf_reads_it(trio):
    _edit(trio / "pipeline.config", "num_classes: 3", "num_classes: 0x3")
    result = run_cli("check", "pipeline.config")
    assert result.exit_code == 0, result.output


def test_checkpoint_folder_instead_of_prefix_names_the_prefix(trio):
    (trio / "ck").mkdir()
    (trio / "ck" / "ckpt-3.index").write_bytes(b"")
    run_cli("patch-config", "pipeline.config", "--checkpoint", "ck", "--in-place")
    result = run_cli("check", "pipeline.config")
    assert "checkpoint-missing" in result.output and "ck/ckpt-3" in result.output
