"""Property-based tests: whatever the text, the only exception that escapes a parser is
odprep's own error; patched configs re-parse and change only the fields asked for."""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from odprep import prototext
from odprep.errors import OdprepError
from odprep.labelmap import LabelMap
from odprep.pipeline_config import ConfigPatch, patch_config

from .conftest import SAMPLE

FUZZ = settings(max_examples=int(os.environ.get("ODPREP_FUZZ_EXAMPLES", "150")), deadline=None,
                suppress_health_check=list(HealthCheck))
TEXT_FORMAT_ALPHABET = st.sampled_from(list("{}[]<>:;,#\"'\\\n\t abcdefgxyz_.-+0123456789eExX") +
                                       ["item", "id", "name", "display_name", "\u201c", "\u00e9", "\0"])
text_format = st.lists(TEXT_FORMAT_ALPHABET, max_size=80).map("".join) | st.text(max_size=60)


@FUZZ
@given(text_format)
def test_text_format_parser_raises_only_its_own_error(text):
    with contextlib.suppress(OdprepError):
        prototext.parse(text, "fuzz")


@FUZZ
@given(text_format)
def test_label_map_parser_raises_only_its_own_error(text):
    with contextlib.suppress(OdprepError):
        LabelMap.parse(text, "fuzz")


names = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"), min_size=1,
                max_size=12)


@FUZZ
@given(st.lists(names, min_size=1, max_size=8, unique=True))
def test_built_label_maps_round_trip_through_text(class_names):
    built = LabelMap.build(class_names)
    assert LabelMap.parse(built.to_pbtxt(), "x") == built


# --- configs: generated, patched, re-parsed ---------------------------------------------------

idents = st.sampled_from(["alpha", "beta", "gamma", "use_x", "depth"])
scalars = st.one_of(st.integers(-5, 500).map(str), st.sampled_from(["true", "false", "CONV", "1.5"]),
                    st.text("abc xyz/", max_size=8).map(lambda t: prototext.quote(t)))
comments = st.sampled_from(["", "  # note", " # x: 1 { }"])


@st.composite
def configs(draw) -> str:
    """A pipeline.config with the blocks patching touches, plus unrelated fields and comments."""
    def extra() -> str:
        return "".join(f"  {draw(idents)}: {draw(scalars)}{draw(comments)}\n"
                       for _ in range(draw(st.integers(0, 3))))

    one_line = draw(st.booleans())
    reader = ('tf_record_input_reader { input_path: "old" }' if one_line else
              'tf_record_input_reader {\n    input_path: "old"\n    input_path: "old2"\n  }')
    return (f"# generated\nmodel {{\n  ssd {{\n    num_classes: 90{draw(comments)}\n{extra()}  }}\n}}\n"
            f"train_config {{\n  batch_size: 8\n{extra()}}}\n"
            f"train_input_reader {{\n  label_map_path: \"a\"\n  {reader}\n{extra()}}}\n"
            f"eval_input_reader {{\n  {reader}\n}}\n{extra()}")


def scalar_fields(message: prototext.Message, prefix: str = "") -> list[tuple[str, str]]:
    out = []
    for fld in message.fields:
        name = f"{prefix}{fld.name}"
        if isinstance(fld.value, prototext.Message):
            out += scalar_fields(fld.value, name + ".")
        elif isinstance(fld.value, list):
            out += [(name, s.text) for s in fld.value]
        else:
            out.append((name, fld.value.text))
    return out


paths = st.text("abcxyz_/-.*", min_size=1, max_size=10)


@FUZZ
@given(configs(), st.lists(paths, min_size=1, max_size=3), st.integers(1, 999), st.integers(1, 64))
def test_patched_configs_reparse_and_change_only_the_asked_fields(text, inputs, num_classes, batch):
    patched = patch_config(text, ConfigPatch(train_inputs=tuple(inputs), num_classes=num_classes,
                                             batch_size=batch))
    before, after = scalar_fields(prototext.parse(text)), scalar_fields(prototext.parse(patched))
    asked = ("train_input_reader.tf_record_input_reader.input_path", "model.ssd.num_classes",
             "train_config.batch_size")
    assert [f for f in before if f[0] not in asked] == [f for f in after if f[0] not in asked]
    got = dict(after)
    assert got["model.ssd.num_classes"] == str(num_classes)
    assert got["train_config.batch_size"] == str(batch)
    assert [v for k, v in after if k == asked[0]] == inputs
    assert patched.count("#") == text.count("#")  # every comment survives


