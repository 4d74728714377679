"""tfr2coco: records back to COCO JSON, checked by round trips and by pycocotools."""

from __future__ import annotations

import json

import numpy as np
import pytest

from odprep.tfrecord import frame

from .conftest import SAMPLE, parse_with_od_api_spec
from .helpers import assert_bad_input, run_cli


def _by_name(tf, path, masks=False):
    return {r["image/filename"]: r for r in parse_with_od_api_spec(tf, [path], masks=masks)}


def test_voc_to_records_to_coco_to_records_gives_the_same_examples(tf, tmp_path):
    first = tmp_path / "a" / "x.record"
    assert run_cli("voc2tfr", SAMPLE / "voc" / "Annotations", "--images-dir", SAMPLE / "images",
                   "-o", first).exit_code == 0
    label_map = first.parent / "label_map.pbtxt"
    result = run_cli("tfr2coco", first, "-o", tmp_path / "x.json", "--label-map", label_map)
    assert result.exit_code == 0 and "image ids: regenerated" in result.output, result.output
    second = tmp_path / "b" / "x.record"
    result = run_cli("coco2tfr", tmp_path / "x.json", "--images-dir", SAMPLE / "images", "-o", second,
                     "--label-map", label_map)
    assert result.exit_code == 0, result.output
    before, after = _by_name(tf, first), _by_name(tf, second)
    assert before.keys() == after.keys()
    for name, row in before.items():
        other = after[name]
        for key in ("image/encoded", "image/width", "image/height"):
            assert row[key] == other[key]
        assert list(row["image/object/class/text"]) == list(other["image/object/class/text"])
        assert list(row["image/object/class/label"]) == list(other["image/object/class/label"])
        for side in ("xmin", "xmax", "ymin", "ymax"):
            np.testing.assert_allclose(row[f"image/object/bbox/{side}"], other[f"image/object/bbox/{side}"],
                                       atol=1e-4)


def test_coco_masks_survive_the_round_trip_pixel_for_pixel(tmp_path):
    from pycocotools import mask as mask_util
    from pycocotools.coco import COCO

    records = tmp_path / "x.record"
    assert run_cli("coco2tfr", SAMPLE / "coco" / "instances.json", "--images-dir", SAMPLE / "images",
                   "--include-masks", "-o", records).exit_code == 0
    result = run_cli("tfr2coco", records, "-o", tmp_path / "back.json", "--label-map",
                     tmp_path / "label_map.pbtxt")  # the map keeps categories no object uses
    assert result.exit_code == 0 and "image ids: source" in result.output
    original, back = COCO(str(SAMPLE / "coco" / "instances.json")), COCO(str(tmp_path / "back.json"))
    assert sorted(original.getImgIds()) == sorted(back.getImgIds())
    assert {c["id"]: c["name"] for c in original.loadCats(original.getCatIds())} == \
        {c["id"]: c["name"] for c in back.loadCats(back.getCatIds())}
    for image_id in original.getImgIds():
        ours = back.loadAnns(back.getAnnIds(imgIds=image_id))
        theirs = original.loadAnns(original.getAnnIds(imgIds=image_id))
        assert len(ours) == len(theirs)
        for a, b in zip(theirs, ours, strict=True):
            assert np.array_equal(original.annToMask(a), back.annToMask(b))
            assert a["category_id"] == b["category_id"] and a.get("iscrowd", 0) == b["iscrowd"]
            np.testing.assert_allclose(a["bbox"], b["bbox"], atol=1e-3)
            assert mask_util.area(back.annToRLE(b)) > 0


def test_regenerated_ids_are_the_ids_model_garden_gives(tf, tmp_path):
    records = tmp_path / "x.record"
    assert run_cli("csv2tfr", SAMPLE / "csv" / "annotations.csv", "--images-dir", SAMPLE / "images",
                   "-o", records).exit_code == 0
    assert run_cli("tfr2coco", records, "-o", tmp_path / "x.json").exit_code == 0
    coco = json.loads((tmp_path / "x.json").read_text())
    expected = {int(tf.strings.to_hash_bucket_fast(r["image/encoded"], 2**22 - 1).numpy())
                for r in parse_with_od_api_spec(tf, [records])}
    assert {image["id"] for image in coco["images"]} == expected


@pytest.mark.parametrize("mode", ["source", "sequential"])
def test_image_id_modes(tmp_path, mode):
    records = tmp_path / "x.record"
    run_cli("voc2tfr", SAMPLE / "voc" / "Annotations", "--images-dir", SAMPLE / "images", "-o", records)
    result = run_cli("tfr2coco", records, "-o", tmp_path / "x.json", "--image-ids", mode)
    if mode == "source":
        assert_bad_input(result, "image/source_id", "is not a number", "--image-ids regenerated")
    else:
        ids = [i["id"] for i in json.loads((tmp_path / "x.json").read_text())["images"]]
        assert ids == list(range(1, 7))


def test_records_that_are_not_examples(tmp_path):
    (tmp_path / "bad.record").write_bytes(frame(b"\xff\xff not a proto"))
    assert_bad_input(run_cli("tfr2coco", tmp_path / "bad.record", "-o", tmp_path / "x.json"),
                     "record 0", "not an Example")
    assert not (tmp_path / "x.json").exists()


def test_voc_to_records_to_voc_to_records_gives_the_same_examples(tf, tmp_path):
    first = tmp_path / "a" / "x.record"
    assert run_cli("voc2tfr", SAMPLE / "voc" / "Annotations", "--images-dir", SAMPLE / "images",
                   "-o", first).exit_code == 0
    result = run_cli("tfr2voc", first, "-o", tmp_path / "voc")
    assert result.exit_code == 0 and "(6 images)" in result.output, result.output
    second = tmp_path / "b" / "x.record"
    assert run_cli("voc2tfr", tmp_path / "voc" / "Annotations", "--images-dir", tmp_path / "voc" / "JPEGImages",
                   "-o", second).exit_code == 0
    before, after = _by_name(tf, first), _by_name(tf, second)
    assert before.keys() == after.keys()
    for name, row in before.items():
        for key in ("image/encoded", "image/object/class/text", "image/object/class/label",
                    "image/object/difficult"):
            assert list(np.atleast_1d(row[key])) == list(np.atleast_1d(after[name][key])), key
        for side in ("xmin", "xmax", "ymin", "ymax"):
            np.testing.assert_allclose(row[f"image/object/bbox/{side}"], after[name][f"image/object/bbox/{side}"],
                                       atol=1e-4)


def test_tfr2voc_writes_nothing_on_a_bad_record(tmp_path):
    good = tmp_path / "x.record"
    run_cli("voc2tfr", SAMPLE / "voc" / "Annotations", "--images-dir", SAMPLE / "images", "-o", good)
    (tmp_path / "bad.record").write_bytes(good.read_bytes() + frame(b"\xff not a proto"))
    assert_bad_input(run_cli("tfr2voc", tmp_path / "bad.record", "-o", tmp_path / "voc"), "not an Example")
    assert not (tmp_path / "voc").exists() or not any((tmp_path / "voc").rglob("*.*"))
