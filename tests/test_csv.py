"""csv2tfr, and the same sample set in VOC, CSV and COCO giving equal records."""

from __future__ import annotations

import numpy as np
import pytest

from odprep import proto
from odprep.labelmap import LabelMap
from odprep.tfrecord import read_records

from .conftest import SAMPLE, SHARED_DATASETS, parse_with_od_api_spec
from .helpers import assert_bad_input, leftovers, run_cli


def convert_csv(tmp_path, csv_path, *extra, images=SAMPLE / "images"):
    out = tmp_path / "out" / "csv.record"
    result = run_cli("csv2tfr", csv_path, "--images-dir", images, "-o", out, *extra)
    return out, result


def comparable(path):
    """filename -> (size, [(text, box), ...]) from records, for cross-format equality."""
    rows = {}
    for raw in read_records(path):
        f = proto.Example.FromString(raw.data).features.feature
        boxes = zip(*(f[f"image/object/bbox/{k}"].float_list.value for k in ("xmin", "ymin", "xmax", "ymax")),
                    strict=True)
        rows[f["image/filename"].bytes_list.value[0].decode()] = (
            (f["image/width"].int64_list.value[0], f["image/height"].int64_list.value[0]),
            sorted(zip((t.decode() for t in f["image/object/class/text"].bytes_list.value), boxes,
                       strict=True)))
    return rows


def test_voc_csv_and_coco_give_equal_records(tmp_path):
    outputs = {}
    for name, argv in {
        "voc": ["voc2tfr", SAMPLE / "voc" / "Annotations"],
        "csv": ["csv2tfr", SAMPLE / "csv" / "annotations.csv"],
        "coco": ["coco2tfr", SAMPLE / "coco" / "instances.json"],
    }.items():
        out = tmp_path / name / "x.record"
        result = run_cli(*argv, "--images-dir", SAMPLE / "images", "-o", out)
        assert result.exit_code == 0, result.output
        outputs[name] = comparable(out)
    assert len(outputs["voc"]) == 6
    assert outputs["voc"] == outputs["csv"] == outputs["coco"]


def test_csv_labels_follow_the_built_map(tf, tmp_path):
    out, result = convert_csv(tmp_path, SAMPLE / "csv" / "annotations.csv")
    assert result.exit_code == 0, result.output
    label_map = LabelMap.load(out.parent / "label_map.pbtxt")
    assert label_map.names == ["cat", "dog", "traffic light"]
    rows = parse_with_od_api_spec(tf, [out])
    assert sum(len(r["image/object/class/label"]) for r in rows) == 7


def test_columns_in_any_order_bom_quotes_and_whitespace(tf, tmp_path):
    csv_path = tmp_path / "a.csv"
    csv_path.write_text('\ufeff cell_type , xmax,ymin , filename,xmin,ymax\n'
                        '"traffic light", 22.5 , 4, "street.png" ,10.5,30\n'
                        'dog,78,20,street.png,30,58\n', encoding="utf-8")
    out, result = convert_csv(tmp_path, csv_path, "--columns", "class=cell_type")
    assert result.exit_code == 0, result.output
    row = parse_with_od_api_spec(tf, [out])[0]
    assert list(row["image/object/class/text"]) == [b"traffic light", b"dog"]
    np.testing.assert_allclose(row["image/object/bbox/xmin"], [10.5 / 80, 30 / 80], atol=1e-7)


def test_normalized_coordinates(tf, tmp_path):
    csv_path = tmp_path / "n.csv"
    csv_path.write_text("filename,class,xmin,ymin,xmax,ymax\ncat_dog.jpg,cat,0.25,0.5,0.75,1.0\n")
    out, result = convert_csv(tmp_path, csv_path, "--normalized")
    assert result.exit_code == 0, result.output
    row = parse_with_od_api_spec(tf, [out])[0]
    np.testing.assert_allclose([row["image/object/bbox/xmin"][0], row["image/object/bbox/ymax"][0]],
                               [0.25, 1.0], atol=1e-7)


def test_rows_are_grouped_by_image_never_split(tf, tmp_path):
    csv_path = tmp_path / "g.csv"
    csv_path.write_text("filename,class,xmin,ymin,xmax,ymax\ncat_dog.jpg,cat,8,10,40,50\n"
                        "gray.jpg,cat,0,0,64,48\ncat_dog.jpg,dog,50,5,90,60\n")
    out, result = convert_csv(tmp_path, csv_path)
    rows = parse_with_od_api_spec(tf, [out])
    assert [r["image/filename"] for r in rows] == [b"cat_dog.jpg", b"gray.jpg"]
    assert list(rows[0]["image/object/class/text"]) == [b"cat", b"dog"]


def test_make_labelmap_from_csv(tmp_path):
    out = tmp_path / "lm.pbtxt"
    assert run_cli("make-labelmap", SAMPLE / "csv" / "annotations.csv", "-o", out).exit_code == 0
    assert LabelMap.load(out).names == ["cat", "dog", "traffic light"]