@FUZZ
@given(text_format)
def test_patching_any_text_raises_only_its_own_error(text):
    with contextlib.suppress(OdprepError):
        patch_config(text, ConfigPatch(num_classes=3, train_inputs=("x",)))


# --- annotation files -------------------------------------------------------------------------

xml_pieces = st.sampled_from(["<annotation>", "</annotation>", "<object>", "</object>", "<name>cat</name>",
                              "<bndbox>", "</bndbox>", "<xmin>1</xmin>", "<ymax>nan</ymax>", "<size>",
                              "</size>", "<width>1e400</width>", "<height>-3</height>", "<difficult>2",
                              "</difficult>", "<filename>../x.jpg</filename>", "&amp;", "&bogus;", "<",
                              "<![CDATA[x]]>", "<!-- c -->", "<?pi x?>", "\0", "\u00e9", "<xmax>5</xmax>"])


@FUZZ
@given(st.lists(xml_pieces, max_size=25).map("".join))
def test_voc_reader_raises_only_its_own_error(text):
    from odprep.readers.voc import parse_voc_file

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "a.xml"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        with contextlib.suppress(OdprepError):
            parse_voc_file(path, None)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 2**40) | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["id", "image_id", "category_id", "bbox", "file_name", "width", "height",
                         "segmentation", "counts", "size", "area", "iscrowd", "name"]), inner, max_size=5),
    max_leaves=25)


@st.composite
def coco_files(draw) -> dict:
    image = st.fixed_dictionaries({"id": st.integers(0, 3) | json_values,
                                   "file_name": st.sampled_from(["cat_dog.jpg", "gray.jpg", "", "../x"])
                                   | json_values, "width": st.just(96) | json_values,
                                   "height": st.just(64) | json_values})
    box = st.lists(st.floats(-10, 200) | json_values, min_size=4, max_size=4) | json_values
    segmentation = st.lists(st.lists(st.floats(allow_nan=True) | st.integers(-10, 100), max_size=9),
                            max_size=2) | st.fixed_dictionaries(
        {"size": st.just([64, 96]) | json_values, "counts": st.lists(st.integers(-2, 7000), max_size=4)
         | st.text("0123456789:;<=>?@ABCabc~", max_size=10) | json_values}) | json_values
    annotation = st.fixed_dictionaries({"id": st.integers(0, 5) | json_values, "image_id": st.integers(0, 3),
                                        "category_id": st.integers(0, 2) | json_values, "bbox": box,
                                        "segmentation": segmentation})
    category = st.fixed_dictionaries({"id": st.integers(0, 2) | json_values,
                                      "name": st.sampled_from(["cat", "dog", "_background_"]) | json_values})
    return {"images": draw(st.lists(image, max_size=3)), "annotations": draw(st.lists(annotation, max_size=4)),
            "categories": draw(st.lists(category, max_size=3))}


@FUZZ
@given(coco_files(), st.booleans())
def test_coco_reader_and_encoder_raise_only_their_own_error(data, skip):
    from odprep.example import EncodeOptions, encode_record
    from odprep.readers.coco import read_coco

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "i.json"
        path.write_text(json.dumps(data))
        skipped: list = []
        try:
            dataset = read_coco(path, SAMPLE / "images",
                                on_invalid=(lambda kind, error: skipped.append(error)) if skip else None)
            options = EncodeOptions(include_masks=True, skip_invalid=skip, rounding_px=1.0)
            for record in dataset.records():
                encode_record(record, dataset.label_map, options)
        except OdprepError:
            pass


csv_cells = st.sampled_from(["cat_dog.jpg", "gray.jpg", "", "nan", "1e400", "-inf", "12", "3.5", "cat",
                             '"q,uoted"', "\0", "x\ny", "96", "64", "  7 ", "\u00e9"])


@FUZZ
@given(st.lists(st.lists(csv_cells, min_size=1, max_size=9).map(",".join), max_size=6))
def test_csv_reader_raises_only_its_own_error(rows):
    from odprep.readers.csv import read_csv

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "a.csv"
        path.write_text("filename,width,height,class,xmin,ymin,xmax,ymax\n" + "\n".join(rows))
        try:
            for _ in read_csv(path, SAMPLE / "images"):
                pass
        except OdprepError:
            pass


