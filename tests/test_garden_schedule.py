"""Model Garden schedules: an experiment YAML without trainer.optimizer_config trains with
its experiment's COCO schedule (boundaries at 26k and 31k steps, rate 0.32 for batch 256);
check says so, and patch-config --num-steps / --scale-lr write a schedule that fits."""

from __future__ import annotations

import json

import pytest

from odprep.experiment_config import load

from .helpers import framed_example, run_cli

BARE = """task:
  model:
    num_classes: 3
    input_size: [256, 256, 3]
  train_data:
    input_path: {train}
    global_batch_size: 2
  validation_data:
    input_path: {train}
    global_batch_size: 2
trainer:
  train_steps: 1000
"""


def _records(tmp_path):
    path = tmp_path / "train.record"
    path.write_bytes(b"".join(framed_example(f"p{i}.jpg", [("cat", 0.1, 0.4, 0.2, 0.8)]) for i in range(4)))
    return path


def _kinds(config) -> dict:
    result = run_cli("check", config, "--json")
    return {f["kind"]: f for f in json.loads(result.output)["findings"]}


def test_an_implicit_schedule_is_the_experiments_and_does_not_fit(tmp_path):
    config = tmp_path / "exp.yaml"
    config.write_text(BARE.format(train=_records(tmp_path)))
    found = _kinds(config)
    assert "schedule-steps-differ" in found
    message = found["schedule-steps-differ"]["examples"][0]
    assert "boundaries (the retinanet_resnetfpn_coco default" in message and "30954" in message
    assert "the learning rate 0.32 is the zoo's for batch size 256" in \
        found["learning-rate-for-another-batch"]["examples"][0]
    fixed = run_cli("patch-config", config, "--num-steps", "1000", "--scale-lr", "-o", tmp_path / "fixed.yaml")
    assert fixed.exit_code == 0, fixed.output
    document = load((tmp_path / "fixed.yaml").read_text())[0]
    rate = document["trainer"]["optimizer_config"]["learning_rate"]
    assert rate["type"] == "stepwise" and list(rate["stepwise"]["boundaries"]) == [792, 931]
    assert list(rate["stepwise"]["values"]) == pytest.approx([0.0025, 0.00025, 0.000025])
    warmup = document["trainer"]["optimizer_config"]["warmup"]["linear"]
    assert warmup["warmup_steps"] == 500 and warmup["warmup_learning_rate"] == pytest.approx(0.0067 * 2 / 256)
    again = _kinds(tmp_path / "fixed.yaml")
    assert "schedule-steps-differ" not in again and "learning-rate-for-another-batch" not in again


@pytest.mark.parametrize("template", ["retinanet_resnet18_fpn_256", "maskrcnn_resnet18_fpn_256"])
def test_the_templates_schedules_fit_and_move_with_num_steps(tmp_path, template):
    records = _records(tmp_path)
    made = run_cli("new-config", "--template", template, "--train-input", records, "--eval-input", records,
                   "--num-classes", "2", "--no-masks", "-o", tmp_path / "a.yaml")
    assert made.exit_code == 0, made.output
    found = _kinds(tmp_path / "a.yaml")
    assert not {"schedule-steps-differ", "warmup-longer-than-training", "learning-rate-for-another-batch"} & \
        set(found), found
    shorter = run_cli("patch-config", tmp_path / "a.yaml", "--num-steps", "100", "--batch-size", "8", "--scale-lr",
                      "-o", tmp_path / "b.yaml")
    assert shorter.exit_code == 0, shorter.output
    before = load((tmp_path / "a.yaml").read_text())[0]["trainer"]["optimizer_config"]
    after = load((tmp_path / "b.yaml").read_text())[0]["trainer"]["optimizer_config"]
    old, new = before["learning_rate"]["stepwise"], after["learning_rate"]["stepwise"]
    assert [round(b / 10) for b in old["boundaries"]] == list(new["boundaries"])
    assert list(new["values"]) == pytest.approx([4 * v for v in old["values"]])
    assert after["warmup"]["linear"]["warmup_steps"] < 100
    assert not {"schedule-steps-differ", "warmup-longer-than-training"} & set(_kinds(tmp_path / "b.yaml"))


def test_a_warmup_longer_than_training_is_an_error_and_num_steps_fixes_it(tmp_path):
    config = tmp_path / "exp.yaml"
    config.write_text(BARE.format(train=_records(tmp_path)).replace("train_steps: 1000", "train_steps: 300"))
    assert _kinds(config)["warmup-longer-than-training"]["severity"] == "error"
    fixed = run_cli("patch-config", config, "--num-steps", "300", "-o", tmp_path / "fixed.yaml")
    assert fixed.exit_code == 0, fixed.output
    assert "warmup-longer-than-training" not in _kinds(tmp_path / "fixed.yaml")
