"""Colour modes as the trainers decode them (tf.io.decode_image with 3 channels, what the
OD API's and Model Garden's decoders call): every image must come out 3-channel uint8 in
the colours the annotator saw. Transparency is the case where they differ."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from .conftest import parse_with_od_api_spec
from .helpers import VOC_TEMPLATE, assert_bad_input, run_cli, voc_object

COLOUR = (200, 50, 30)


def _encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _sample(mode: str) -> tuple[bytes, str, tuple[int, int, int]]:
    """(bytes, file name, the colour a viewer shows at the top-left pixel)."""
    base = Image.new("RGB", (32, 24), COLOUR)
    grey = base.convert("L").getpixel((0, 0))
    if mode == "cmyk-jpeg":
        return _encode(base.convert("CMYK"), "JPEG", quality=95), "a.jpg", COLOUR
    if mode == "grey-jpeg":
        return _encode(base.convert("L"), "JPEG", quality=95), "a.jpg", (grey,) * 3
    if mode == "png16":
        pixels = np.full((24, 32), 40000, dtype=np.uint16)
        return _encode(Image.fromarray(pixels), "PNG"), "a.png", (round(40000 / 257),) * 3
    if mode == "palette":
        return _encode(base.convert("P"), "PNG"), "a.png", base.convert("P").convert("RGB").getpixel((0, 0))
    if mode == "rgba-opaque":
        return _encode(base.convert("RGBA"), "PNG"), "a.png", COLOUR
    raise ValueError(mode)


def _palette_image() -> Image.Image:
    image = Image.new("P", (32, 24), 0)
    image.putpalette(list(COLOUR) + [0, 0, 0] * 255)
    return image


def _convert(tmp_path, data: bytes, name: str, *extra):
    ann, imgs = tmp_path / "ann", tmp_path / "imgs"
    ann.mkdir(exist_ok=True)
    imgs.mkdir(exist_ok=True)
    (imgs / name).write_bytes(data)
    (ann / "a.xml").write_text(VOC_TEMPLATE.format(filename=name, width=32, height=24,
                                                   objects=voc_object("thing", (2, 2, 20, 20))))
    return run_cli("voc2tfr", ann, "--images-dir", imgs, "-o", tmp_path / "out" / "x.record", *extra)


def _decoded(tf, tmp_path) -> np.ndarray:
    row = parse_with_od_api_spec(tf, [tmp_path / "out" / "x.record"])[0]
    image = tf.io.decode_image(row["image/encoded"], channels=3, expand_animations=False).numpy()
    assert image.dtype == np.uint8 and image.shape == (24, 32, 3)
    return image


@pytest.mark.parametrize("mode", ["cmyk-jpeg", "grey-jpeg", "png16", "palette", "rgba-opaque"])
def test_modes_the_decoders_show_as_the_viewer_does_pass_unchanged(tf, tmp_path, mode):
    data, name, shown = _sample(mode)
    result = _convert(tmp_path, data, name)
    assert result.exit_code == 0, result.output
    row = parse_with_od_api_spec(tf, [tmp_path / "out" / "x.record"])[0]
    assert row["image/encoded"] == data  # untouched
    assert np.abs(_decoded(tf, tmp_path)[0, 0].astype(int) - shown).max() <= 3


@pytest.mark.parametrize("make", [
    lambda: Image.new("RGBA", (32, 24), COLOUR + (0,)),  # transparent, red hidden underneath
    lambda: Image.new("LA", (32, 24), (90, 0)),
    lambda: _palette_image(),  # palette, its one colour transparent
])
def test_transparency_is_refused_or_flattened_as_a_viewer_shows_it(tf, tmp_path, make):
    image = make()
    options = {"transparency": 0} if image.mode == "P" else {}
    data = _encode(image, "PNG", **options)
    assert_bad_input(_convert(tmp_path, data, "a.png"), "a.png", "transparent pixel", "--reencode")
    assert not (tmp_path / "out").exists()
    result = _convert(tmp_path, data, "a.png", "--reencode")
    assert result.exit_code == 0 and "flattened on white" in result.output, result.output
    assert _decoded(tf, tmp_path)[0, 0].tolist() == [255, 255, 255]


def test_validate_decode_reports_transparency_written_by_other_tools(tmp_path):
    from .helpers import framed_example

    data = _encode(Image.new("RGBA", (32, 24), COLOUR + (0,)), "PNG")
    (tmp_path / "x.record").write_bytes(framed_example("a.png", [("thing", 0.1, 0.5, 0.1, 0.5)], image=data,
                                                       size=(32, 24)))
    result = run_cli("validate", tmp_path / "x.record", "--decode")
    assert "image-transparent" in result.output and "768 transparent pixel(s)" in result.output
