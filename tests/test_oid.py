"""oid2tfr: Open Images box CSVs, read back by the real consumers."""

from __future__ import annotations

import pytest

from .conftest import SAMPLE, parse_with_od_api_spec
from .helpers import assert_bad_input, run_cli
from .test_voc import TRUTH, assert_matches_truth

OID = SAMPLE / "oid"
HEADER = "ImageID,Source,LabelName,Confidence,XMin,XMax,YMin,YMax,IsOccluded,IsTruncated,IsGroupOf,IsDepiction\n"


def _convert(tmp_path, boxes=OID / "boxes.csv", descriptions=OID / "class-descriptions-boxable.csv", *extra):
    return run_cli("oid2tfr", boxes, "--images-dir", SAMPLE / "images", "--class-descriptions", descriptions,
                   "-o", tmp_path / "x.record", *extra)


def test_open_images_records_equal_the_ground_truth_with_flags_and_image_labels(tf, tmp_path):
    result = _convert(tmp_path, OID / "boxes.csv", OID / "class-descriptions-boxable.csv", "--image-labels",
                      OID / "image-labels.csv")
    assert result.exit_code == 0, result.output
    rows = parse_with_od_api_spec(tf, [tmp_path / "x.record"])
    assert_matches_truth(rows, atol=2e-6, images=set(TRUTH) - {"empty.jpg"})
    features = {tf.train.Example.FromString(r.numpy()).features.feature["image/filename"].bytes_list.value[0]:
                tf.train.Example.FromString(r.numpy()).features.feature
                for r in tf.data.TFRecordDataset([str(tmp_path / "x.record")])}
    cat_dog = features[b"cat_dog.jpg"]
    assert list(cat_dog["image/object/group_of"].int64_list.value) == [0, 1]
    assert list(cat_dog["image/object/occluded"].int64_list.value) == [0, 1]
    assert list(cat_dog["image/class/text"].bytes_list.value) == [b"cat"]  # confidence 0 is not positive
    assert list(cat_dog["image/class/label"].int64_list.value) == [1]
    assert list(features[b"street.png"]["image/class/text"].bytes_list.value) == [b"dog"]


def test_descriptions_with_a_header_row(tmp_path):
    (tmp_path / "d.csv").write_text("LabelName,DisplayName\n" + (OID / "class-descriptions-boxable.csv").read_text())
    assert _convert(tmp_path, OID / "boxes.csv", tmp_path / "d.csv").exit_code == 0


@pytest.mark.parametrize("row, fragment", [
    ("cat_dog,x,/m/nope,1,0.1,0.2,0.1,0.2,0,0,0,0\n", "not in the class descriptions"),
    ("cat_dog,x,/m/01yrx,1,0.1,1.5,0.1,0.2,0,0,0,0\n", "XMax 1.5 is outside [0, 1]"),
    ("cat_dog,x,/m/01yrx,1,0.1,abc,0.1,0.2,0,0,0,0\n", "XMax 'abc' is not a finite number"),
    ("cat_dog,x,/m/01yrx,1,0.1,0.2,0.1,0.2,nan,0,0,0\n", "IsOccluded is 'nan', not -1, 0 or 1"),
    ("cat_dog,x,/m/01yrx,1,0.1,0.2,0.1,0.2,N/A,0,0,0\n", "IsOccluded is 'N/A', not -1, 0 or 1"),
    ("cat_dog,x,/m/01yrx,1,0.1,0.2,0.1,0.2,NULL,0,0,0\n", "IsOccluded is 'NULL', not -1, 0 or 1"),
    ("cat_dog,x,/m/01yrx,1,0.1,0.2,0.1,0.2,true,0,0,0\n", "IsOccluded is 'true', not -1, 0 or 1"),
    ("cat_dog,x,/m/01yrx,1,0.1,0.2,0.1,0.2,0,0,2,0\n", "IsGroupOf is '2', not -1, 0 or 1"),
])
def test_bad_rows_name_the_line(tmp_path, row, fragment):
    (tmp_path / "b.csv").write_text(HEADER + "cat_dog,x,/m/01yrx,1,0.1,0.2,0.1,0.2,0,0,0,0\n" + row)
    assert_bad_input(_convert(tmp_path, tmp_path / "b.csv"), "b.csv", fragment)


