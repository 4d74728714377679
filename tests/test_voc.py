"""voc2tfr: VOC XML to OD API TFRecords, read back by the real consumers."""

from __future__ import annotations

import hashlib
import shutil

import numpy as np
import pytest
from PIL import Image

from odprep.errors import OdprepError
from odprep.labelmap import LabelMap
from odprep.readers.voc import read_voc

from .conftest import SAMPLE, decode_with_model_garden, parse_with_od_api_spec
from .helpers import VOC_TEMPLATE, assert_bad_input, leftovers, run_cli, voc_object

# Ground truth of sample_data (pixels), by image file name.
TRUTH = {
    "Upper.JPG": ((48, 48), [("dog", 4, 4, 44, 44)]),
    "cat_dog.jpg": ((96, 64), [("cat", 8, 10, 40, 50), ("dog", 50, 5, 90, 60)]),
    "empty.jpg": ((64, 64), []),
    "gray.jpg": ((64, 48), [("cat", 0, 0, 64, 48)]),
    "palette.png": ((72, 56), [("cat", 5, 5, 30, 40)]),
    "street.png": ((80, 60), [("traffic light", 10.5, 4, 22.5, 30), ("dog", 30, 20, 78, 58)]),
}
SORTED_IDS = {"cat": 1, "dog": 2, "traffic light": 3}


def assert_matches_truth(rows, expect_labels: bool = True, atol: float = 1e-6, text=lambda name: name,
                         images=None) -> None:
    """Records (parsed with the OD API spec) hold exactly the sample ground truth: every
    format's sample folder describes the same images, so every reader must agree."""
    assert sorted(r["image/filename"].decode() for r in rows) == sorted(images or TRUTH)
    for row in rows:
        (width, height), objects = TRUTH[row["image/filename"].decode()]
        assert [t.decode() for t in row["image/object/class/text"]] == [text(o[0]) for o in objects]
        if expect_labels:
            assert list(row["image/object/class/label"]) == [SORTED_IDS[o[0]] for o in objects]
        expected = np.array([[o[1] / width, o[3] / width, o[2] / height, o[4] / height] for o in objects],
                            dtype=np.float32).reshape(-1, 4)
        got = np.stack([row[f"image/object/bbox/{k}"] for k in ("xmin", "xmax", "ymin", "ymax")], axis=-1)
        np.testing.assert_allclose(got, expected, rtol=0, atol=atol)


def convert_sample(tmp_path, *extra):
    out = tmp_path / "out" / "train.record"
    result = run_cli("voc2tfr", SAMPLE / "voc" / "Annotations", "--images-dir", SAMPLE / "images",
                     "-o", out, *extra)
    assert result.exit_code == 0, result.output
    return out, result


def test_every_record_matches_ground_truth_through_od_api_spec(tf, tmp_path):
    out, _ = convert_sample(tmp_path)
    rows = parse_with_od_api_spec(tf, [out])
    assert sorted(r["image/filename"].decode() for r in rows) == sorted(TRUTH)
    for row in rows:
        (width, height), objects = TRUTH[row["image/filename"].decode()]
        assert (row["image/width"], row["image/height"]) == (width, height)
        assert [t.decode() for t in row["image/object/class/text"]] == [o[0] for o in objects]
        assert list(row["image/object/class/label"]) == [SORTED_IDS[o[0]] for o in objects]
        expected = np.array([[o[1] / width, o[3] / width, o[2] / height, o[4] / height]
                             for o in objects], dtype=np.float32).reshape(-1, 4)
        got = np.stack([row[f"image/object/bbox/{k}"] for k in ("xmin", "xmax", "ymin", "ymax")],
                       axis=-1)
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-7)


