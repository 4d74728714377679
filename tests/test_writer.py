"""The writer: identical output for any worker count, nothing left behind on errors or Ctrl-C."""

from __future__ import annotations

import pytest

import odprep
from odprep.labelmap import LabelMap
from odprep.readers.coco import read_coco
from odprep.readers.voc import read_voc
from odprep.writer import write_records

from .conftest import SAMPLE


def test_coco_masks_byte_identical_for_any_worker_count(tmp_path):
    outputs = []
    for workers in (1, 2, 3):
        dataset = read_coco(SAMPLE / "coco" / "instances.json", SAMPLE / "images")
        out = tmp_path / f"w{workers}" / "m.record"
        odprep.convert(dataset.as_sequence(), out, built_map=dataset.label_map, num_shards=2,
                       workers=workers, options=odprep.EncodeOptions(include_masks=True))
        outputs.append([(out.parent / f"m.record-0000{i}-of-00002").read_bytes() for i in range(2)])
    assert outputs[0] == outputs[1] == outputs[2]


def interrupted(records, after: int):
    for index, record in enumerate(records):
        if index == after:
            raise KeyboardInterrupt
        yield record


@pytest.mark.parametrize("workers", [1, 2])
def test_ctrl_c_leaves_no_output_and_no_temporary_files(tmp_path, workers):
    records = list(read_voc(SAMPLE / "voc" / "Annotations", SAMPLE / "images"))
    label_map = LabelMap.build(label for r in records for label in r.labels)
    out = tmp_path / "out" / "train.record"
    with pytest.raises(KeyboardInterrupt):
        write_records(interrupted(records * 20, after=70), out, label_map, num_shards=3,
                      workers=workers)
    assert not (tmp_path / "out").exists()  # the folder odprep made for the output goes too


def test_tf_dataset_decodes_masks(tmp_path):
    dataset = read_coco(SAMPLE / "coco" / "instances.json", SAMPLE / "images")
    out = tmp_path / "m.record"
    odprep.convert(dataset.as_sequence(), out, built_map=dataset.label_map,
                   options=odprep.EncodeOptions(include_masks=True))
    elements = {e["filename"].numpy().decode(): e for e in odprep.tf_dataset(str(out), masks=True)}
    street = elements["street.png"]
    assert street["masks"].shape == (2, 60, 80)
    assert set(street["masks"].numpy().ravel()) == {0, 1}
    assert elements["empty.jpg"]["masks"].shape == (0, 64, 64)
