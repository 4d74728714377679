"""labelme2tfr: LabelMe JSON, read back by the real consumers."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from odprep.errors import OdprepError

from .conftest import SAMPLE, parse_with_od_api_spec
from .helpers import assert_bad_input, run_cli
from .test_fuzz import FUZZ, json_values
from .test_voc import TRUTH, assert_matches_truth

LABELME = SAMPLE / "labelme"


def test_labelme_records_equal_the_ground_truth_with_masks(tf, tmp_path):
    out = tmp_path / "train.record"
    result = run_cli("labelme2tfr", LABELME, "-o", out, "--include-masks")
    assert result.exit_code == 0, result.output
    assert "a circle is not a box or polygon; skipped" in result.output
    rows = parse_with_od_api_spec(tf, [out], masks=True)
    assert_matches_truth(rows)
    for row in rows:
        _, objects = TRUTH[row["image/filename"].decode()]
        for png, (_, x0, y0, x1, y1) in zip(row["image/object/mask"], objects, strict=True):
            mask = tf.io.decode_png(png).numpy()[..., 0]
            inside = mask[int(y0) + 1:int(y1) - 1, int(x0) + 1:int(x1) - 1]
            assert inside.all(), row["image/filename"]  # a group's two triangles fill the box
    palette = next(r for r in rows if r["image/filename"] == b"palette.png")
    assert palette["image/encoded"] == (SAMPLE / "images" / "palette.png").read_bytes()  # from imageData


def _json(tmp_path: Path, shapes, **extra) -> Path:
    folder = tmp_path / "lm"
    folder.mkdir(exist_ok=True)
    data = {"shapes": shapes, "imagePath": str(SAMPLE / "images" / "cat_dog.jpg"), "imageHeight": 64,
            "imageWidth": 96, **extra}
    (folder / "a.json").write_text(json.dumps(data))
    return folder


@pytest.mark.parametrize("shapes, extra, fragment", [
    ([{"label": "a", "points": [[1, 1], [5, 5]], "group_id": 1, "shape_type": "rectangle"},
      {"label": "b", "points": [[1, 1], [5, 5]], "group_id": 1, "shape_type": "rectangle"}], {},
     "one group holds several labels"),
    ([{"label": "a", "points": [[1, 1], [5, 5], [6, 6]], "shape_type": "rectangle"}], {}, "3 points, not 2"),
    ([{"label": "a", "points": [[1, 1], [5, 5]], "shape_type": "polygon"}], {}, "fewer than 3"),
    ([{"label": "a", "points": [[1, "x"], [5, 5]], "shape_type": "rectangle"}], {}, "not two finite numbers"),
    ([{"label": "", "points": [[1, 1], [5, 5]], "shape_type": "rectangle"}], {}, "has no label"),
    ([], {"imagePath": "nope.jpg", "imageData": "%%%"}, "imageData is not valid base64"),
])
def test_bad_shapes_name_the_file_and_shape(tmp_path, shapes, extra, fragment):
    result = run_cli("labelme2tfr", _json(tmp_path, shapes, **extra), "-o", tmp_path / "x.record")
    assert_bad_input(result, "a.json", fragment)


def test_not_a_labelme_file(tmp_path):
    (tmp_path / "a.json").write_text('{"images": []}')
    assert_bad_input(run_cli("labelme2tfr", tmp_path, "-o", tmp_path / "x.record"), "no 'shapes' list")


shapes = st.lists(st.fixed_dictionaries({
    "label": st.sampled_from(["a", "b", ""]) | json_values,
    "points": st.lists(st.lists(st.floats() | st.integers(-5, 100), min_size=2, max_size=2), max_size=5)
    | json_values,
    "group_id": st.none() | st.integers(0, 2) | json_values,
    "shape_type": st.sampled_from(["rectangle", "polygon", "circle", "point"]) | json_values}) | json_values,
    max_size=5)


@FUZZ
@given(shapes)
def test_shape_reader_raises_only_its_own_error(shape_list):
    from odprep.readers.labelme import _objects

    with contextlib.suppress(OdprepError):
        _objects({"shapes": shape_list}, Path("a.json"), None)