@FUZZ
@given(st.binary(max_size=200), st.booleans())
def test_tfrecord_reader_raises_only_its_own_error(data, valid_prefix):
    from odprep.tfrecord import frame, read_records

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "x.record"
        path.write_bytes((frame(b"ok") if valid_prefix else b"") + data)
        try:
            for _ in read_records(path):
                pass
        except OdprepError:
            pass


@FUZZ
@given(st.binary(max_size=300))
def test_image_header_reader_raises_only_value_error(data):
    from odprep import images

    for candidate in (data, b"\x89PNG\r\n\x1a\n" + data, b"\xff\xd8\xff" + data):
        with contextlib.suppress(ValueError):
            images.header_size(candidate)


@pytest.mark.parametrize("counts", ["", "0", "~", "0" * 30, "PPPPPPPPPPPPPPPPPPPPPP1"])
def test_compressed_rle_decoder_never_overruns(counts):
    from odprep.masks import decode_counts

    try:
        values = decode_counts(counts)
    except ValueError:
        return
    assert all(isinstance(v, int) for v in values)


@FUZZ
@given(st.lists(st.lists(st.floats() | st.integers(-2**40, 2**40), max_size=10), max_size=3))
def test_masks_never_reach_pycocotools_with_bad_polygons(parts):
    from odprep.masks import segmentation_to_png

    try:
        png = segmentation_to_png(parts, 20, 30)
    except ValueError:
        return
    from PIL import Image

    with Image.open(io.BytesIO(png)) as mask:
        assert mask.size == (30, 20)
    assert all(math.isfinite(v) for part in parts for v in part)


yaml_pieces = st.sampled_from(["task:", "\n", "  ", "model:", "num_classes: 3", "- ", "[", "]", "{", "}", ":",
                               "'", '"', "&a", "*a", "!!python/object", "---", "...", "#c", "\t", "? ",
                               "input_path: x", "train_data:", "null", "~", "%YAML 1.1", "|", ">"])


@FUZZ
@given(st.lists(yaml_pieces, max_size=30).map("".join))
def test_experiment_yaml_patching_raises_only_its_own_error(text):
    from odprep.experiment_config import patch_experiment

    with contextlib.suppress(OdprepError):
        patch_experiment(text, ConfigPatch(num_classes=3, train_inputs=("x",), batch_size=2))


oid_cells = st.sampled_from(["cat_dog", "gray", "0000048549557964", "", "/m/01yrx", "/m/0bt9lr", "/m/zzz",
                             "0.1", "0.9", "1", "0", "-1", "2", "nan", "1e400", "-0.5", "abc", '"a,b"',
                             " gray ", "\u00e9", "x\ny"])


@FUZZ
@given(st.lists(st.lists(oid_cells, min_size=1, max_size=9).map(",".join), max_size=6), st.booleans())
def test_open_images_reader_raises_only_its_own_error(rows, with_labels):
    from odprep.readers.oid import OpenImagesDataset, read_class_descriptions

    with tempfile.TemporaryDirectory() as folder:
        boxes = Path(folder) / "b.csv"
        boxes.write_text("ImageID,LabelName,XMin,XMax,YMin,YMax,IsOccluded,IsGroupOf,IsDepiction\n" + "\n".join(rows))
        labels = Path(folder) / "l.csv"
        labels.write_text("ImageID,LabelName,Confidence\n" + "\n".join(rows))
        try:
            dataset = OpenImagesDataset(boxes, SAMPLE / "images",
                                        read_class_descriptions(SAMPLE / "oid" / "class-descriptions-boxable.csv"),
                                        image_labels=labels if with_labels else None)
            for position in range(len(dataset)):
                dataset[position]
        except OdprepError:
            pass


@FUZZ
@given(st.lists(st.text(max_size=20), max_size=4))
def test_key_value_options_raise_only_their_own_error(pairs):
    from odprep import storage
    from odprep.beam import BeamRunner

    for parse in (storage.set_options, lambda p: BeamRunner("DirectRunner", tuple(p)).pipeline_args()):
        try:
            parse(pairs)
        except OdprepError as error:
            assert "KEY=VALUE" in error.message
    storage._options.clear()
