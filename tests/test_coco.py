"""coco2tfr: boxes and masks, checked against pycocotools and Model Garden's converter."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from pycocotools import mask as mask_util

import odprep
from odprep.labelmap import LabelMap
from odprep.readers.coco import read_coco

from .conftest import SAMPLE, decode_with_model_garden, parse_with_od_api_spec
from .helpers import assert_bad_input, leftovers, run_cli

COCO = SAMPLE / "coco" / "instances.json"


def convert(tmp_path, *extra, instances=COCO, images=SAMPLE / "images"):
    out = tmp_path / "out" / "coco.record"
    result = run_cli("coco2tfr", instances, "--images-dir", images, "-o", out, *extra)
    assert result.exit_code == 0, result.output
    return out, result


def test_labels_are_coco_ids_and_label_map_matches(tf, tmp_path):
    out, result = convert(tmp_path)
    assert "COCO category ids" in result.output
    label_map = LabelMap.load(out.parent / "label_map.pbtxt")
    assert [(i.id, i.name) for i in label_map.items] == [(3, "car"), (10, "traffic light"),
                                                        (17, "cat"), (18, "dog")]
    ids = {"cat": 17, "dog": 18, "traffic light": 10}
    rows = parse_with_od_api_spec(tf, [out])
    for row in rows:
        texts = [t.decode() for t in row["image/object/class/text"]]
        assert list(row["image/object/class/label"]) == [ids[t] for t in texts]
    street = next(r for r in rows if r["image/filename"] == b"street.png")
    assert list(street["image/object/is_crowd"]) == [0, 1]
    assert street["image/source_id"] == b"1001"


def test_make_labelmap_from_coco_keeps_ids(tmp_path):
    out = tmp_path / "lm.pbtxt"
    assert run_cli("make-labelmap", COCO, "-o", out).exit_code == 0
    assert [i.id for i in LabelMap.load(out).items] == [3, 10, 17, 18]


def test_remap_ids_is_consistent_in_records_and_map(tf, tmp_path):
    out, _ = convert(tmp_path, "--remap-ids")
    label_map = LabelMap.load(out.parent / "label_map.pbtxt")
    assert [(i.id, i.name) for i in label_map.items] == [(1, "car"), (2, "traffic light"),
                                                        (3, "cat"), (4, "dog")]
    for row in parse_with_od_api_spec(tf, [out]):
        for text, label in zip(row["image/object/class/text"], row["image/object/class/label"],
                               strict=True):
            assert label_map.id_of(text.decode()) == label


def expected_masks(annotations, height, width):
    masks = []
    for ann in annotations:
        rle = mask_util.frPyObjects(ann["segmentation"], height, width)
        decoded = mask_util.decode(rle)
        masks.append(decoded if decoded.ndim == 2 else decoded.max(axis=2))
    return masks


def test_masks_are_pixel_equal_to_pycocotools_and_decode_in_model_garden(tf, tmp_path):
    out, _ = convert(tmp_path, "--include-masks")
    data = json.loads(COCO.read_text())
    decoded = {d["source_id"].decode(): d for d in decode_with_model_garden(tf, [out], include_mask=True)}
    parsed = {r["image/source_id"].decode(): r for r in parse_with_od_api_spec(tf, [out], masks=True)}
    for image in data["images"]:
        annotations = [a for a in data["annotations"] if a["image_id"] == image["id"]]
        want = expected_masks(annotations, image["height"], image["width"])
        got = decoded[str(image["id"])]["groundtruth_instance_masks"]
        assert got.shape == (len(want), image["height"], image["width"])
        for ours, theirs in zip(got, want, strict=True):
            np.testing.assert_array_equal(ours.astype(np.uint8), theirs)
            assert set(np.unique(ours)) <= {0.0, 1.0}
        pngs = parsed[str(image["id"])]["image/object/mask"]
        assert len(pngs) == len(want)
        for png in pngs:
            assert tf.io.decode_png(png).shape[-1] == 1  # single channel


def test_compressed_rle_masks(tmp_path):
    data = json.loads(COCO.read_text())
    ann = data["annotations"][0]
    image = next(i for i in data["images"] if i["id"] == ann["image_id"])
    rle = mask_util.frPyObjects(ann["segmentation"], image["height"], image["width"])
    merged = mask_util.merge(rle)
    ann["segmentation"] = {"size": merged["size"], "counts": merged["counts"].decode()}
    path = tmp_path / "rle.json"
    path.write_text(json.dumps(data))
    dataset = read_coco(path, SAMPLE / "images")
    out = tmp_path / "o.record"
    odprep.convert(dataset.records(), out, built_map=dataset.label_map,
                   options=odprep.EncodeOptions(include_masks=True))
    from odprep import proto
    from odprep.tfrecord import read_records

    first = proto.Example.FromString(next(read_records(out)).data).features.feature
    import io

    from PIL import Image

    ours = np.array(Image.open(io.BytesIO(first["image/object/mask"].bytes_list.value[0])))
    np.testing.assert_array_equal(ours, mask_util.decode(merged))


def test_records_equal_model_garden_converter_object_by_object(tf, tmp_path):
    """Our coco2tfr vs `python -m official.vision.data.create_coco_tf_record`, same input."""
    ours, _ = convert(tmp_path, "--include-masks")
    prefix = tmp_path / "garden" / "coco"
    prefix.parent.mkdir()
    subprocess.run([sys.executable, "-m", "official.vision.data.create_coco_tf_record",
                    f"--image_dir={SAMPLE / 'images'}", f"--object_annotations_file={COCO}",
                    f"--output_file_prefix={prefix}", "--num_shards=1", "--include_masks",
                    "--num_processes=0"], check=True, capture_output=True)
    theirs = parse_with_od_api_spec(tf, sorted(prefix.parent.glob("coco-*")), masks=True)
    mine = {r["image/source_id"]: r for r in parse_with_od_api_spec(tf, [ours], masks=True)}
    assert len(theirs) == len(mine) == 6
    for row in theirs:
        our = mine[row["image/source_id"]]
        for key in ("image/object/bbox/xmin", "image/object/bbox/xmax", "image/object/bbox/ymin",
                    "image/object/bbox/ymax", "image/object/class/label", "image/object/is_crowd",
                    "image/object/area", "image/object/class/text", "image/height", "image/width",
                    "image/encoded", "image/key/sha256", "image/filename"):
            np.testing.assert_array_equal(our[key], row[key], err_msg=key)
        assert len(our["image/object/mask"]) == len(row["image/object/mask"])
        for a, b in zip(our["image/object/mask"], row["image/object/mask"], strict=True):
            np.testing.assert_array_equal(tf.io.decode_png(a).numpy(), tf.io.decode_png(b).numpy())


def write_coco(tmp_path, mutate):
    data = json.loads(COCO.read_text())
    mutate(data)
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(data))
    (tmp_path / "out").mkdir(exist_ok=True)
    return path


BAD_COCO = [
    ("zero width", lambda d: d["annotations"][0]["bbox"].__setitem__(2, 0),
     ["annotation id 1 (cat)", "width/height must be > 0"]),
    ("past image", lambda d: d["annotations"][0]["bbox"].__setitem__(2, 200),
     ["annotation id 1 (cat)", "outside the image width 96"]),
    ("unknown category", lambda d: d["annotations"][1].__setitem__("category_id", 99),
     ["annotation id 2", "category_id 99 is not in categories"]),
    ("size mismatch", lambda d: d["images"][0].__setitem__("width", 97), ["97x64", "96x64"]),
    ("missing image", lambda d: d["images"][0].__setitem__("file_name", "nope.jpg"),
     ["image id 1000", "nope.jpg not found"]),
    ("used category zero", lambda d: (d["categories"].append({"id": 0, "name": "bg"}),
                                      d["annotations"][0].__setitem__("category_id", 0)),
     ["category 0", "--remap-ids"]),
]


@pytest.mark.parametrize("case, mutate, fragments", BAD_COCO, ids=[c[0] for c in BAD_COCO])
def test_bad_coco_input(tmp_path, case, mutate, fragments):
    path = write_coco(tmp_path, mutate)
    result = run_cli("coco2tfr", path, "--images-dir", SAMPLE / "images", "-o",
                     tmp_path / "out" / "x.record")
    assert_bad_input(result, "instances.json", *fragments)
    assert leftovers(tmp_path / "out") == []


def test_skip_invalid_reports_annotation_ids(tmp_path):
    path = write_coco(tmp_path, lambda d: d["annotations"][0]["bbox"].__setitem__(3, -1))
    result = run_cli("coco2tfr", path, "--images-dir", SAMPLE / "images", "-o",
                     tmp_path / "out" / "x.record", "--skip-invalid")
    assert result.exit_code == 0
    assert "skipped objects: 1" in result.output and "annotation id 1 (cat)" in result.output


def test_rounding_overshoot_is_clamped_and_counted(tf, tmp_path):
    path = write_coco(tmp_path, lambda d: d["annotations"][0]["bbox"].__setitem__(2, 88.5))
    result = run_cli("coco2tfr", path, "--images-dir", SAMPLE / "images", "-o",
                     tmp_path / "out" / "x.record")
    assert result.exit_code == 0, result.output
    assert "boxes clamped (within rounding): 1" in result.output
    row = parse_with_od_api_spec(tf, [tmp_path / "out" / "x.record"])[0]
    assert row["image/object/bbox/xmax"][0] == 1.0


def test_file_names_with_subfolders(tf, tmp_path):
    images = tmp_path / "imgs"
    (images / "a" / "b").mkdir(parents=True)
    shutil.copy(SAMPLE / "images" / "cat_dog.jpg", images / "a" / "b" / "cat_dog.jpg")
    path = write_coco(tmp_path, lambda d: (d.__setitem__("images", [dict(d["images"][0],
                                                                            file_name="a/b/cat_dog.jpg")])))
    out, _ = convert(tmp_path, instances=path, images=images)
    row = parse_with_od_api_spec(tf, [out])[0]
    assert row["image/filename"] == b"a/b/cat_dog.jpg"


def test_annotations_of_unknown_images_are_reported(tmp_path):
    path = write_coco(tmp_path, lambda d: d["annotations"][0].__setitem__("image_id", 424242))
    result = run_cli("coco2tfr", path, "--images-dir", SAMPLE / "images", "-o", tmp_path / "out" / "x.record")
    assert result.exit_code == 0, result.output
    assert "1 annotation(s) reference image ids that are not in images" in result.output


def test_image_without_id_is_bad_input(tmp_path):
    path = write_coco(tmp_path, lambda d: d["images"][0].pop("id"))
    result = run_cli("coco2tfr", path, "--images-dir", SAMPLE / "images", "-o", tmp_path / "out" / "x.record")
    assert_bad_input(result, "instances.json", "images[0] has id None, not an integer")