BAD_CSV = [
    ("non-numeric", "cat_dog.jpg,96,64,cat,8,ten,40,50", ["line 2 (cat)", "ymin 'ten' is not a number"]),
    ("inverted", "cat_dog.jpg,96,64,cat,40,10,8,50", ["line 2 (cat)", "xmin 40 >= xmax 8"]),
    ("outside", "cat_dog.jpg,96,64,cat,8,10,140,50", ["line 2 (cat)", "outside the image width 96"]),
    ("missing image", "nope.jpg,96,64,cat,8,10,40,50", ["line 2", "nope.jpg not found"]),
    ("size mismatch", "cat_dog.jpg,100,64,cat,8,10,40,50", ["line 2", "100x64", "96x64"]),
    ("missing value", "cat_dog.jpg,96,64,cat,8,10,,50", ["line 2 (cat)", "xmax is missing"]),
]


@pytest.mark.parametrize("case, row, fragments", BAD_CSV, ids=[c[0] for c in BAD_CSV])
def test_bad_csv_rows_name_file_and_line(tmp_path, case, row, fragments):
    csv_path = tmp_path / "bad.csv"
    csv_path.write_text("filename,width,height,class,xmin,ymin,xmax,ymax\n" + row + "\n")
    (tmp_path / "out").mkdir()
    out, result = convert_csv(tmp_path, csv_path)
    assert_bad_input(result, "bad.csv", *fragments)
    assert leftovers(tmp_path / "out") == []


def test_missing_column_suggests_columns_option(tmp_path):
    csv_path = tmp_path / "c.csv"
    csv_path.write_text("filename,label,xmin,ymin,xmax,ymax\ncat_dog.jpg,cat,8,10,40,50\n")
    _, result = convert_csv(tmp_path, csv_path)
    assert_bad_input(result, "no 'class' column", "--columns class=")


# --- opt-in real data (skipped when ../shared is absent) ----------------------------------------

needs_shared = pytest.mark.skipif(not SHARED_DATASETS.is_dir(), reason="../shared/datasets not present")


@needs_shared
def test_real_bccd_test_csv_with_reordered_columns(tmp_path):
    bccd = SHARED_DATASETS / "bccd"
    _, strict = convert_csv(tmp_path, bccd / "test.csv", "--columns", "class=cell_type",
                            images=bccd / "BCCD" / "JPEGImages")
    assert_bad_input(strict, "test.csv: line ", "xmin 504 >= xmax 504")  # a real zero-width box
    _, lenient = convert_csv(tmp_path, bccd / "test.csv", "--columns", "class=cell_type",
                             "--skip-invalid", images=bccd / "BCCD" / "JPEGImages")
    assert lenient.exit_code == 0, lenient.output
    assert "skipped objects: " in lenient.output


@needs_shared
def test_real_raccoon_voc_and_csv(tmp_path):
    raccoon = SHARED_DATASETS / "raccoon"
    voc = run_cli("voc2tfr", raccoon / "annotations", "--images-dir", raccoon / "images",
                  "-o", tmp_path / "voc" / "r.record")
    assert voc.exit_code == 0, voc.output
    assert "images written: 200" in voc.output
    csvs = sorted((raccoon / "data").glob("*.csv"))
    for index, csv_path in enumerate(csvs):
        result = run_cli("csv2tfr", csv_path, "--images-dir", raccoon / "images",
                         "-o", tmp_path / f"csv{index}" / "r.record")
        assert result.exit_code == 0, (csv_path, result.output)


@needs_shared
def test_real_bccd_voc_reports_zero_area_boxes(tmp_path):
    bccd = SHARED_DATASETS / "bccd" / "BCCD"
    strict = run_cli("voc2tfr", bccd / "Annotations", "--images-dir", bccd / "JPEGImages",
                     "-o", tmp_path / "a" / "b.record")
    assert strict.exit_code == 2 and "BloodImage_003" in strict.output
    lenient = run_cli("voc2tfr", bccd / "Annotations", "--images-dir", bccd / "JPEGImages",
                      "-o", tmp_path / "b" / "b.record", "--skip-invalid")
    assert lenient.exit_code == 0, lenient.output
    assert "images written: 364" in lenient.output


@needs_shared
@pytest.mark.parametrize("split", ["train2017", "val2017"])
def test_real_coco_tiny_with_masks(tf, tmp_path, split):
    coco = SHARED_DATASETS / "coco_tiny"
    out = tmp_path / "c.record"
    result = run_cli("coco2tfr", coco / "annotations" / f"instances_{split}.json", "--images-dir",
                     coco / split, "-o", out, "--include-masks")
    assert result.exit_code == 0, result.output
    assert "images written: 80" in result.output
    assert len(parse_with_od_api_spec(tf, [out], masks=True)) == 80
