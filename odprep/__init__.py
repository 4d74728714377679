"""odprep: TFRecords, label maps and pipeline.config that agree, for the TF OD API.

The public API is imported lazily, so ``import odprep`` stays fast and never
imports TensorFlow; only ``odprep.tf_dataset`` does, when called.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "ImageRecord": "odprep.model",
    "ObjectAnnotation": "odprep.model",
    "OdprepError": "odprep.errors",
    "LabelMap": "odprep.labelmap",
    "LabelMapItem": "odprep.labelmap",
    "EncodeOptions": "odprep.example",
    "write_records": "odprep.writer",
    "shard_paths": "odprep.writer",
    "convert": "odprep.conversion",
    "read_voc": "odprep.readers.voc",
    "read_csv": "odprep.readers.csv",
    "read_coco": "odprep.readers.coco",
    "read_segmentation": "odprep.readers.segmentation",
    "read_records": "odprep.tfrecord",
    "tf_dataset": "odprep.tfdata",
    "patch_config": "odprep.pipeline_config",
    "check": "odprep.consistency",
    "validate": "odprep.validation",
    "inspect_records": "odprep.inspection",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'odprep' has no attribute {name!r}")
