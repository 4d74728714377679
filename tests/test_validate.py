"""validate: each classic defect in a file written by TensorFlow itself is caught."""

from __future__ import annotations

import hashlib
import json

import pytest
from PIL import Image

from .conftest import SAMPLE
from .helpers import run_cli

IMAGE = (SAMPLE / "images" / "cat_dog.jpg").read_bytes()


def features(tf, **overrides):
    """A clean OD API example for cat_dog.jpg (96x64, two objects), with overrides.
    An override of None removes the key."""
    b = lambda *v: tf.train.Feature(bytes_list=tf.train.BytesList(value=list(v)))  # noqa: E731
    f = lambda *v: tf.train.Feature(float_list=tf.train.FloatList(value=list(v)))  # noqa: E731
    i = lambda *v: tf.train.Feature(int64_list=tf.train.Int64List(value=list(v)))  # noqa: E731
    feature = {
        "image/encoded": b(IMAGE), "image/format": b(b"jpeg"), "image/height": i(64),
        "image/width": i(96), "image/filename": b(b"cat_dog.jpg"), "image/source_id": b(b"1"),
        "image/key/sha256": b(hashlib.sha256(IMAGE).hexdigest().encode()),
        "image/object/bbox/xmin": f(0.1, 0.5), "image/object/bbox/xmax": f(0.4, 0.9),
        "image/object/bbox/ymin": f(0.2, 0.1), "image/object/bbox/ymax": f(0.8, 0.9),
        "image/object/class/text": b(b"cat", b"dog"), "image/object/class/label": i(1, 2),
    }
    for key, value in overrides.items():
        key = key.replace("__", "/")
        if value is None:
            feature.pop(key)
        else:
            feature[key] = value(b, f, i)
    return tf.train.Example(features=tf.train.Features(feature=feature))


def write(tf, path, *examples):
    with tf.io.TFRecordWriter(str(path)) as writer:
        for example in examples:
            writer.write(example.SerializeToString())
    return path


def write_junk(tf, path):
    """A TFRecord file whose one record is not a tf.train.Example."""
    with tf.io.TFRecordWriter(str(path)) as writer:
        writer.write(b"\xff\xff\xff not a proto")
    return path


@pytest.fixture
def label_map(tmp_path):
    path = tmp_path / "lm.pbtxt"
    path.write_text('item { id: 1 name: "cat" }\nitem { id: 2 name: "dog" }\n')
    return path


def test_clean_file_passes(tf, tmp_path, label_map):
    path = write(tf, tmp_path / "ok.record", features(tf), features(tf))
    result = run_cli("validate", path, "--label-map", label_map, "--decode", "--strict")
    assert result.exit_code == 0, result.output
    assert "0 error(s), 0 warning(s)" in result.output


