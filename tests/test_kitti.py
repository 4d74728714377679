"""kitti2tfr: KITTI label_2 files, read back by the real consumers."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from odprep.errors import OdprepError

from .conftest import SAMPLE, parse_with_od_api_spec
from .helpers import assert_bad_input, run_cli
from .test_fuzz import FUZZ
from .test_voc import assert_matches_truth

KITTI = SAMPLE / "kitti" / "label_2"


def test_kitti_records_equal_the_ground_truth_and_carry_the_flags(tf, tmp_path):
    out = tmp_path / "train.record"
    result = run_cli("kitti2tfr", KITTI, "--images-dir", SAMPLE / "images", "-o", out)
    assert result.exit_code == 0, result.output
    assert "1 DontCare region(s) left out" in result.output
    rows = parse_with_od_api_spec(tf, [out])
    assert_matches_truth(rows, expect_labels=False, text=lambda name: name.replace(" ", "_"))
    records = {tf.train.Example.FromString(r.numpy()).features.feature["image/filename"].bytes_list.value[0]:
               tf.train.Example.FromString(r.numpy()).features.feature
               for r in tf.data.TFRecordDataset([str(out)])}
    cat_dog = records[b"cat_dog.jpg"]
    assert list(cat_dog["image/object/truncated"].int64_list.value) == [1, 0]  # 0.35 -> 1
    assert list(cat_dog["image/object/occluded"].int64_list.value) == [0, 1]


def _label(tmp_path: Path, line: str) -> Path:
    folder = tmp_path / "label_2"
    folder.mkdir(exist_ok=True)
    (folder / "cat_dog.txt").write_text("Car 0.00 0 -1.57 8 10 40 50 1.5 1.6 3.7 1.0 1.5 20.0 -1.5\n" + line)
    return folder


@pytest.mark.parametrize("line, fragment", [
    ("Car 0.00 0 -1.57 8 10 40\n", "7 field(s); a KITTI label line has 15"),
    ("Car 1.5 0 -1.57 8 10 40 50 1.5 1.6 3.7 1.0 1.5 20.0 -1.5\n", "truncated '1.5' is not in [0, 1]"),
    ("Car 0.0 5 -1.57 8 10 40 50 1.5 1.6 3.7 1.0 1.5 20.0 -1.5\n", "occluded '5' is not 0, 1, 2 or 3"),
    ("Car 0.0 0 -1.57 nan 10 40 50 1.5 1.6 3.7 1.0 1.5 20.0 -1.5\n", "x1 'nan' is not a finite number"),
    ("Car 0.0 0 -1.57 8 10 400 50 1.5 1.6 3.7 1.0 1.5 20.0 -1.5\n", "xmax 400 is outside the image width"),
])
def test_bad_lines_name_the_file_and_line(tmp_path, line, fragment):
    result = run_cli("kitti2tfr", _label(tmp_path, line), "--images-dir", SAMPLE / "images",
                     "-o", tmp_path / "x.record")
    assert_bad_input(result, "cat_dog.txt", "line 2", fragment)


@FUZZ
@given(st.lists(st.sampled_from(["Car", "DontCare", "0", "1", "0.5", "-1", "nan", "1e400", "x", "3", "7",
                                 "12.5"]), max_size=17).map(" ".join))
def test_line_parser_raises_only_its_own_error(line):
    from odprep.readers.kitti import _parse_line

    with contextlib.suppress(OdprepError):
        _parse_line(line, 1, Path("a.txt"))
