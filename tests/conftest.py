"""Shared fixtures: sample data paths and the real consumers (TF, Model Garden)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "sample_data"
SHARED_DATASETS = REPO.parent / "shared" / "datasets"


@pytest.fixture(scope="session")
def tf():
    import tensorflow as tf

    return tf


def od_api_feature_spec(tf, masks: bool = False) -> dict:
    """The feature spec of the OD API's TfExampleDecoder (research/object_detection)."""
    spec = {
        "image/encoded": tf.io.FixedLenFeature((), tf.string, default_value=""),
        "image/format": tf.io.FixedLenFeature((), tf.string, default_value="jpeg"),
        "image/filename": tf.io.FixedLenFeature((), tf.string, default_value=""),
        "image/key/sha256": tf.io.FixedLenFeature((), tf.string, default_value=""),
        "image/source_id": tf.io.FixedLenFeature((), tf.string, default_value=""),
        "image/height": tf.io.FixedLenFeature((), tf.int64, default_value=1),
        "image/width": tf.io.FixedLenFeature((), tf.int64, default_value=1),
        "image/object/bbox/xmin": tf.io.VarLenFeature(tf.float32),
        "image/object/bbox/xmax": tf.io.VarLenFeature(tf.float32),
        "image/object/bbox/ymin": tf.io.VarLenFeature(tf.float32),
        "image/object/bbox/ymax": tf.io.VarLenFeature(tf.float32),
        "image/object/class/label": tf.io.VarLenFeature(tf.int64),
        "image/object/class/text": tf.io.VarLenFeature(tf.string),
        "image/object/area": tf.io.VarLenFeature(tf.float32),
        "image/object/is_crowd": tf.io.VarLenFeature(tf.int64),
        "image/object/difficult": tf.io.VarLenFeature(tf.int64),
        "image/object/group_of": tf.io.VarLenFeature(tf.int64),
        "image/object/weight": tf.io.VarLenFeature(tf.float32),
    }
    if masks:
        spec["image/object/mask"] = tf.io.VarLenFeature(tf.string)  # PNG_MASKS
    return spec


def parse_with_od_api_spec(tf, paths, masks: bool = False) -> list[dict]:
    """Every record of the files, parsed by TF with the OD API spec, as numpy values."""
    spec = od_api_feature_spec(tf, masks)
    out = []
    for raw in tf.data.TFRecordDataset([str(p) for p in paths]):
        parsed = tf.io.parse_single_example(raw, spec)
        row = {}
        for key, value in parsed.items():
            if isinstance(value, tf.SparseTensor):
                value = tf.sparse.to_dense(value)
            row[key] = value.numpy()
        out.append(row)
    return out


def decode_with_model_garden(tf, paths, include_mask: bool = False) -> list[dict]:
    """Every record decoded by Model Garden's TfExampleDecoder (the real consumer)."""
    from official.vision.dataloaders.tf_example_decoder import TfExampleDecoder

    decoder = TfExampleDecoder(include_mask=include_mask)
    return [{k: v.numpy() for k, v in decoder.decode(raw).items()}
            for raw in tf.data.TFRecordDataset([str(p) for p in paths])]


@pytest.fixture
def sample(tmp_path) -> Path:
    """A private copy of sample_data/ that a test may change."""
    target = tmp_path / "sample_data"
    shutil.copytree(SAMPLE, target)
    return target
