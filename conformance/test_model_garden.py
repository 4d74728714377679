"""Model Garden (official.vision) loads, feeds and trains on what odprep writes."""

from __future__ import annotations

import math
import re
import subprocess
import sys

import pytest

from .conftest import SAMPLE, odprep

# template -> (experiment, converter arguments, uses the label map)
CASES = {
    "retinanet_resnet18_fpn_256": ("retinanet_resnetfpn_coco",
                                   ["voc2tfr", SAMPLE / "voc" / "Annotations", "--images-dir",
                                    SAMPLE / "images"], True),
    "maskrcnn_resnet18_fpn_256": ("maskrcnn_resnetfpn_coco",
                                  ["coco2tfr", SAMPLE / "coco" / "instances.json", "--images-dir",
                                   SAMPLE / "images", "--include-masks"], True),
    "deeplabv3plus_resnet18_256": ("seg_deeplabv3plus_pascal",
                                   ["seg2tfr", SAMPLE / "seg" / "JPEGImages",
                                    SAMPLE / "seg" / "SegmentationClass"], False),
}


@pytest.fixture(scope="module")
def experiments(tmp_path_factory):
    out = {}
    for template, (experiment, converter, uses_map) in CASES.items():
        folder = tmp_path_factory.mktemp(template)
        odprep(*converter, "-o", folder / "train.record")
        config = folder / "exp.yaml"
        odprep("new-config", "--template", template, "--train-input", folder / "train.record",
               "--eval-input", folder / "train.record", "--num-steps", 2, "-o", config,
               *(["--label-map", folder / "label_map.pbtxt"] if uses_map else []))
        odprep("check", config)
        out[template] = (experiment, config, folder)
    return out


@pytest.mark.parametrize("template", sorted(CASES))
def test_odprep_yaml_loads_strictly_and_the_task_reads_the_records(experiments, template):
    import official.vision.registry_imports  # noqa: F401 - registers the experiments
    from official.core import exp_factory, task_factory
    from official.modeling import hyperparams

    experiment, config, _ = experiments[template]
    params = hyperparams.override_params_dict(exp_factory.get_exp_config(experiment), str(config),
                                              is_strict=True)
    params.validate()
    task = task_factory.get_task(params.task)
    images, labels = next(iter(task.build_inputs(params.task.train_data)))
    assert tuple(images.shape) == (2, 256, 256, 3)
    if template.startswith("maskrcnn"):
        assert "gt_masks" in labels
    if template.startswith("deeplab"):
        assert int(labels["masks"].numpy().max()) in (*range(params.task.model.num_classes), 255)


@pytest.mark.parametrize("template", sorted(CASES))
def test_two_training_steps_through_official_vision_train_have_finite_losses(experiments, template):
    experiment, config, folder = experiments[template]
    train_with_official_vision(experiment, config, folder / "model")


def train_with_official_vision(experiment: str, config, model_dir) -> None:
    """Train as a user would (python -m official.vision.train); every loss logged is finite."""
    result = subprocess.run([sys.executable, "-m", "official.vision.train", f"--experiment={experiment}",
                             f"--config_file={config}", "--mode=train", f"--model_dir={model_dir}"],
                            capture_output=True, text=True, timeout=900)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-3000:]
    losses = [float(v) for v in re.findall(r"'(?:total_loss|training_loss)': (-?[\d.e+-]+|nan|inf)", log)]
    assert losses and all(math.isfinite(v) for v in losses), log[-3000:]


def test_evaluation_against_the_tfr2coco_annotation_file(experiments, tmp_path):
    """VOC records carry file names as source ids: regenerate_source_id is set, and tfr2coco
    writes the ids Model Garden regenerates, so its COCO evaluator matches every image."""
    experiment, config, folder = experiments["retinanet_resnet18_fpn_256"]
    annotations = tmp_path / "val.json"
    odprep("tfr2coco", folder / "train.record", "-o", annotations, "--label-map", folder / "label_map.pbtxt")
    evaluated = tmp_path / "exp.yaml"
    odprep("patch-config", config, "--annotation-file", annotations, "-o", evaluated)
    result = subprocess.run([sys.executable, "-m", "official.vision.train", f"--experiment={experiment}",
                             f"--config_file={evaluated}", "--mode=train_and_eval",
                             f"--model_dir={tmp_path / 'model'}",
                             "--params_override=trainer.validation_steps=3"],
                            capture_output=True, text=True, timeout=900)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-3000:]
    assert re.search(r"'AP': ", log), log[-3000:]


def test_model_garden_cuts_groundtruths_where_check_says(tmp_path):
    """150 boxes in one image: check names parser.max_num_instances (100); Model Garden's
    eval input indeed cuts the groundtruths there; after --max-objects 150 it keeps them."""
    import official.vision.registry_imports  # noqa: F401 - registers the experiments
    from official.core import exp_factory, task_factory
    from official.modeling import hyperparams

    from .test_od_api import _crowded_voc

    annotations = _crowded_voc(tmp_path)
    odprep("voc2tfr", annotations, "--images-dir", SAMPLE / "images", "-o", tmp_path / "crowd.record")
    config = tmp_path / "exp.yaml"
    odprep("new-config", "--template", "retinanet_resnet18_fpn_256", "--train-input", tmp_path / "crowd.record",
           "--eval-input", tmp_path / "crowd.record", "--label-map", tmp_path / "label_map.pbtxt", "-o", config)
    checked = subprocess.run([sys.executable, "-m", "odprep", "check", str(config)], capture_output=True, text=True)
    assert checked.returncode == 1 and "task.validation_data.parser.max_num_instances is 100" in checked.stdout

    def kept() -> int:
        params = hyperparams.override_params_dict(exp_factory.get_exp_config("retinanet_resnetfpn_coco"),
                                                  str(config), is_strict=True)
        params.task.validation_data.global_batch_size = 1
        task = task_factory.get_task(params.task)
        _, labels = next(iter(task.build_inputs(params.task.validation_data)))
        return int(labels["groundtruths"]["boxes"].shape[1])

    assert kept() == 100
    odprep("patch-config", config, "--max-objects", "150", "--in-place")
    assert kept() == 150