DEFECTS = {
    "misspelled key": (dict(image__object__bbox__xmin=None,
                            **{"image/object/bbox/Xmin": lambda b, f, i: f(0.1, 0.5)}),
                       "misspelled-key", "did you mean `image/object/bbox/xmin`?"),
    "int64 boxes": (dict(image__object__bbox__ymax=lambda b, f, i: i(1, 1)), "wrong-type",
                    "`image/object/bbox/ymax` is int64_list; the OD API reads float_list"),
    "pixel boxes": (dict(image__object__bbox__xmax=lambda b, f, i: f(40.0, 90.0)), "bbox-in-pixels",
                    "look like pixels"),
    "ragged lists": (dict(image__object__class__label=lambda b, f, i: i(1)), "ragged-lists",
                     "indices[0] = 0 is not in [0, 0)"),
    "label zero": (dict(image__object__class__label=lambda b, f, i: i(0, 2)), "label-below-1",
                   "0 is background"),
    "unknown text": (dict(image__object__class__text=lambda b, f, i: b(b"cat", b"zebra")),
                     "text-not-in-map", "'zebra'"),
    "text label disagree": (dict(image__object__class__label=lambda b, f, i: i(2, 1)),
                            "text-label-disagree", "'cat' has label 2"),
    "wrong height": (dict(image__height=lambda b, f, i: i(65)), "size-mismatch", "96x65"),
    "format mismatch": (dict(image__format=lambda b, f, i: b(b"png")), "format-mismatch", "JPEG"),
    "inverted box": (dict(image__object__bbox__xmin=lambda b, f, i: f(0.5, 0.5),
                          image__object__bbox__xmax=lambda b, f, i: f(0.4, 0.9)), "bbox-inverted",
                     "object 0"),
    "nan box": (dict(image__object__bbox__xmin=lambda b, f, i: f(float("nan"), 0.5)), "bbox-nan", "NaN"),
    "missing encoded": (dict(image__encoded=None), "missing-image", "no `image/encoded`"),
    "image will not decode": (dict(image__encoded=lambda b, f, i: b(IMAGE[: len(IMAGE) // 2])),
                              "image-not-decodable", "does not decode"),
    "truncated image without --decode": (dict(image__encoded=lambda b, f, i: b(IMAGE[: len(IMAGE) // 2])),
                                         "image-not-decodable", "truncated"),
    "no boxes": (dict(image__object__bbox__xmin=None, image__object__bbox__xmax=None,
                      image__object__bbox__ymin=None, image__object__bbox__ymax=None),
                 "bbox-missing", "no image/object/bbox"),
    "two heights": (dict(image__height=lambda b, f, i: i(64, 64)), "wrong-count", "exactly one"),
    "bad sha": (dict(image__key__sha256=lambda b, f, i: b(b"0" * 64)), "sha256-mismatch", "SHA-256"),
    "mask count": (dict(image__object__mask=lambda b, f, i: b(b"x", b"y"),
                        image__object__class__label=lambda b, f, i: i(1, 2)), "mask-not-decodable",
                   "mask 0"),
}


@pytest.mark.parametrize("name", DEFECTS)
def test_each_defect_is_caught_with_exit_1_and_a_fix(tf, tmp_path, label_map, name):
    overrides, kind, fragment = DEFECTS[name]
    path = write(tf, tmp_path / "bad.record", features(tf), features(tf, **overrides))
    decode = [] if "without --decode" in name else ["--decode"]
    result = run_cli("validate", path, "--label-map", label_map, *decode)
    assert result.exit_code == 1, result.output
    assert kind in result.output and fragment in result.output, result.output
    assert "bad.record: record 1 (cat_dog.jpg)" in result.output or kind == "missing-image"
    assert "fix:" in result.output


def test_flipped_byte_and_truncated_file(tf, tmp_path):
    path = write(tf, tmp_path / "ok.record", features(tf), features(tf), features(tf))
    data = bytearray(path.read_bytes())
    one = len(data) // 3
    flipped = tmp_path / "flipped.record"
    flipped.write_bytes(bytes(data[:one + 500]) + bytes([data[one + 500] ^ 1]) + bytes(data[one + 501:]))
    result = run_cli("validate", flipped)
    assert result.exit_code == 1 and "data CRC mismatch" in result.output and "record 1" in result.output
    truncated = tmp_path / "truncated.record"
    truncated.write_bytes(bytes(data[:-100]))
    result = run_cli("validate", truncated)
    assert result.exit_code == 1 and "truncated record" in result.output
    assert f"the last good record ends at byte {2 * one}" in result.output


def test_zero_area_is_a_warning_failing_only_with_strict(tf, tmp_path):
    example = features(tf, image__object__bbox__xmax=lambda b, f, i: f(0.1, 0.9))
    path = write(tf, tmp_path / "z.record", example)
    assert run_cli("validate", path).exit_code == 0
    result = run_cli("validate", path, "--strict")
    assert result.exit_code == 1 and "bbox-zero-area" in result.output


def test_not_an_example_and_missing_file(tf, tmp_path):
    path = write_junk(tf, tmp_path / "junk.record")
    result = run_cli("validate", path)
    assert result.exit_code == 1 and "not-an-example" in result.output
    assert run_cli("validate", tmp_path / "missing.record").exit_code == 2


def test_json_groups_findings_with_counts(tf, tmp_path):
    bad = features(tf, image__object__class__label=lambda b, f, i: i(0, 0))
    path = write(tf, tmp_path / "b.record", *[bad] * 7)
    result = run_cli("validate", path, "--json", "--max-examples", "3")
    payload = json.loads(result.output)
    group = next(g for g in payload["findings"] if g["kind"] == "label-below-1")
    assert group["count"] == 14 and len(group["examples"]) == 3


def test_odprep_output_validates_clean(tmp_path):
    out = tmp_path / "c.record"
    assert run_cli("coco2tfr", SAMPLE / "coco" / "instances.json", "--images-dir", SAMPLE / "images",
                   "-o", out, "--include-masks").exit_code == 0
    result = run_cli("validate", out, "--label-map", tmp_path / "label_map.pbtxt", "--decode", "--strict")
    assert result.exit_code == 0, result.output


def test_inspect_reports_numbers_and_writes_a_preview(tmp_path):
    out = tmp_path / "c.record"
    run_cli("coco2tfr", SAMPLE / "coco" / "instances.json", "--images-dir", SAMPLE / "images",
            "-o", out, "--include-masks")
    result = run_cli("inspect", out, "--json")
    stats = json.loads(result.output)
    assert stats["images"] == 6 and stats["objects"] == 7 and stats["negative_images"] == 1
    assert stats["classes"]["cat"] == {"objects": 3, "images": 3}
    assert stats["imbalance_ratio"] == 3.0
    assert sum(stats["box_sizes"].values()) == 7
    assert stats["duplicate_images"] == 0 and stats["images_with_masks"] == 5
    preview = tmp_path / "preview"
    result = run_cli("inspect", out, "--preview", preview, "--num", "3")
    assert result.exit_code == 0, result.output
    pictures = sorted(preview.glob("*.png"))
    assert len(pictures) == 3
    with Image.open(pictures[0]) as picture:
        assert picture.size in {(96, 64), (80, 60), (64, 48), (72, 56), (48, 48)}
    index = (preview / "index.html").read_text()
    assert "traffic light" in index and "000.png" in index


def test_stratified_pick_shows_rare_classes_first():
    from pathlib import Path

    from odprep.preview import stratified_pick

    index = [(Path("a"), i, ("common",)) for i in range(10)] + [(Path("a"), 10, ("rare",))]
    assert stratified_pick(index, 2) == [10, 0]


def test_inspect_counts_duplicates(tf, tmp_path):
    path = write(tf, tmp_path / "d.record", features(tf), features(tf))
    assert "duplicate images (same sha256): 1" in run_cli("inspect", path).output


def test_quoted_globs_are_expanded(tf, tmp_path):
    write(tf, tmp_path / "a.record-00000-of-00002", features(tf))
    write(tf, tmp_path / "a.record-00001-of-00002", features(tf))
    result = run_cli("validate", str(tmp_path / "a.record-*"))
    assert result.exit_code == 0 and "2 file(s), 2 record(s)" in result.output
    assert "images: 2" in run_cli("inspect", str(tmp_path / "a.record-*")).output
    assert run_cli("validate", str(tmp_path / "nothing-*")).exit_code == 2


def test_inspect_names_a_record_that_is_not_an_example(tf, tmp_path):
    path = write_junk(tf, tmp_path / "junk.record")
    result = run_cli("inspect", path)
    assert result.exit_code == 2 and "record 0 does not parse" in result.output
    assert "Traceback" not in result.output
