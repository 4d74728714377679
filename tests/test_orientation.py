"""EXIF orientation: phone photos stored sideways, annotated upright (or as stored), read
back through TensorFlow's decoder, which ignores the tag: the pixels under each box
must be the object's."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from odprep.orientation import exif_orientation, frame, jpeg_quality

from .conftest import parse_with_od_api_spec
from .helpers import VOC_TEMPLATE, assert_bad_input, run_cli, voc_object

UPRIGHT = (60, 40)  # width, height as the labelling tool showed it
SQUARE = (10, 5, 25, 20)  # xmin, ymin, xmax, ymax of the red square, upright


def upright_picture() -> Image.Image:
    picture = Image.new("RGB", UPRIGHT, (40, 120, 200))
    picture.paste((230, 20, 20), SQUARE)
    return picture


def phone_photo(tag: int = 6) -> bytes:
    """Stored so that applying ``tag`` shows the upright picture (6: stored turned left)."""
    from PIL import ImageOps

    inverse = {6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270, 3: Image.Transpose.ROTATE_180}[tag]
    stored = upright_picture().transpose(inverse)
    exif = Image.Exif()
    exif[274] = tag
    buffer = io.BytesIO()
    stored.save(buffer, format="JPEG", quality=92, exif=exif.tobytes())
    data = buffer.getvalue()
    with Image.open(io.BytesIO(data)) as check:  # the fixture shows upright when the tag is applied
        assert ImageOps.exif_transpose(check).size == UPRIGHT
    return data


def _voc(tmp_path: Path, size: tuple[int, int], box, data: bytes) -> tuple[Path, Path]:
    ann, imgs = tmp_path / "ann", tmp_path / "imgs"
    ann.mkdir()
    imgs.mkdir()
    (imgs / "phone.jpg").write_bytes(data)
    (ann / "phone.xml").write_text(VOC_TEMPLATE.format(filename="phone.jpg", width=size[0], height=size[1],
                                                       objects=voc_object("square", box)))
    return ann, imgs


def _colour_under_box(tf, record: Path) -> np.ndarray:
    row = parse_with_od_api_spec(tf, [record])[0]
    image = tf.io.decode_jpeg(row["image/encoded"], channels=3).numpy()  # as the trainer decodes it
    height, width = image.shape[:2]
    assert (row["image/width"], row["image/height"]) == (width, height)
    x0, x1 = row["image/object/bbox/xmin"][0] * width, row["image/object/bbox/xmax"][0] * width
    y0, y1 = row["image/object/bbox/ymin"][0] * height, row["image/object/bbox/ymax"][0] * height
    inside = image[int(y0) + 2:int(y1) - 2, int(x0) + 2:int(x1) - 2]
    return inside.reshape(-1, 3).mean(axis=0)


def _is_red(colour: np.ndarray) -> bool:
    return colour[0] > 180 and colour[1] < 80 and colour[2] < 80


def test_annotated_upright_is_refused_without_auto_orient(tmp_path):
    ann, imgs = _voc(tmp_path, UPRIGHT, SQUARE, phone_photo(6))
    result = run_cli("voc2tfr", ann, "--images-dir", imgs, "-o", tmp_path / "out" / "x.record")
    assert_bad_input(result, "phone.jpg", "EXIF orientation 6", "--auto-orient")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("tag", [6, 8])
def test_auto_orient_puts_the_boxes_on_the_right_pixels(tf, tmp_path, tag):
    ann, imgs = _voc(tmp_path, UPRIGHT, SQUARE, phone_photo(tag))
    out = tmp_path / "out" / "x.record"
    result = run_cli("voc2tfr", ann, "--images-dir", imgs, "-o", out, "--auto-orient")
    assert result.exit_code == 0, result.output
    assert f"EXIF orientation {tag}: re-oriented" in result.output
    assert _is_red(_colour_under_box(tf, out))
    row = parse_with_od_api_spec(tf, [out])[0]
    assert exif_orientation(row["image/encoded"]) == 1  # the tag is gone with the rotation baked in


def test_annotated_as_stored_is_written_as_stored(tf, tmp_path):
    # the same square, in the stored (sideways) frame: 40x60, box turned with the pixels
    x0, y0, x1, y1 = SQUARE
    stored_box = (y0, UPRIGHT[0] - x1, y1, UPRIGHT[0] - x0)
    ann, imgs = _voc(tmp_path, (UPRIGHT[1], UPRIGHT[0]), stored_box, phone_photo(6))
    out = tmp_path / "out" / "x.record"
    result = run_cli("voc2tfr", ann, "--images-dir", imgs, "-o", out)
    assert result.exit_code == 0, result.output
    assert "annotated as stored: left as stored" in result.output
    assert _is_red(_colour_under_box(tf, out))


def test_an_undecidable_frame_is_a_counted_warning(tmp_path):
    data = phone_photo(3)  # a half turn keeps the size: the declared size cannot tell
    ann, imgs = _voc(tmp_path, UPRIGHT, SQUARE, data)
    result = run_cli("voc2tfr", ann, "--images-dir", imgs, "-o", tmp_path / "out" / "x.record")
    assert result.exit_code == 0, result.output
    assert "warnings: 1" in result.output and "--auto-orient" in result.output and "--no-auto-orient" in result.output


def test_validate_reports_the_tag_and_a_transposed_size(tmp_path):
    ann, imgs = _voc(tmp_path, (UPRIGHT[1], UPRIGHT[0]), (5, 10, 20, 25), phone_photo(6))
    out = tmp_path / "out" / "x.record"
    assert run_cli("voc2tfr", ann, "--images-dir", imgs, "-o", out).exit_code == 0
    result = run_cli("validate", out)
    assert "exif-orientation" in result.output and result.exit_code == 0


@pytest.mark.parametrize("tag, declared, stored, expected", [
    (1, (60, 40), (60, 40), "stored"), (6, (60, 40), (40, 60), "upright"), (6, (40, 60), (40, 60), "stored"),
    (6, (0, 0), (40, 60), "unknown"), (6, (50, 50), (50, 50), "unknown"), (3, (60, 40), (60, 40), "unknown"),
])
def test_which_frame_the_size_says(tag, declared, stored, expected):
    assert frame(tag, declared, stored) == expected


@pytest.mark.parametrize("quality", [60, 75, 90])
def test_the_source_quality_is_estimated(quality):
    buffer = io.BytesIO()
    upright_picture().save(buffer, format="JPEG", quality=quality)
    with Image.open(io.BytesIO(buffer.getvalue())) as image:
        assert abs(jpeg_quality(image) - quality) <= 3
