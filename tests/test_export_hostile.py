"""Exporters fed hostile records: valid VOC and strict JSON out, or one line and nothing left."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from odprep import keys, proto
from odprep.coco_export import write_coco
from odprep.errors import OdprepError
from odprep.tfrecord import frame
from odprep.voc_export import write_voc

from .conftest import SAMPLE
from .helpers import assert_bad_input, run_cli

JPEG = (SAMPLE / "images" / "cat_dog.jpg").read_bytes()  # 96x64
PNG = (SAMPLE / "images" / "street.png").read_bytes()  # 80x60


def record(filename: str = "a.jpg", classes=("cat",), boxes=((0.1, 0.4, 0.2, 0.8),), source: str = "1",
           image: bytes = JPEG, width: int = 96, height: int = 64) -> bytes:
    features = proto.Features()
    feature = features.feature
    feature[keys.IMAGE_FILENAME].bytes_list.value.append(filename.encode("utf-8", "surrogatepass"))
    feature[keys.IMAGE_SOURCE_ID].bytes_list.value.append(source.encode("utf-8", "surrogatepass"))
    feature[keys.IMAGE_WIDTH].int64_list.value.append(width)
    feature[keys.IMAGE_HEIGHT].int64_list.value.append(height)
    for key, index in zip(keys.BBOX_KEYS, range(4), strict=True):
        feature[key].float_list.value.extend(box[index] for box in boxes)
    feature[keys.CLASS_TEXT].bytes_list.value.extend(c.encode("utf-8", "surrogatepass") for c in classes)
    feature[keys.CLASS_LABEL].int64_list.value.extend(range(1, len(classes) + 1))
    return frame(b"".join(proto.example_parts(features, keys.IMAGE_ENCODED, image)))


def records_file(tmp_path: Path, *records: bytes) -> Path:
    path = tmp_path / "in.record"
    path.write_bytes(b"".join(records))
    return path


def test_two_images_with_one_stem_are_refused_and_leave_no_folder(tmp_path):
    source = records_file(tmp_path, record("a.jpg"), record("a.png", image=PNG, width=80, height=60))
    result = run_cli("tfr2voc", source, "-o", tmp_path / "voc")
    assert_bad_input(result, "'a.png' and 'a.jpg' would share Annotations/a.xml")
    assert not (tmp_path / "voc").exists()


def test_a_control_character_in_a_class_name_is_one_line(tmp_path):
    source = records_file(tmp_path, record(classes=("c\x1bat",)))
    assert_bad_input(run_cli("tfr2voc", source, "-o", tmp_path / "voc"), "control character")
    assert not (tmp_path / "voc").exists()


def test_a_long_legal_name_is_exported(tmp_path):
    name = "x" * 236 + ".jpg"  # 240 bytes: legal; the temporary name must fit too
    source = records_file(tmp_path, record(name))
    result = run_cli("tfr2voc", source, "-o", tmp_path / "voc")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "voc" / "JPEGImages" / name).read_bytes() == JPEG
    assert (tmp_path / "voc" / "Annotations" / f"{'x' * 236}.xml").exists()


def test_a_nan_box_never_reaches_the_json(tmp_path):
    source = records_file(tmp_path, record(boxes=((math.nan, 0.4, 0.2, 0.8),)))
    assert_bad_input(run_cli("tfr2coco", source, "-o", tmp_path / "x.json"), "NaN")
    assert not (tmp_path / "x.json").exists()


@pytest.mark.parametrize("source", ["²", "1" * 5000, "١٢"])
def test_a_source_id_that_only_looks_numeric(tmp_path, source):
    path = records_file(tmp_path, record(source=source))
    auto = run_cli("tfr2coco", path, "-o", tmp_path / "x.json")
    assert auto.exit_code == 0 and "image ids: regenerated" in auto.output, auto.output
    assert_bad_input(run_cli("tfr2coco", path, "-o", tmp_path / "y.json", "--image-ids", "source"),
                     "is not a number")


names = st.text(st.characters(codec="utf-8"), max_size=12)
coordinates = st.floats(allow_nan=True, allow_infinity=True, width=32)
hostile_records = st.lists(st.builds(
    record, filename=names, classes=st.lists(names, min_size=1, max_size=2).map(tuple),
    boxes=st.lists(st.tuples(coordinates, coordinates, coordinates, coordinates), min_size=1, max_size=2)
    .map(tuple), source=names), min_size=1, max_size=3)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(hostile_records)
def test_any_records_give_valid_voc_and_strict_json_or_one_line(tmp_path_factory, batch):
    folder = tmp_path_factory.mktemp("export")
    source = records_file(folder, *batch)
    try:
        coco, _ = write_coco([source], folder / "x.json")
    except OdprepError as error:
        assert "\n" not in error.message
        assert not (folder / "x.json").exists()
    else:
        text = (folder / "x.json").read_text()
        json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} is not JSON"))
        assert len(coco["images"]) == len(batch)
    try:
        count = write_voc([source], folder / "voc")
    except OdprepError as error:
        assert "\n" not in error.message
        assert not (folder / "voc").exists()
    else:
        xmls = sorted((folder / "voc" / "Annotations").iterdir())
        assert count == len(batch) == len(xmls)
        for xml in xmls:
            assert etree.parse(str(xml)).getroot().tag == "annotation"
        for image in (folder / "voc" / "JPEGImages").iterdir():
            assert image.resolve().is_relative_to((folder / "voc" / "JPEGImages").resolve())