def test_one_example_feature_by_feature(tf, tmp_path):
    out, _ = convert_sample(tmp_path)
    rows = {r["image/filename"]: r for r in parse_with_od_api_spec(tf, [out])}
    row = rows[b"cat_dog.jpg"]
    data = (SAMPLE / "images" / "cat_dog.jpg").read_bytes()
    assert row["image/encoded"] == data  # untouched bytes
    assert row["image/format"] == b"jpeg"
    assert row["image/key/sha256"] == hashlib.sha256(data).hexdigest().encode()
    assert row["image/source_id"] == b"cat_dog.jpg"
    assert (row["image/height"], row["image/width"]) == (64, 96)
    np.testing.assert_allclose(row["image/object/bbox/xmin"], [8 / 96, 50 / 96], atol=1e-7)
    np.testing.assert_allclose(row["image/object/bbox/xmax"], [40 / 96, 90 / 96], atol=1e-7)
    np.testing.assert_allclose(row["image/object/bbox/ymin"], [10 / 64, 5 / 64], atol=1e-7)
    np.testing.assert_allclose(row["image/object/bbox/ymax"], [50 / 64, 60 / 64], atol=1e-7)
    assert list(row["image/object/class/text"]) == [b"cat", b"dog"]
    assert list(row["image/object/class/label"]) == [1, 2]
    assert list(row["image/object/difficult"]) == [0, 1]
    example = tf.train.Example.FromString(next(iter(tf.data.TFRecordDataset([str(out)]))).numpy())
    feature = example.features.feature
    records = list(tf.data.TFRecordDataset([str(out)]).as_numpy_iterator())
    by_name = {tf.train.Example.FromString(r).features.feature["image/filename"].bytes_list.value[0]:
               tf.train.Example.FromString(r).features.feature for r in records}
    feature = by_name[b"cat_dog.jpg"]
    assert list(feature["image/object/truncated"].int64_list.value) == [1, 0]
    assert list(feature["image/object/view"].bytes_list.value) == [b"Left", b"Unspecified"]
    assert rows[b"street.png"]["image/format"] == b"png"
    assert rows[b"palette.png"]["image/format"] == b"png"


def test_model_garden_decoder_reads_every_record(tf, tmp_path):
    out, _ = convert_sample(tmp_path)
    decoded = decode_with_model_garden(tf, [out])
    assert len(decoded) == 6
    for item in decoded:
        name = item["source_id"].decode()
        (width, height), objects = TRUTH[name]
        assert item["image"].shape == (height, width, 3)
        assert item["groundtruth_boxes"].shape == (len(objects), 4)
        assert list(item["groundtruth_classes"]) == [SORTED_IDS[o[0]] for o in objects]


def test_negative_example_has_typed_empty_lists(tf, tmp_path):
    out, _ = convert_sample(tmp_path)
    for raw in tf.data.TFRecordDataset([str(out)]).as_numpy_iterator():
        feature = tf.train.Example.FromString(raw).features.feature
        if feature["image/filename"].bytes_list.value[0] == b"empty.jpg":
            assert feature["image/object/bbox/xmin"].WhichOneof("kind") == "float_list"
            assert len(feature["image/object/bbox/xmin"].float_list.value) == 0
            return
    pytest.fail("empty.jpg was not written")


def test_default_label_map_written_beside_output_and_reported(tmp_path):
    out, result = convert_sample(tmp_path)
    written = LabelMap.load(out.parent / "label_map.pbtxt")
    assert [(i.id, i.name) for i in written.items] == [(1, "cat"), (2, "dog"), (3, "traffic light")]
    assert "label map written" in result.output
    assert "sorted by name" in result.output


def test_refuses_to_overwrite_a_different_label_map(tmp_path):
    out = tmp_path / "out" / "train.record"
    out.parent.mkdir()
    (out.parent / "label_map.pbtxt").write_text('item { id: 1 name: "zebra" }\n')
    result = run_cli("voc2tfr", SAMPLE / "voc" / "Annotations", "--images-dir", SAMPLE / "images",
                     "-o", out)
    assert_bad_input(result, "label_map.pbtxt", "--label-map")
    assert not out.exists()