def test_not_a_box_csv(tmp_path):
    (tmp_path / "b.csv").write_text("a,b\n1,2\n")
    assert_bad_input(_convert(tmp_path, tmp_path / "b.csv"), "no ImageID, LabelName")


def _without_pyarrow(monkeypatch) -> None:
    import sys

    for name in ("pyarrow", "pyarrow.csv"):
        monkeypatch.setitem(sys.modules, name, None)  # import fails as where it is not installed


def test_the_c_engine_fallback_gives_the_same_records(tmp_path, monkeypatch):
    from odprep.readers import oid

    arrow = oid.OpenImagesDataset(OID / "boxes.csv", SAMPLE / "images",
                                  oid.read_class_descriptions(OID / "class-descriptions-boxable.csv"))
    _without_pyarrow(monkeypatch)
    c = oid.OpenImagesDataset(OID / "boxes.csv", SAMPLE / "images",
                              oid.read_class_descriptions(OID / "class-descriptions-boxable.csv"))
    assert [arrow[i] for i in range(len(arrow))] == [c[i] for i in range(len(c))]


@pytest.mark.parametrize("engine", ["pyarrow", "c"])
def test_all_digit_image_ids_keep_their_leading_zeros(tmp_path, monkeypatch, engine):
    from odprep.readers import oid

    if engine == "c":
        _without_pyarrow(monkeypatch)
    images = tmp_path / "images"
    images.mkdir()
    for image_id in ("0000048549557964", "00012"):
        (images / f"{image_id}.jpg").write_bytes((SAMPLE / "images" / "cat_dog.jpg").read_bytes())
    (tmp_path / "b.csv").write_text(HEADER + "0000048549557964,xclick,/m/01yrx,1,0.1,0.5,0.1,0.5,0,0,0,0\n"
                                    "00012,xclick,/m/01yrx,1,0.2,0.6,0.2,0.6,0,0,0,0\n")
    (tmp_path / "labels.csv").write_text("ImageID,Source,LabelName,Confidence\n00012,verification,/m/01yrx,1\n")
    dataset = oid.OpenImagesDataset(tmp_path / "b.csv", images,
                                    oid.read_class_descriptions(OID / "class-descriptions-boxable.csv"),
                                    image_labels=tmp_path / "labels.csv")
    records = [dataset[i] for i in range(len(dataset))]
    assert [r.source_id for r in records] == ["0000048549557964", "00012"]
    assert [r.image_path.name for r in records] == ["0000048549557964.jpg", "00012.jpg"]
    assert records[1].image_classes == ("cat",)


def test_an_image_level_label_without_a_box_is_counted_not_dropped_silently(tmp_path):
    labels = tmp_path / "labels.csv"
    labels.write_text((OID / "image-labels.csv").read_text() + "gray,verification,/m/015qff,1\n")
    boxes = tmp_path / "boxes.csv"  # no traffic light box anywhere: the built map has no such class
    boxes.write_text("".join(line for line in (OID / "boxes.csv").read_text().splitlines(keepends=True)
                             if "/m/015qff" not in line))
    result = _convert(tmp_path, boxes, OID / "class-descriptions-boxable.csv", "--image-labels", labels)
    assert result.exit_code == 0, result.output
    assert "image-level label(s) 'traffic light' not in the label map" in result.output
    assert "warnings: 1" in result.output


def test_a_mid_listed_twice_with_two_names_is_refused(tmp_path):
    (tmp_path / "d.csv").write_text((OID / "class-descriptions-boxable.csv").read_text() + "/m/01yrx,kitten\n")
    assert_bad_input(_convert(tmp_path, OID / "boxes.csv", tmp_path / "d.csv"),
                     "/m/01yrx is listed twice, as 'cat' and as 'kitten'")
