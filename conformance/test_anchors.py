"""The anchors `check` measures are the trainers' own: odprep's equal the OD API's
anchor_generator_builder output and Model Garden's Anchor boxes for every anchor-based
template, the grid matches the feature maps a real SSD model builds, a config fitted with
--fit-anchors trains, and on small objects its anchors (the trainer's, not odprep's) reach
more boxes."""

from __future__ import annotations

import math
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from object_detection import inputs, model_lib_v2
from object_detection.builders import anchor_generator_builder, model_builder
from object_detection.core import standard_fields as fields

from odprep.anchors import boxes
from odprep.checks.facts import load_facts

from .conftest import SAMPLE, odprep, template_names
from .test_model_garden import train_with_official_vision
from .test_od_api import configs_of

OD_API_ANCHORED = [t for t in template_names() if not t.startswith("centernet")]
GARDEN = {"retinanet_resnet18_fpn_256": "retinanet_resnetfpn_coco",
          "maskrcnn_resnet18_fpn_256": "maskrcnn_resnetfpn_coco"}


def _od_api_generator(model_config):
    arch = model_config.WhichOneof("model")
    block = getattr(model_config, arch)
    return anchor_generator_builder.build(block.anchor_generator if arch == "ssd" else
                                          block.first_stage_anchor_generator)


def _canvas(facts) -> tuple[int, int]:
    """(height, width) of what the network sees for these templates (fixed or padded)."""
    width, height = facts.resizer.canvas(np.array([640]), np.array([480]))
    return int(height[0]), int(width[0])


@pytest.mark.parametrize("template", OD_API_ANCHORED)
def test_odprep_anchors_equal_the_od_api_anchor_generator_builder(datasets, template):
    config = datasets["voc"].config(template)
    facts = load_facts(config)
    height, width = _canvas(facts)
    levels = facts.anchors.generator.levels(height, width)
    generator = _od_api_generator(configs_of(config)["model"])
    shapes = [level.grid for level in levels]
    if facts.anchors.generator.kind == "grid_anchor_generator":
        real = generator.generate(shapes)
        scale = np.ones(4)
    else:
        real = generator.generate(shapes, im_height=height, im_width=width)
        scale = np.array([height, width, height, width])
    theirs = np.concatenate([b.get().numpy() for b in real]) * scale
    assert generator.num_anchors_per_location() == [len(level.shapes) for level in levels]
    assert theirs.shape == boxes(levels).shape
    assert np.allclose(theirs, boxes(levels), atol=1e-2), np.abs(theirs - boxes(levels)).max()


@pytest.mark.parametrize("template", ["ssd_mobilenet_v2_fpnlite_320", "efficientdet_d0_512"])
def test_odprep_grid_is_the_feature_maps_of_the_real_ssd_model(datasets, template):
    """The anchors a built model uses (its predict output) equal odprep's: the feature map
    sizes odprep assumes are the extractor's."""
    config = datasets["voc"].config(template)
    facts = load_facts(config)
    height, width = _canvas(facts)
    model = model_builder.build(configs_of(config)["model"], is_training=False)
    images, shapes = model.preprocess(tf.zeros([1, height, width, 3]))
    predicted = model.predict(images, shapes)["anchors"].numpy()
    ours = boxes(facts.anchors.generator.levels(height, width)) / np.array([height, width, height, width])
    assert predicted.shape == ours.shape and np.allclose(predicted, ours, atol=1e-5)


@pytest.mark.parametrize("template", sorted(GARDEN))
def test_odprep_anchors_equal_model_garden_anchor_boxes(tmp_path, template):
    import official.vision.registry_imports  # noqa: F401 - registers the experiments
    from official.core import exp_factory
    from official.modeling import hyperparams
    from official.vision.ops import anchor

    config = tmp_path / "exp.yaml"
    odprep("new-config", "--template", template, "--num-classes", "3", "-o", config)
    params = hyperparams.override_params_dict(exp_factory.get_exp_config(GARDEN[template]), str(config),
                                              is_strict=True).task.model
    size = params.input_size[:2]
    real = anchor.Anchor(params.min_level, params.max_level, params.anchor.num_scales,
                         params.anchor.aspect_ratios, params.anchor.anchor_size, size).multilevel_boxes
    theirs = np.concatenate([real[str(level)].numpy().reshape(-1, 4) for level in
                             range(params.min_level, params.max_level + 1)])
    facts = load_facts(config)
    ours = boxes(facts.anchors.generator.levels(*size))
    assert theirs.shape == ours.shape and np.allclose(theirs, ours, atol=1e-2)