def test_given_label_map_ids_are_used(tf, tmp_path):
    label_map = tmp_path / "map.pbtxt"
    label_map.write_text('item { id: 7 name: "dog" }\nitem { id: 3 name: "cat" }\n'
                         'item { id: 5 name: "traffic light" }\n')
    out, _ = convert_sample(tmp_path, "--label-map", label_map)
    ids = {"dog": 7, "cat": 3, "traffic light": 5}
    for row in parse_with_od_api_spec(tf, [out]):
        texts = [t.decode() for t in row["image/object/class/text"]]
        assert list(row["image/object/class/label"]) == [ids[t] for t in texts]
    assert not (out.parent / "label_map.pbtxt").exists()


def test_shards_use_od_api_names_and_hold_every_record(tf, tmp_path):
    out, _ = convert_sample(tmp_path, "--num-shards", "3")
    shards = sorted(out.parent.glob("train.record-*"))
    assert [p.name for p in shards] == [f"train.record-0000{i}-of-00003" for i in range(3)]
    counts = [len(parse_with_od_api_spec(tf, [p])) for p in shards]
    assert counts == [2, 2, 2]
    assert not out.exists()


def test_skip_empty_drops_negatives_and_says_so(tmp_path):
    _, result = convert_sample(tmp_path, "--skip-empty")
    assert "images written: 5 (0 without objects)" in result.output
    assert "skipped images: 1" in result.output


def test_same_output_for_any_worker_count(tmp_path):
    one, _ = convert_sample(tmp_path / "a", "--workers", "1", "--num-shards", "2")
    two, _ = convert_sample(tmp_path / "b", "--workers", "2", "--num-shards", "2")
    for suffix in ("-00000-of-00002", "-00001-of-00002"):
        assert (one.parent / (one.name + suffix)).read_bytes() == \
            (two.parent / (two.name + suffix)).read_bytes()


def test_reader_resolves_messy_image_names_with_a_warning():
    records = {r.filename: r for r in read_voc(SAMPLE / "voc" / "Annotations", SAMPLE / "images")}
    upper = records["Upper.JPG"]
    assert upper.image_path.name == "Upper.JPG"
    assert any("Upper" in note for note in upper.notes)
    assert records["palette.png"].width is None  # <size> 0: read from the image
    assert records["cat_dog.jpg"].objects[0].view == "Left"


# --- bad input -----------------------------------------------------------------------------------

@pytest.fixture
def voc_case(tmp_path):
    """A one-image VOC set whose XML the test writes."""
    ann = tmp_path / "Annotations"
    imgs = tmp_path / "images"
    ann.mkdir()
    imgs.mkdir()
    shutil.copy(SAMPLE / "images" / "cat_dog.jpg", imgs / "a.jpg")
    out_dir = tmp_path / "out"
    out_dir.mkdir()

    def write(objects: str = voc_object(), filename: str = "a.jpg", width=96, height=64, raw=None):
        (ann / "a.xml").write_text(raw if raw is not None else VOC_TEMPLATE.format(
            filename=filename, width=width, height=height, objects=objects))
        return ann, imgs, out_dir

    return write


BAD_VOC = [
    ("malformed", dict(raw="<annotation><filename>a.jpg</filename>"), ["a.xml", "malformed XML"]),
    ("no name", dict(objects="<object><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>5</xmax>"
                             "<ymax>5</ymax></bndbox></object>"), ["a.xml", "object 1", "<name>"]),
    ("no bndbox", dict(objects="<object><name>cat</name></object>"),
     ["a.xml", "object 1 (cat)", "<bndbox>"]),
    ("x inverted", dict(objects=voc_object(box=(50, 2, 30, 40))), ["object 1 (cat)", "xmin 50 >= xmax 30"]),
    ("y inverted", dict(objects=voc_object(box=(1, 40, 30, 40))), ["ymin 40 >= ymax 40"]),
    ("outside", dict(objects=voc_object(box=(1, 2, 700, 40))),
     ["object 1 (cat)", "xmax 700 is outside the image width 96", "--clip-boxes"]),
    ("size mismatch", dict(width=100, height=64), ["100x64", "96x64"]),
    ("non-numeric", dict(objects=voc_object(box=("1a", 2, 30, 40))), ["<xmin>", "'1a'"]),
]


