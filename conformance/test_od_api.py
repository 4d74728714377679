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


def _crowded_voc(folder, count: int = 150):
    """One image holding ``count`` small boxes (a crowd), as VOC."""
    annotations = folder / "Annotations"
    annotations.mkdir(parents=True)
    objects = "".join(f"<object><name>cat</name><bndbox><xmin>{1 + (i % 45) * 2}</xmin><ymin>{1 + (i // 45) * 10}"
                      f"</ymin><xmax>{2 + (i % 45) * 2}</xmax><ymax>{8 + (i // 45) * 10}</ymax></bndbox></object>"
                      for i in range(count))
    (annotations / "crowd.xml").write_text(
        f"<annotation><filename>cat_dog.jpg</filename><size><width>96</width><height>64</height><depth>3</depth>"
        f"</size>{objects}</annotation>")
    return annotations


def test_the_truncation_that_check_predicts_is_real(tmp_path):
    """check says the input pipeline keeps 100 of the 150 boxes; the OD API's eval input
    indeed pads to 100; after the fix check gives, it keeps 150."""
    import subprocess
    import sys

    from .conftest import SAMPLE, odprep

    annotations = _crowded_voc(tmp_path)
    odprep("voc2tfr", annotations, "--images-dir", SAMPLE / "images", "-o", tmp_path / "crowd.record")
    config = tmp_path / "p.config"
    odprep("new-config", "--template", "ssd_mobilenet_v2_fpnlite_320", "--train-input", tmp_path / "crowd.record",
           "--eval-input", tmp_path / "crowd.record", "--label-map", tmp_path / "label_map.pbtxt",
           "--no-checkpoint", "--batch-size", "1", "-o", config)
    checked = subprocess.run([sys.executable, "-m", "odprep", "check", str(config)], capture_output=True, text=True)
    assert checked.returncode == 1 and "too-many-objects-for-eval-ground-truth" in checked.stdout, checked.stdout
    assert "most: 150" in checked.stdout

    def eval_boxes() -> int:
        configs = configs_of(config)
        evaluation = inputs.eval_input(configs["eval_config"], configs["eval_input_configs"][0], configs["model"])
        _, labels = next(iter(evaluation))
        return int(labels[fields.InputDataFields.num_groundtruth_boxes].numpy()[0])

    assert eval_boxes() == 100  # the OD API keeps max_number_of_boxes: 50 boxes are dropped
    odprep("patch-config", config, "--max-objects", "150", "--in-place")
    assert eval_boxes() == 150
    again = subprocess.run([sys.executable, "-m", "odprep", "check", str(config)], capture_output=True, text=True)
    assert "too-many-objects" not in again.stdout


def test_auto_orient_puts_the_pixels_under_the_boxes_through_the_od_api_decoder(tmp_path):
    """A phone photo stored sideways (EXIF orientation 6), annotated upright: converted with
    --auto-orient, the OD API's own decoder shows the red square under its box."""
    import io

    from PIL import Image

    from .conftest import odprep

    upright = Image.new("RGB", (60, 40), (40, 120, 200))
    upright.paste((230, 20, 20), (10, 5, 25, 20))
    exif = Image.Exif()
    exif[274] = 6
    images = tmp_path / "images"
    images.mkdir()
    buffer = io.BytesIO()
    upright.transpose(Image.Transpose.ROTATE_90).save(buffer, format="JPEG", quality=95, exif=exif.tobytes())
    (images / "phone.jpg").write_bytes(buffer.getvalue())
    annotations = tmp_path / "Annotations"
    annotations.mkdir()
    (annotations / "phone.xml").write_text(
        "<annotation><filename>phone.jpg</filename><size><width>60</width><height>40</height><depth>3</depth>"
        "</size><object><name>square</name><bndbox><xmin>10</xmin><ymin>5</ymin><xmax>25</xmax><ymax>20</ymax>"
        "</bndbox></object></annotation>")
    odprep("voc2tfr", annotations, "--images-dir", images, "-o", tmp_path / "x.record", "--auto-orient")
    config = tmp_path / "p.config"
    odprep("new-config", "--template", "ssd_mobilenet_v2_fpnlite_320", "--train-input", tmp_path / "x.record",
           "--eval-input", tmp_path / "x.record", "--label-map", tmp_path / "label_map.pbtxt", "--no-checkpoint",
           "-o", config)
    decoder = decoder_builder.build(configs_of(config)["train_input_config"])
    raw = next(iter(tf.data.TFRecordDataset([str(tmp_path / "x.record")])))
    tensors = decoder.decode(raw)
    image = tensors[fields.InputDataFields.image].numpy()
    ymin, xmin, ymax, xmax = tensors[fields.InputDataFields.groundtruth_boxes].numpy()[0]
    height, width = image.shape[:2]
    crop = image[int(ymin * height) + 2:int(ymax * height) - 2, int(xmin * width) + 2:int(xmax * width) - 2]
    red, green, blue = crop.reshape(-1, 3).mean(axis=0)
    assert (width, height) == (60, 40) and red > 180 and green < 80 and blue < 80
