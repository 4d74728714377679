"""Model Garden experiment YAML: lossless patching, num_classes = highest id + 1, and check."""

from __future__ import annotations

import difflib

import pytest

from odprep.errors import OdprepError
from odprep.experiment_config import patch_experiment
from odprep.pipeline_config import ConfigPatch, template_file, template_names

from .conftest import SAMPLE
from .helpers import assert_bad_input, run_cli

HAND_WRITTEN = """\
# RetinaNet for our parts dataset -- hand-tuned, keep the comments!
runtime:
  distribution_strategy: 'one_device'   # CPU box
task:
  model:
    num_classes: 91   # COCO
    input_size: [256, 256, 3]
    backbone: {type: resnet, resnet: {model_id: 18}}
  train_data:
    input_path: 'old/train-*'
    global_batch_size: 2
  validation_data:
    input_path:
      - "old/val-a"
      - "old/val-b"
    global_batch_size: 2
  annotation_file: null
trainer:
  train_steps: 100   # smoke
"""


# --num-steps writes the experiment's implicit schedule, moved to the new length (here 2 steps)
SCHEDULE_LINES = ["+  optimizer_config:", "+    learning_rate:", "+      type: stepwise", "+      stepwise:",
                  "+        boundaries: [1, 2]", "+        values: [0.32, 0.032, 0.0032]", "+    warmup:",
                  "+      type: linear", "+      linear:", "+        warmup_learning_rate: 0.0067",
                  "+        warmup_steps: 1"]


def changed_lines(before: str, after: str) -> list[str]:
    return [line for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
            if line[:1] in "+-" and not line.startswith(("+++", "---"))]


def test_only_the_asked_keys_change_and_comments_and_quotes_stay():
    after = patch_experiment(HAND_WRITTEN, ConfigPatch(
        train_inputs=("data/train.record",), eval_inputs=("data/val.record",), num_classes=4,
        batch_size=8, num_steps=2, regenerate_source_id=True, annotation_file="data/val.json"))
    changed = changed_lines(HAND_WRITTEN, after)
    assert sorted(line for line in changed if line[0] == "-") == sorted([
        "-    num_classes: 91   # COCO", "-    input_path: 'old/train-*'", "-    global_batch_size: 2",
        '-      - "old/val-a"', '-      - "old/val-b"', "-  annotation_file: null",
        "-  train_steps: 100   # smoke"]), after
    assert sorted(line for line in changed if line[0] == "+") == sorted([
        "+    num_classes: 4    # COCO", "+    input_path: 'data/train.record'",
        "+    global_batch_size: 8", '+      - "data/val.record"', "+    decoder:",
        "+      simple_decoder:", "+        regenerate_source_id: true", "+  annotation_file: data/val.json",
        "+  train_steps: 2     # smoke", *SCHEDULE_LINES]), after
    assert "input_size: [256, 256, 3]" in after and "backbone: {type: resnet" in after


def test_keys_the_experiment_lacks_are_never_written():
    seg = (SAMPLE.parent / "templates" / "deeplabv3plus_resnet18_256.yaml").read_text()
    with pytest.raises(OdprepError, match="has no task.annotation_file"):
        patch_experiment(seg, ConfigPatch(annotation_file="x.json"))
    with pytest.raises(OdprepError, match="has no mask head"):
        patch_experiment(HAND_WRITTEN, ConfigPatch(masks=True))


def test_windows_line_endings_survive():
    text = HAND_WRITTEN.replace("\n", "\r\n")
    after = patch_experiment(text, ConfigPatch(num_classes=4))
    assert after == text.replace("num_classes: 91   # COCO", "num_classes: 4    # COCO")


