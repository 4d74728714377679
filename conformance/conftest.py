"""Conformance stage: odprep's outputs, fed to the real OD API and Model Garden (see run.sh).

Every dataset is produced by the odprep CLI in a subprocess, as a user would run it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "sample_data"

# name -> (converter arguments, records carry masks)
DATASETS = {
    "voc": (["voc2tfr", SAMPLE / "voc" / "Annotations", "--images-dir", SAMPLE / "images"], False),
    "csv": (["csv2tfr", SAMPLE / "csv" / "annotations.csv", "--images-dir", SAMPLE / "images"], False),
    "coco": (["coco2tfr", SAMPLE / "coco" / "instances.json", "--images-dir", SAMPLE / "images"], False),
    "coco_masks": (["coco2tfr", SAMPLE / "coco" / "instances.json", "--images-dir", SAMPLE / "images",
                    "--include-masks"], True),
    "yolo": (["yolo2tfr", SAMPLE / "yolo" / "labels", "--images-dir", SAMPLE / "images", "--names",
              SAMPLE / "yolo" / "classes.txt"], False),
    "labelme": (["labelme2tfr", SAMPLE / "labelme"], False),
    "cvat": (["cvat2tfr", SAMPLE / "cvat" / "annotations.xml", "--images-dir", SAMPLE / "images"], False),
    "kitti": (["kitti2tfr", SAMPLE / "kitti" / "label_2", "--images-dir", SAMPLE / "images"], False),
    "oid": (["oid2tfr", SAMPLE / "oid" / "boxes.csv", "--images-dir", SAMPLE / "images", "--class-descriptions",
             SAMPLE / "oid" / "class-descriptions-boxable.csv"], False),
}


def odprep(*args: object, cwd: Path | None = None) -> str:
    """Run the odprep CLI; fail the test with its output if it fails."""
    result = subprocess.run([sys.executable, "-m", "odprep", *map(str, args)], cwd=cwd,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


class Dataset:
    def __init__(self, name: str, folder: Path, train: list[Path], val: list[Path], masks: bool):
        self.name, self.folder, self.train, self.val, self.masks = name, folder, train, val, masks
        self.label_map = folder / "label_map.pbtxt"

    def config(self, template: str, *extra: object) -> Path:
        """A pipeline.config from a template, patched to this dataset by odprep."""
        path = self.folder / f"{template}{'-'.join(map(str, extra)).replace('--', '-')}.config"
        args = ["new-config", "--template", template, "--label-map", self.label_map,
                *(a for p in self.train for a in ("--train-input", p)),
                *(a for p in self.val for a in ("--eval-input", p)), "--no-checkpoint", *extra, "-o", path]
        odprep(*args)
        return path


@pytest.fixture(scope="session")
def datasets(tmp_path_factory) -> dict[str, Dataset]:
    out: dict[str, Dataset] = {}
    for name, (args, masks) in DATASETS.items():
        folder = tmp_path_factory.mktemp(name)
        odprep(*args, "-o", folder / "train.record")
        out[name] = Dataset(name, folder, [folder / "train.record"], [folder / "train.record"], masks)
    folder = tmp_path_factory.mktemp("splits")
    odprep(*DATASETS["voc"][0], "-o", folder / "{split}.record", "--split", "train=0.5,val=0.5",
           "--num-shards", "2")
    out["voc_splits"] = Dataset("voc_splits", folder, sorted(folder.glob("train.record-*")),
                                sorted(folder.glob("val.record-*")), False)
    return out


def template_names() -> list[str]:
    """The OD API templates (pipeline.config); Model Garden's are tested in test_model_garden."""
    from odprep.pipeline_config import template_file
    from odprep.pipeline_config import template_names as names

    return [name for name in names() if template_file(name).endswith(".config")]