@pytest.mark.parametrize("case, kwargs, fragments", BAD_VOC, ids=[c[0] for c in BAD_VOC])
def test_bad_voc_input_exits_2_with_one_line_and_no_output(voc_case, case, kwargs, fragments):
    ann, imgs, out_dir = voc_case(**kwargs)
    result = run_cli("voc2tfr", ann, "--images-dir", imgs, "-o", out_dir / "x.record")
    assert_bad_input(result, *fragments)
    assert leftovers(out_dir) == []


def test_missing_image(voc_case):
    ann, imgs, out_dir = voc_case(filename="nothere.jpg")
    (imgs / "a.jpg").unlink()
    result = run_cli("voc2tfr", ann, "--images-dir", imgs, "-o", out_dir / "x.record")
    assert_bad_input(result, "a.xml", "nothere.jpg not found", "--images-dir")
    assert leftovers(out_dir) == []


def test_missing_name_falls_back_to_xml_stem_with_a_warning(voc_case):
    ann, imgs, out_dir = voc_case(filename="renamed.jpg")
    result = run_cli("voc2tfr", ann, "--images-dir", imgs, "-o", out_dir / "x.record")
    assert result.exit_code == 0, result.output
    assert "'renamed.jpg' not found as written; using a.jpg" in result.output


@pytest.mark.parametrize("written", ["JPEGImages/a.jpg", "C:\\data\\A.JPG", "a", "A.jpeg"])
def test_messy_filenames_resolve_with_a_warning(voc_case, written):
    ann, imgs, out_dir = voc_case(filename=written)
    result = run_cli("voc2tfr", ann, "--images-dir", imgs, "-o", out_dir / "x.record")
    assert result.exit_code == 0, result.output
    assert "using a.jpg" in result.output


def test_not_an_image_is_rejected(voc_case):
    ann, imgs, out_dir = voc_case()
    (imgs / "a.jpg").write_text("this is not a jpeg")
    result = run_cli("voc2tfr", ann, "--images-dir", imgs, "-o", out_dir / "x.record")
    assert_bad_input(result, "a.jpg", "is not an image")
    assert leftovers(out_dir) == []


def test_every_class_missing_from_label_map_is_named(voc_case, tmp_path):
    ann, imgs, out_dir = voc_case(objects=voc_object("zebra") + voc_object("cat") + voc_object("yak")
                                  + voc_object("zebra"))
    label_map = tmp_path / "map.pbtxt"
    label_map.write_text('item { id: 1 name: "cat" }\n')
    result = run_cli("voc2tfr", ann, "--images-dir", imgs, "-o", out_dir / "x.record",
                     "--label-map", label_map)
    assert_bad_input(result, "2 class(es) are not in the label map", "'yak' (1 object(s)",
                     "'zebra' (2 object(s)", "a.xml")
    assert leftovers(out_dir) == []


def test_no_annotations_found(tmp_path):
    (tmp_path / "empty").mkdir()
    result = run_cli("voc2tfr", tmp_path / "empty", "--images-dir", tmp_path, "-o", tmp_path / "x.rec")
    assert_bad_input(result, "no annotations found")