@pytest.fixture
def voc_records(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for split in ("train", "val"):
        assert run_cli("voc2tfr", SAMPLE / "voc" / "Annotations", "--images-dir", SAMPLE / "images",
                       "-o", f"data/{split}.record", "-q").exit_code == 0
    return tmp_path


def test_patch_sets_num_classes_to_highest_id_plus_one_and_regenerates_text_source_ids(voc_records):
    (voc_records / "exp.yaml").write_text(HAND_WRITTEN)
    result = run_cli("patch-config", "exp.yaml", "--train-input", "data/train.record", "--eval-input",
                     "data/val.record", "--label-map", "data/label_map.pbtxt", "--num-steps", "100", "--scale-lr",
                     "--in-place")
    assert result.exit_code == 0, result.output
    text = (voc_records / "exp.yaml").read_text()
    assert "num_classes: 4    # COCO" in text  # ids 1..3, plus the background
    assert "regenerate_source_id: true" in text and "source_id are not numbers" in result.output
    assert run_cli("check", "exp.yaml").exit_code == 0


@pytest.mark.parametrize("break_it, kind", [
    (lambda t: t.replace("num_classes: 4", "num_classes: 3"), "num-classes-mismatch"),
    (lambda t: t.replace("regenerate_source_id: true", "regenerate_source_id: false"),
     "source-id-not-numeric"),
    (lambda t: t.replace("input_path: 'data/train.record'", "input_path: 'data/nothing-*'"),
     "input-path-unmatched"),
    (lambda t: t.replace("annotation_file: null", "annotation_file: missing.json"),
     "annotation-file-missing"),
])
def test_check_finds_each_problem(voc_records, break_it, kind):
    (voc_records / "exp.yaml").write_text(HAND_WRITTEN)
    run_cli("patch-config", "exp.yaml", "--train-input", "data/train.record", "--eval-input",
            "data/val.record", "--label-map", "data/label_map.pbtxt", "--in-place")
    good = (voc_records / "exp.yaml").read_text()
    assert kind not in run_cli("check", "exp.yaml").output
    (voc_records / "exp.yaml").write_text(break_it(good))
    result = run_cli("check", "exp.yaml")
    assert result.exit_code == 1 and kind in result.output, result.output


def test_off_by_one_num_classes_names_the_effect(voc_records):
    (voc_records / "exp.yaml").write_text(HAND_WRITTEN)
    run_cli("patch-config", "exp.yaml", "--train-input", "data/train.record", "--eval-input",
            "data/val.record", "--num-classes", "3", "--in-place")
    result = run_cli("check", "exp.yaml")
    assert "Model Garden counts the background, so it needs 4" in result.output
    assert "one-hot" in result.output


@pytest.mark.parametrize("name", [n for n in template_names() if template_file(n).endswith(".yaml")])
def test_every_model_garden_template_passes_check_once_patched(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    if name.startswith("deeplab"):
        args = ["seg2tfr", SAMPLE / "seg" / "JPEGImages", SAMPLE / "seg" / "SegmentationClass"]
    elif name.startswith("maskrcnn"):
        args = ["coco2tfr", SAMPLE / "coco" / "instances.json", "--images-dir", SAMPLE / "images",
                "--include-masks"]
    else:
        args = ["voc2tfr", SAMPLE / "voc" / "Annotations", "--images-dir", SAMPLE / "images"]
    assert run_cli(*args, "-o", "data/train.record", "-q").exit_code == 0
    result = run_cli("new-config", "--template", name, "--train-input", "data/train.record",
                     "--eval-input", "data/train.record", "-o", "exp.yaml",
                     *([] if name.startswith("deeplab") else ["--label-map", "data/label_map.pbtxt"]))
    assert result.exit_code == 0, result.output
    assert "still to set" not in result.output
    result = run_cli("check", "exp.yaml")
    assert result.exit_code == 0, result.output


def test_new_config_names_what_is_still_to_set():
    result = run_cli("new-config", "--template", "retinanet_resnet18_fpn_256", "-o", "/dev/null/x.yaml")
    assert_bad_input(result, "x.yaml")


STYLED = """---
# Mask R-CNN, hand-tuned
runtime:
    distribution_strategy: one_device   # cpu
task:
    model:
        num_classes: 19  # 18 + bg
        include_mask: true
        anchor: &anchor
            num_scales: 1
    validation_data:
        input_path:
        -   "data/val.record"
        global_batch_size: 2
    init_checkpoint: ~
    annotation_file: ~
trainer:
    train_steps: 100  # ~1 epoch
...
"""


def test_document_markers_anchors_null_spelling_and_sequence_indent_survive():
    after = patch_experiment(STYLED, ConfigPatch(num_classes=5, eval_inputs=("a.record", "b.record")))
    assert changed_lines(STYLED, after) == [
        "-        num_classes: 19  # 18 + bg", "+        num_classes: 5   # 18 + bg",
        '-        -   "data/val.record"', '+        -   "a.record"', '+        -   "b.record"']


def test_yaml_that_is_not_an_experiment_is_one_line(tmp_path):
    (tmp_path / "x.yaml").write_text("- just\n- a list\n")
    assert_bad_input(run_cli("patch-config", tmp_path / "x.yaml", "--num-classes", "3", "-o",
                             tmp_path / "o.yaml"), "not a Model Garden experiment")
    (tmp_path / "x.yaml").write_text("task: {model: [\n")
    assert_bad_input(run_cli("check", tmp_path / "x.yaml"), "not valid YAML")


def test_patch_config_lists_a_path_left_as_the_template_wrote_it(tmp_path):
    from odprep.pipeline_config import template_text

    text = template_text("retinanet_resnet18_fpn_256").replace(
        "  annotation_file: null", "  annotation_file: '/path/to/annotations/instances_val2017.json'")
    (tmp_path / "exp.yaml").write_text(text)
    result = run_cli("patch-config", tmp_path / "exp.yaml", "--num-classes", "4", "-o", tmp_path / "out.yaml")
    assert result.exit_code == 0
    assert "annotation_file '/path/to/annotations/instances_val2017.json' (does not exist)" in result.output
    assert "--annotation-file, a COCO JSON that odprep tfr2coco writes, or null" in result.output
