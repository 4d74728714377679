"""cvat2tfr: CVAT for images 1.1 XML, read back by the real consumers."""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from odprep.errors import OdprepError

from .conftest import SAMPLE, parse_with_od_api_spec
from .helpers import assert_bad_input, run_cli
from .test_fuzz import FUZZ
from .test_voc import assert_matches_truth

CVAT = SAMPLE / "cvat" / "annotations.xml"


def test_cvat_records_equal_the_ground_truth(tf, tmp_path):
    out = tmp_path / "train.record"
    result = run_cli("cvat2tfr", CVAT, "--images-dir", SAMPLE / "images", "-o", out)
    assert result.exit_code == 0, result.output
    assert "a polyline is not a box; skipped" in result.output and "a tag is not a box" in result.output
    rows = parse_with_od_api_spec(tf, [out])
    assert_matches_truth(rows)
    features = {tf.train.Example.FromString(r.numpy()).features.feature["image/filename"].bytes_list.value[0]:
                tf.train.Example.FromString(r.numpy()).features.feature
                for r in tf.data.TFRecordDataset([str(out)])}
    assert list(features[b"cat_dog.jpg"]["image/object/occluded"].int64_list.value) == [0, 1]
    assert list(features[b"street.png"]["image/object/occluded"].int64_list.value) == [0, 1]


def _xml(tmp_path: Path, shape: str) -> Path:
    path = tmp_path / "a.xml"
    path.write_text(f'<annotations><version>1.1</version><image id="0" name="cat_dog.jpg" width="96" '
                    f'height="64">{shape}</image></annotations>')
    return path


ROTATED = '<box label="cat" occluded="0" xtl="38" ytl="22" xbr="58" ybr="42" rotation="45"/>'


def test_rotated_boxes_are_refused_unless_their_extent_is_asked_for(tf, tmp_path):
    xml = _xml(tmp_path, ROTATED)
    result = run_cli("cvat2tfr", xml, "--images-dir", SAMPLE / "images", "-o", tmp_path / "x.record")
    assert_bad_input(result, "rotated by 45 degrees", "--rotated-as-extent")
    result = run_cli("cvat2tfr", xml, "--images-dir", SAMPLE / "images", "-o", tmp_path / "x.record",
                     "--rotated-as-extent")
    assert result.exit_code == 0 and "its axis-aligned extent is written" in result.output
    row = parse_with_od_api_spec(tf, [tmp_path / "x.record"])[0]
    half = 10 * 2 ** 0.5  # a 20x20 square turned 45 degrees about (48, 32)
    np.testing.assert_allclose(row["image/object/bbox/xmin"], [(48 - half) / 96], atol=1e-6)
    np.testing.assert_allclose(row["image/object/bbox/ymax"], [(32 + half) / 64], atol=1e-6)


@pytest.mark.parametrize("shape, fragment", [
    ('<box label="cat" xtl="8" ytl="10" xbr="x" ybr="50"/>', "xbr 'x' is not a number"),
    ('<box label="" xtl="8" ytl="10" xbr="40" ybr="50"/>', "the shape has no label"),
    ('<polygon label="cat" points="1,1;2,2"/>', "fewer than 3"),
    ('<polygon label="cat" points="1,1;2;3,3"/>', "is not 'x,y'"),
    ('<box label="cat" occluded="2" xtl="8" ytl="10" xbr="40" ybr="50"/>', "expected 0 or 1"),
])
def test_bad_shapes_name_the_image_and_shape(tmp_path, shape, fragment):
    result = run_cli("cvat2tfr", _xml(tmp_path, shape), "--images-dir", SAMPLE / "images",
                     "-o", tmp_path / "x.record")
    assert_bad_input(result, "image 0 (cat_dog.jpg)", fragment)


def test_not_a_cvat_file(tmp_path):
    (tmp_path / "a.xml").write_text("<annotation/>")
    assert_bad_input(run_cli("cvat2tfr", tmp_path / "a.xml", "--images-dir", SAMPLE / "images",
                             "-o", tmp_path / "x.record"), "root element is <annotation>")


attribute = st.sampled_from(["0", "1", "-3", "nan", "1e400", "x", "", "12.5", "1,1;2,2;3,3", "45"])


@FUZZ
@given(st.sampled_from(["box", "polygon", "ellipse", "tag", "points", "other"]),
       st.dictionaries(st.sampled_from(["label", "xtl", "ytl", "xbr", "ybr", "cx", "cy", "rx", "ry", "points",
                                        "rotation", "occluded"]), attribute), st.booleans())
def test_shape_reader_raises_only_its_own_error(kind, attributes, extent):
    from odprep.readers.cvat import _shape

    element = etree.Element(kind, **attributes)
    with contextlib.suppress(OdprepError):
        _shape(element, 1, Path("a.xml"), "image 0", extent, [])


PROJECT = SAMPLE / "cvat_project"


def test_a_project_export_finds_each_image_in_its_own_subset(tf, tmp_path):
    out = tmp_path / "all.record"
    result = run_cli("cvat2tfr", PROJECT / "annotations.xml", "--images-dir", PROJECT / "images", "-o", out)
    assert result.exit_code == 0, result.output
    rows = parse_with_od_api_spec(tf, [out])
    names = sorted(r["image/filename"].decode() for r in rows)
    assert names == sorted(["Train/cat_dog.jpg", "Train/street.png", "Train/gray.jpg", "Validation/empty.jpg",
                            "Validation/Upper.JPG", "Test/palette.png", "Test/cat_dog.jpg"])
    for row in rows:  # each record holds its own subset's picture, byte for byte
        assert row["image/encoded"] == (PROJECT / "images" / row["image/filename"].decode()).read_bytes()
    mirrored = next(r for r in rows if r["image/filename"] == b"Test/cat_dog.jpg")
    original = next(r for r in rows if r["image/filename"] == b"Train/cat_dog.jpg")
    np.testing.assert_allclose(mirrored["image/object/bbox/xmin"], 1 - original["image/object/bbox/xmax"],
                               atol=1e-3)


def test_a_subset_folder_given_as_images_dir_never_pairs_another_subset(tmp_path):
    result = run_cli("cvat2tfr", PROJECT / "annotations.xml", "--images-dir", PROJECT / "images" / "Train",
                     "-o", tmp_path / "x.record")
    assert_bad_input(result, "subset 'Validation'", f"--images-dir {PROJECT / 'images'}")
    assert list(tmp_path.iterdir()) == []


def test_a_label_not_declared_in_meta_is_bad_input(tmp_path):
    text = CVAT.read_text().replace('<box label="cat" source="manual" occluded="0" xtl="0.00"',
                                    '<box label="kat" source="manual" occluded="0" xtl="0.00"')
    (tmp_path / "a.xml").write_text(text)
    result = run_cli("cvat2tfr", tmp_path / "a.xml", "--images-dir", SAMPLE / "images", "-o", tmp_path / "x.record")
    assert_bad_input(result, "image 3 (gray.jpg)", "'kat' is not among the labels <meta> declares")


def test_one_image_in_two_image_elements_is_refused(tmp_path):
    text = CVAT.read_text().replace('<image id="3" name="gray.jpg"', '<image id="3" name="cat_dog.jpg"')
    (tmp_path / "a.xml").write_text(text)
    result = run_cli("cvat2tfr", tmp_path / "a.xml", "--images-dir", SAMPLE / "images", "-o", tmp_path / "x.record")
    assert_bad_input(result, "'cat_dog.jpg' is also image 1", "image 3")