def test_other_formats_rejected_by_name_unless_reencode(tf, voc_case):
    ann, imgs, out_dir = voc_case(filename="a.bmp")
    Image.open(imgs / "a.jpg").save(imgs / "a.bmp")
    result = run_cli("voc2tfr", ann, "--images-dir", imgs, "-o", out_dir / "x.record")
    assert_bad_input(result, "a.bmp is BMP", "--reencode")
    result = run_cli("voc2tfr", ann, "--images-dir", imgs, "-o", out_dir / "x.record", "--reencode")
    assert result.exit_code == 0, result.output
    row = parse_with_od_api_spec(tf, [out_dir / "x.record"])[0]
    assert row["image/format"] == b"png"
    assert tf.io.decode_image(row["image/encoded"]).shape == (64, 96, 3)


def test_clip_boxes_clips_with_one_warning_per_box(tf, voc_case):
    ann, imgs, out_dir = voc_case(objects=voc_object(box=(-5, 2, 700, 40)) + voc_object("dog"))
    result = run_cli("voc2tfr", ann, "--images-dir", imgs, "-o", out_dir / "x.record", "--clip-boxes")
    assert result.exit_code == 0, result.output
    assert "clipped boxes: 1" in result.output
    row = parse_with_od_api_spec(tf, [out_dir / "x.record"])[0]
    assert row["image/object/bbox/xmin"][0] == 0.0 and row["image/object/bbox/xmax"][0] == 1.0


def test_skip_invalid_counts_every_skip(tf, voc_case):
    ann, imgs, out_dir = voc_case(objects=voc_object(box=(50, 2, 30, 40)) + voc_object("dog"))
    (ann / "broken.xml").write_text("<annotation>")
    result = run_cli("voc2tfr", ann, "--images-dir", imgs, "-o", out_dir / "x.record", "--skip-invalid")
    assert result.exit_code == 0, result.output
    assert "skipped images: 1" in result.output and "broken.xml" in result.output
    assert "skipped objects: 1" in result.output and "xmin 50 >= xmax 30" in result.output
    rows = parse_with_od_api_spec(tf, [out_dir / "x.record"])
    assert [list(r["image/object/class/text"]) for r in rows] == [[b"dog"]]


def test_size_zero_and_missing_size_read_from_header(tf, voc_case):
    ann, imgs, out_dir = voc_case(raw="<annotation><filename>a.jpg</filename>"
                                      + voc_object() + "</annotation>")
    result = run_cli("voc2tfr", ann, "--images-dir", imgs, "-o", out_dir / "x.record")
    assert result.exit_code == 0, result.output
    row = parse_with_od_api_spec(tf, [out_dir / "x.record"])[0]
    assert (row["image/width"], row["image/height"]) == (96, 64)


def test_float_coordinates_are_not_truncated(tf, voc_case):
    ann, imgs, out_dir = voc_case(objects=voc_object(box=(10.7, 2.5, 30.2, 40.9)))
    run_cli("voc2tfr", ann, "--images-dir", imgs, "-o", out_dir / "x.record")
    row = parse_with_od_api_spec(tf, [out_dir / "x.record"])[0]
    np.testing.assert_allclose(row["image/object/bbox/xmin"], [10.7 / 96], atol=1e-7)
    np.testing.assert_allclose(row["image/object/bbox/ymax"], [40.9 / 64], atol=1e-7)


def test_streamed_and_whole_file_parsing_agree(monkeypatch, tmp_path):
    """Files over STREAM_ABOVE are read child by child; both paths give the same records."""
    from odprep.readers import voc

    paths = sorted((SAMPLE / "voc" / "Annotations").glob("*.xml"))
    whole = [voc.parse_voc_file(p, None) for p in paths]
    monkeypatch.setattr(voc, "STREAM_ABOVE", 0)
    assert [voc.parse_voc_file(p, None) for p in paths] == whole
    dtd = tmp_path / "dtd.xml"
    dtd.write_text('<!DOCTYPE annotation [<!ENTITY a "x">]><annotation><filename>&a;</filename></annotation>')
    with pytest.raises(OdprepError, match="declares a DTD"):
        voc.parse_voc_file(dtd, None)