def _small_voc(folder, count: int = 6):
    """Images of 640x640 (the sample picture, scaled by the annotation) with 40 px objects:
    20 px at SSD's 320, under its smallest anchor."""
    annotations = folder / "Annotations"
    annotations.mkdir(parents=True)
    from PIL import Image

    images = folder / "images"
    images.mkdir()
    for i in range(count):
        Image.open(SAMPLE / "images" / "cat_dog.jpg").resize((640, 640)).save(images / f"small_{i}.jpg")
        objects = "".join(f"<object><name>cat</name><bndbox><xmin>{60 + 120 * j + 7 * i}</xmin><ymin>"
                          f"{80 + 100 * j}</ymin><xmax>{100 + 120 * j + 7 * i}</xmax><ymax>{120 + 100 * j}</ymax>"
                          "</bndbox></object>" for j in range(4))
        (annotations / f"small_{i}.xml").write_text(
            f"<annotation><filename>small_{i}.jpg</filename><size><width>640</width><height>640</height>"
            f"<depth>3</depth></size>{objects}</annotation>")
    odprep("voc2tfr", annotations, "--images-dir", images, "-o", folder / "small.record")
    return folder / "small.record"


def _real_recall(config, threshold: float) -> float:
    """BPR from the OD API alone: its eval input's ground truth against every anchor its
    builder generates (brute force)."""
    configs = configs_of(config)
    evaluation = inputs.eval_input(configs["eval_config"], configs["eval_input_configs"][0], configs["model"])
    generator = _od_api_generator(configs["model"])
    best = []
    for features, labels in evaluation.take(6):
        height, width = features[fields.InputDataFields.image].shape[1:3]
        count = int(labels[fields.InputDataFields.num_groundtruth_boxes][0])
        truth = labels[fields.InputDataFields.groundtruth_boxes][0, :count].numpy() * [height, width, height, width]
        levels = load_facts(config).anchors.generator.levels(height, width)
        real = generator.generate([level.grid for level in levels], im_height=height, im_width=width)
        anchors = np.concatenate([b.get().numpy() for b in real]) * [height, width, height, width]
        top = np.maximum(truth[:, None, :2], anchors[None, :, :2])
        bottom = np.minimum(truth[:, None, 2:], anchors[None, :, 2:])
        inter = np.prod(np.clip(bottom - top, 0, None), axis=2)
        area = lambda b: (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])  # noqa: E731
        best.extend((inter / (area(truth)[:, None] + area(anchors)[None, :] - inter)).max(axis=1))
    return float(np.mean(np.array(best) >= threshold))


def test_fitted_anchors_reach_small_objects_by_the_trainers_own_anchors_and_train(tmp_path):
    records = _small_voc(tmp_path)
    config = tmp_path / "p.config"
    odprep("new-config", "--template", "ssd_mobilenet_v2_fpnlite_320", "--train-input", records, "--eval-input",
           records, "--label-map", tmp_path / "label_map.pbtxt", "--no-checkpoint", "--batch-size", "2",
           "--num-steps", "3", "-o", config)
    checked = subprocess.run([sys.executable, "-m", "odprep", "check", str(config)], capture_output=True, text=True)
    assert "anchors-miss-boxes" in checked.stdout, checked.stdout
    fitted = tmp_path / "fitted.config"
    done = subprocess.run([sys.executable, "-m", "odprep", "patch-config", str(config), "--fit-anchors", "-o",
                           str(fitted)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    before, after = (float(v.rstrip("%")) / 100 for v in
                     re.search(r"best possible recall ([\d.]+%) -> ([\d.]+%)", done.stderr).groups())
    threshold = load_facts(config).anchors.threshold
    # the trainer's own anchors and ground truth agree with what odprep printed
    assert math.isclose(_real_recall(config, threshold), before, abs_tol=0.01)
    assert math.isclose(_real_recall(fitted, threshold), after, abs_tol=0.01)
    assert after > before
    seen: dict = {}
    model_lib_v2.train_loop(str(fitted), str(tmp_path / "model"), train_steps=3, checkpoint_every_n=1000,
                            record_summaries=False, num_steps_per_iteration=1, use_bfloat16=False,
                            performance_summary_exporter=lambda metrics, _: seen.update(metrics))
    assert math.isfinite(seen["last_batch_loss"]), seen


def test_a_fitted_model_garden_experiment_trains(tmp_path):
    records = _small_voc(tmp_path)
    config = tmp_path / "exp.yaml"
    odprep("new-config", "--template", "retinanet_resnet18_fpn_256", "--train-input", records, "--eval-input",
           records, "--label-map", tmp_path / "label_map.pbtxt", "--num-steps", 2, "--fit-anchors", "-o", config)
    assert "anchor_size" in config.read_text()
    train_with_official_vision("retinanet_resnetfpn_coco", config, tmp_path / "model")
