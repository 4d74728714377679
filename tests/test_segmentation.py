"""seg2tfr: class indices survive exactly, and Model Garden's segmentation decoder reads them."""

from __future__ import annotations

import io
import json
import shutil

import numpy as np
import pytest
from PIL import Image

from odprep.segmask import voc_colormap

from .conftest import SAMPLE
from .helpers import assert_bad_input, leftovers, run_cli

SEG = SAMPLE / "seg"


def seg_rows(tf, path):
    from official.vision.dataloaders.segmentation_input import Decoder

    decoder = Decoder()
    return [{k: v.numpy() for k, v in decoder.decode(raw).items()}
            for raw in tf.data.TFRecordDataset([str(path)])]


def test_palette_masks_keep_indices_and_void_through_model_garden(tf, tmp_path):
    out = tmp_path / "seg.record"
    result = run_cli("seg2tfr", SEG / "JPEGImages", SEG / "SegmentationClass", "-o", out)
    assert result.exit_code == 0, result.output
    rows = seg_rows(tf, out)
    assert len(rows) == 3
    for raw, row in zip(tf.data.TFRecordDataset([str(out)]), rows, strict=True):
        example = tf.train.Example.FromString(raw.numpy())
        feature = example.features.feature
        name = feature["image/filename"].bytes_list.value[0].decode()
        source = np.array(Image.open(SEG / "SegmentationClass" / name.replace(".jpg", ".png")))
        decoded = tf.io.decode_png(row["image/segmentation/class/encoded"], channels=1).numpy()[..., 0]
        np.testing.assert_array_equal(decoded, source)
        assert 255 in decoded and 15 in decoded
        assert feature["image/segmentation/class/format"].bytes_list.value == [b"png"]
        assert feature["image/channels"].int64_list.value == [3]
        assert (row["image/height"], row["image/width"]) == source.shape


def test_list_file_selects_stems(tmp_path):
    out = tmp_path / "seg.record"
    result = run_cli("seg2tfr", SEG / "JPEGImages", SEG / "SegmentationClass", "-o", out, "--list",
                     SEG / "ImageSets" / "Segmentation" / "train.txt")
    assert result.exit_code == 0 and "images written: 2" in result.output


@pytest.fixture
def seg_case(tmp_path):
    images, masks = tmp_path / "img", tmp_path / "mask"
    shutil.copytree(SEG / "JPEGImages", images)
    shutil.copytree(SEG / "SegmentationClass", masks)
    (tmp_path / "out").mkdir()
    return images, masks, tmp_path / "out"


def test_rgb_masks_map_through_voc_colormap(tf, seg_case):
    images, masks, out_dir = seg_case
    path = masks / "2007_000000.png"
    indices = np.array(Image.open(path))
    Image.open(path).convert("RGB").save(path)  # the classic bug's input: an RGB colour mask
    result = run_cli("seg2tfr", images, masks, "-o", out_dir / "s.record")
    assert_bad_input(result, "2007_000000.png", "RGB colour mask", "--colormap voc")
    result = run_cli("seg2tfr", images, masks, "-o", out_dir / "s.record", "--colormap", "voc")
    assert result.exit_code == 0, result.output
    row = seg_rows(tf, out_dir / "s.record")[0]
    decoded = tf.io.decode_png(row["image/segmentation/class/encoded"]).numpy()[..., 0]
    np.testing.assert_array_equal(decoded, indices)


def test_unknown_colour_is_reported_with_its_count(seg_case, tmp_path):
    images, masks, out_dir = seg_case
    path = masks / "2007_000000.png"
    rgb = np.array(Image.open(path).convert("RGB"))
    rgb[5:7, 5:10] = (1, 2, 3)
    Image.fromarray(rgb).save(path)
    colormap = tmp_path / "cmap.json"
    colormap.write_text(json.dumps({f"{r},{g},{b}": i for (r, g, b), i in voc_colormap()}))
    result = run_cli("seg2tfr", images, masks, "-o", out_dir / "s.record", "--colormap", colormap)
    assert_bad_input(result, "(1,2,3) x 10 px")
    assert leftovers(out_dir) == []


def test_16_bit_masks_converted_only_when_exact(tf, seg_case):
    images, masks, out_dir = seg_case
    path = masks / "2007_000001.png"
    indices = np.array(Image.open(path)).astype(np.uint16)
    Image.fromarray(indices).save(path)  # I;16, values 0..255: exact
    result = run_cli("seg2tfr", images, masks, "-o", out_dir / "s.record")
    assert result.exit_code == 0 and "converted to 8 bits exactly" in result.output
    indices[0, 0] = 300
    Image.fromarray(indices).save(path)
    result = run_cli("seg2tfr", images, masks, "-o", out_dir / "s.record")
    assert_bad_input(result, "2007_000001.png", "values 0..300", "8-bit")


def test_float_masks_with_fractions_are_rejected(seg_case):
    images, masks, out_dir = seg_case
    Image.fromarray(np.full((48, 64), 1.5, dtype=np.float32)).save(masks / "2007_000000.tiff")
    (masks / "2007_000000.png").unlink()
    result = run_cli("seg2tfr", images, masks, "-o", out_dir / "s.record")
    assert_bad_input(result, "non-integer values")


def test_size_mismatch_rejected_by_name_leaving_no_output(seg_case):
    images, masks, out_dir = seg_case
    Image.new("P", (10, 10)).save(masks / "2007_000002.png")
    result = run_cli("seg2tfr", images, masks, "-o", out_dir / "s.record", "--num-shards", "2")
    assert_bad_input(result, "2007_000002.png", "10x10", "48x64")
    assert leftovers(out_dir) == []


def test_unpaired_files(seg_case):
    images, masks, out_dir = seg_case
    (masks / "2007_000001.png").unlink()
    shutil.copy(masks / "2007_000000.png", masks / "orphan.png")
    result = run_cli("seg2tfr", images, masks, "-o", out_dir / "s.record")
    assert_bad_input(result, "orphan.png", "mask without an image")
    result = run_cli("seg2tfr", images, masks, "-o", out_dir / "s.record", "--skip-unpaired")
    assert result.exit_code == 0, result.output
    assert "skipped images: 2" in result.output and "2007_000001: no mask" in result.output


def test_validate_checks_segmentation_masks(tf, seg_case):
    images, masks, out_dir = seg_case
    out = out_dir / "s.record"
    run_cli("seg2tfr", images, masks, "-o", out)
    assert run_cli("validate", out, "--decode", "--strict").exit_code == 0
    example = tf.train.Example.FromString(next(iter(tf.data.TFRecordDataset([str(out)]))).numpy())
    small = io.BytesIO()
    Image.new("L", (10, 10)).save(small, format="PNG")
    example.features.feature["image/segmentation/class/encoded"].bytes_list.value[0] = small.getvalue()
    bad = out_dir / "bad.record"
    with tf.io.TFRecordWriter(str(bad)) as writer:
        writer.write(example.SerializeToString())
    result = run_cli("validate", bad)
    assert result.exit_code == 1 and "segmentation mask is 10x10" in result.output
