"""odprep.tf_dataset reads back exactly what the writer wrote."""

from __future__ import annotations

import numpy as np

import odprep
from odprep.readers.voc import read_voc

from .conftest import SAMPLE


def test_writer_to_tf_dataset_round_trip(tmp_path):
    out = tmp_path / "train.record"
    odprep.convert(read_voc(SAMPLE / "voc" / "Annotations", SAMPLE / "images"), out, num_shards=2)
    elements = {e["filename"].numpy().decode(): e for e in odprep.tf_dataset(str(out) + "-*")}
    assert len(elements) == 6
    cat_dog = elements["cat_dog.jpg"]
    assert cat_dog["image"].shape == (64, 96, 3)
    np.testing.assert_allclose(cat_dog["boxes"].numpy(),
                               [[10 / 64, 8 / 96, 50 / 64, 40 / 96], [5 / 64, 50 / 96, 60 / 64, 90 / 96]],
                               atol=1e-7)
    assert list(cat_dog["classes"].numpy()) == [1, 2]
    assert list(cat_dog["texts"].numpy()) == [b"cat", b"dog"]
    assert elements["empty.jpg"]["boxes"].shape == (0, 4)
