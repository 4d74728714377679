"""labelme2tfr: LabelMe JSON, read back by the real consumers."""

from __future__ import annotations

import base64
import contextlib
import json
import shutil
from pathlib import Path

import numpy as np
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
    assert "labelled __ignore__ (to ignore); no object written" in result.output
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
    ([{"label": "a", "points": [[1, 1], [1, 1]], "shape_type": "circle"}], {}, "a circle needs"),
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


def _convert(tmp_path, folder, *extra):
    out = tmp_path / "out" / "x.record"
    result = run_cli("labelme2tfr", folder, "-o", out, *extra)
    assert result.exit_code == 0, result.output
    return out, result


def test_an_instance_is_one_label_and_one_group_id(tf, tmp_path):
    folder = _json(tmp_path, [
        {"label": "cat", "points": [[8, 10], [20, 50]], "group_id": 1, "shape_type": "rectangle"},
        {"label": "cat", "points": [[20, 10], [40, 50]], "group_id": 1, "shape_type": "rectangle"},
        {"label": "dog", "points": [[50, 5], [90, 60]], "group_id": 1, "shape_type": "rectangle"}])
    out, _ = _convert(tmp_path, folder)
    row = parse_with_od_api_spec(tf, [out])[0]
    assert [t.decode() for t in row["image/object/class/text"]] == ["cat", "dog"]  # as labelme2coco groups
    assert row["image/object/bbox/xmin"][0] * 96 == pytest.approx(8) and \
        row["image/object/bbox/xmax"][0] * 96 == pytest.approx(40)


def test_a_circle_is_its_extent_and_its_disc(tf, tmp_path):
    folder = _json(tmp_path, [{"label": "wheel", "points": [[48, 32], [48, 52]], "shape_type": "circle"}])
    out, _ = _convert(tmp_path, folder, "--include-masks")
    row = parse_with_od_api_spec(tf, [out], masks=True)[0]
    box = [row[f"image/object/bbox/{k}"][0] for k in ("xmin", "xmax", "ymin", "ymax")]
    np.testing.assert_allclose(box, [28 / 96, 68 / 96, 12 / 64, 52 / 64], atol=1e-6)  # centre +- radius 20
    mask = tf.io.decode_png(row["image/object/mask"][0]).numpy()[..., 0] > 0
    yy, xx = np.mgrid[:64, :96]
    disc = (xx + 0.5 - 48) ** 2 + (yy + 0.5 - 32) ** 2 <= 20 ** 2
    assert (mask & disc).sum() / (mask | disc).sum() > 0.95


def test_image_data_wins_even_when_image_path_names_the_json(tf, tmp_path):
    """labelme's examples/tutorial/apc2016_obj3.json: imagePath names the JSON itself."""
    data = base64.b64encode((SAMPLE / "images" / "street.png").read_bytes()).decode()
    folder = _json(tmp_path, [{"label": "dog", "points": [[30, 20], [78, 58]], "shape_type": "rectangle"}],
                   imagePath="a.json", imageData=data, imageWidth=80, imageHeight=60)
    (tmp_path / "lm" / "a.json.jpg").write_bytes((SAMPLE / "images" / "cat_dog.jpg").read_bytes())
    out, _ = _convert(tmp_path, folder)
    row = parse_with_od_api_spec(tf, [out])[0]
    assert row["image/encoded"] == (SAMPLE / "images" / "street.png").read_bytes()
    assert row["image/filename"] == b"a.png"


def test_a_windows_image_path_is_resolved(tf, tmp_path):
    shutil.copytree(SAMPLE / "images", tmp_path / "images")
    folder = _json(tmp_path, [{"label": "cat", "points": [[8, 10], [40, 50]], "shape_type": "rectangle"}],
                   imagePath="..\\images\\cat_dog.jpg")
    out, _ = _convert(tmp_path, folder)
    row = parse_with_od_api_spec(tf, [out])[0]
    assert row["image/encoded"] == (SAMPLE / "images" / "cat_dog.jpg").read_bytes()


def test_an_overshoot_within_a_pixel_is_rounding(tf, tmp_path):
    """labelme's instance_segmentation/data_annotated/2011_000006.json: a point 0.385 px past the edge."""
    folder = _json(tmp_path, [{"label": "cat", "points": [[8, 10], [96.385, 10], [40, 50]],
                               "shape_type": "polygon"}])
    out, result = _convert(tmp_path, folder)
    assert "boxes clamped (within rounding): 1" in result.output
    assert parse_with_od_api_spec(tf, [out])[0]["image/object/bbox/xmax"][0] == 1.0


LAYOUTS = SAMPLE / "labelme_layouts"


def test_labelmes_own_layouts_give_the_sample_truth(tf, tmp_path):
    out, result = _convert(tmp_path, LAYOUTS / "data_annotated", "--include-masks")
    assert "boxes clamped (within rounding): 1" in result.output and "__ignore__" in result.output
    rows = parse_with_od_api_spec(tf, [out], masks=True)
    for row in rows:
        assert row["image/encoded"] == (SAMPLE / "images" / row["image/filename"].decode()).read_bytes()
    assert_matches_truth(rows, expect_labels=False, images=["cat_dog.jpg", "gray.jpg"])
    out, _ = _convert(tmp_path / "t", LAYOUTS / "tutorial")
    rows = parse_with_od_api_spec(tf, [out])
    assert rows[0]["image/encoded"] == (SAMPLE / "images" / "street.png").read_bytes()  # from imageData
    rows[0]["image/filename"] = b"street.png"  # its name comes from the JSON: street_obj.png
    assert_matches_truth(rows, expect_labels=False, images=["street.png"])
