"""The real TF Object Detection API reads, feeds and trains on what odprep writes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import tensorflow as tf
from object_detection import inputs, model_lib_v2
from object_detection.builders import decoder_builder, model_builder
from object_detection.core import standard_fields as fields
from object_detection.utils import config_util

from .conftest import DATASETS, template_names

ALL = [*DATASETS, "voc_splits"]
MASK_TEMPLATES = ("mask_rcnn_resnet50_v1_640",)


def configs_of(path):
    return config_util.get_configs_from_pipeline_file(str(path))


def stored_labels(paths) -> list[list[int]]:
    out = []
    for raw in tf.data.TFRecordDataset([str(p) for p in paths]):
        example = tf.train.Example.FromString(raw.numpy())
        out.append(list(example.features.feature["image/object/class/label"].int64_list.value))
    return out


@pytest.mark.parametrize("template", template_names())
def test_every_template_loads_with_the_od_api_protos(datasets, template):
    data = datasets["coco_masks" if template in MASK_TEMPLATES else "voc"]
    configs = configs_of(data.config(template))
    assert configs["model"].WhichOneof("model")
    assert list(configs["train_input_config"].tf_record_input_reader.input_path) == \
        [str(p) for p in data.train]


@pytest.mark.parametrize("name", ALL)
def test_decoder_reads_every_record_with_the_stored_ids(datasets, name):
    data = datasets[name]
    configs = configs_of(data.config("ssd_mobilenet_v2_fpnlite_320"
                                     if not data.masks else MASK_TEMPLATES[0]))
    decoder = decoder_builder.build(configs["train_input_config"])
    expected = stored_labels(data.train)
    decoded = []
    for raw in tf.data.TFRecordDataset([str(p) for p in data.train]):
        tensors = decoder.decode(raw)
        decoded.append(list(tensors[fields.InputDataFields.groundtruth_classes].numpy()))
        if data.masks:
            masks = tensors[fields.InputDataFields.groundtruth_instance_masks].numpy()
            image = tensors[fields.InputDataFields.image].numpy()
            assert masks.shape == (len(decoded[-1]), *image.shape[:2])
    assert decoded == expected and len(decoded) > 0


def resizer_shape(model_config) -> tuple[int, int]:
    meta = getattr(model_config, model_config.WhichOneof("model"))
    resizer = meta.image_resizer
    kind = resizer.WhichOneof("image_resizer_oneof")
    if kind == "fixed_shape_resizer":
        return resizer.fixed_shape_resizer.height, resizer.fixed_shape_resizer.width
    assert kind == "keep_aspect_ratio_resizer" and resizer.keep_aspect_ratio_resizer.pad_to_max_dimension
    side = resizer.keep_aspect_ratio_resizer.max_dimension
    return side, side


@pytest.mark.parametrize("name", ALL)
def test_train_and_eval_inputs_give_batches_of_the_resizer_shape(datasets, name):
    data = datasets[name]
    template = MASK_TEMPLATES[0] if data.masks else "ssd_mobilenet_v2_fpnlite_320"
    configs = configs_of(data.config(template, "--batch-size", 2))
    height, width = resizer_shape(configs["model"])
    train = inputs.train_input(configs["train_config"], configs["train_input_config"], configs["model"])
    features, labels = next(iter(train))
    assert features[fields.InputDataFields.image].shape[:3] == (2, height, width)
    boxes = labels[fields.InputDataFields.groundtruth_boxes].numpy()
    counts = labels[fields.InputDataFields.num_groundtruth_boxes].numpy()
    for image_boxes, count in zip(boxes, counts, strict=True):
        valid = image_boxes[:count]
        assert np.all(valid >= 0.0) and np.all(valid <= 1.0)
    if data.masks:
        masks = labels[fields.InputDataFields.groundtruth_instance_masks]
        assert masks.shape[2:] == (height, width)
    else:
        assert fields.InputDataFields.groundtruth_instance_masks not in labels
    evaluation = inputs.eval_input(configs["eval_config"], configs["eval_input_configs"][0],
                                   configs["model"])
    features, labels = next(iter(evaluation))
    assert features[fields.InputDataFields.image].shape[1:3] == (height, width)


def one_step_losses(config_path) -> dict[str, float]:
    configs = configs_of(config_path)
    model = model_builder.build(configs["model"], is_training=True)
    train = inputs.train_input(configs["train_config"], configs["train_input_config"], configs["model"])
    features, labels = next(iter(train))
    labels = model_lib_v2.model_lib.unstack_batch(labels, unpad_groundtruth_tensors=True)
    losses, _ = model_lib_v2._compute_losses_and_predictions_dicts(model, features, labels)
    return {key: float(value) for key, value in losses.items()}


@pytest.mark.parametrize("template", template_names())
def test_one_training_step_per_template_has_finite_losses(datasets, template):
    data = datasets["coco_masks" if template in MASK_TEMPLATES else "voc"]
    losses = one_step_losses(data.config(template, "--batch-size", 1))
    assert losses and all(math.isfinite(v) for v in losses.values()), losses
    if template in MASK_TEMPLATES:
        assert "Loss/BoxClassifierLoss/mask_loss" in losses


@pytest.mark.parametrize("template, name, batch", [("ssd_mobilenet_v2_fpnlite_320", "voc_splits", 2),
                                                   ("mask_rcnn_resnet50_v1_640", "coco_masks", 1)])
def test_a_few_real_training_steps_have_finite_losses(datasets, tmp_path, template, name, batch):
    config = datasets[name].config(template, "--batch-size", batch, "--num-steps", 3)
    seen: dict = {}
    model_lib_v2.train_loop(str(config), str(tmp_path / "model"), train_steps=3,
                            checkpoint_every_n=1000, record_summaries=False, num_steps_per_iteration=1,
                            performance_summary_exporter=lambda metrics, _: seen.update(metrics),
                            use_bfloat16=False)
    assert math.isfinite(seen["last_batch_loss"]), seen
