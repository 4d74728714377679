"""Anchors that miss the boxes: the generators' geometry, the best-IoU shortcut against brute
force, `check`'s finding with the problem and without it, and `patch-config --fit-anchors`.

The conformance stage compares the anchors with the OD API's and Model Garden's own
generators; here they are compared with hand-worked values and with every anchor."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from odprep import anchorfit
from odprep.anchors import Anchors, Generator, ModelBoxes, best_iou, boxes
from odprep.checks.facts import load_facts

from .helpers import framed_example, run_cli
from .test_checks import _photo, checked

MULTISCALE = Generator("multiscale_anchor_generator", {"min_level": 3, "max_level": 7, "anchor_scale": 4.0,
                                                       "aspect_ratios": [1.0, 2.0, 0.5], "scales_per_octave": 2})


def _small_objects(count: int = 12, size=(640, 640), side: int = 12) -> list[bytes]:
    """Images of ``size`` with boxes ``side`` pixels square, spread over the picture."""
    records = []
    for i in range(count):
        objects = []
        for j in range(4):
            x, y = (0.1 + 0.2 * j + 0.01 * i) * size[0], (0.2 + 0.15 * j) * size[1]
            objects.append(("cat", x / size[0], (x + side) / size[0], y / size[1], (y + side) / size[1]))
        records.append(framed_example(f"small_{i}.jpg", objects, image=_photo(i, size), size=size))
    return records


def _ordinary(count: int = 6) -> list[bytes]:
    cat, dog = ("cat", 0.1, 0.4, 0.2, 0.8), ("dog", 0.5, 0.9, 0.1, 0.9)
    return [framed_example(f"pets_{i}.jpg", [cat, dog], image=_photo(100 + i)) for i in range(count)]


def _brute_force(generator: Generator, found: ModelBoxes, canvas: tuple[float, float]) -> np.ndarray:
    anchors = boxes(generator.levels(*canvas))
    y0, x0 = found.cy - found.h / 2, found.cx - found.w / 2
    y1, x1 = found.cy + found.h / 2, found.cx + found.w / 2
    ih = np.clip(np.minimum(y1[:, None], anchors[None, :, 2]) - np.maximum(y0[:, None], anchors[None, :, 0]), 0, None)
    iw = np.clip(np.minimum(x1[:, None], anchors[None, :, 3]) - np.maximum(x0[:, None], anchors[None, :, 1]), 0, None)
    inter = ih * iw
    area = (anchors[:, 2] - anchors[:, 0]) * (anchors[:, 3] - anchors[:, 1])
    return (inter / (found.h[:, None] * found.w[:, None] + area[None, :] - inter)).max(axis=1)


def test_multiscale_anchors_as_the_od_api_lays_them_out():
    levels = MULTISCALE.levels(320, 320)
    assert [level.grid for level in levels] == [(40, 40), (20, 20), (10, 10), (5, 5), (3, 3)]
    # 320 divides by 8..64, so centres start at stride/2; not by 128, so level 7 starts at 0.
    assert [level.offset for level in levels] == [(4, 4), (8, 8), (16, 16), (32, 32), (0, 0)]
    first = boxes(levels)[:6]
    side, big = 32.0, 32.0 * 2**0.5  # anchor_scale 4 x stride 8; the second scale of the octave
    assert np.allclose(first[0], [4 - side / 2, 4 - side / 2, 4 + side / 2, 4 + side / 2])
    assert np.allclose(first[1], [4 - big / 2, 4 - big / 2, 4 + big / 2, 4 + big / 2])
    wide = (side / 2**0.5, side * 2**0.5)  # aspect ratio 2: width / height
    assert np.allclose(first[2, 2] - first[2, 0], wide[0]) and np.allclose(first[2, 3] - first[2, 1], wide[1])
    assert len(boxes(levels)) == 6 * (40**2 + 20**2 + 10**2 + 5**2 + 3**2)


def test_model_garden_anchors_fill_the_image_with_centres_at_half_a_stride():
    garden = Generator("task.model.anchor", {"min_level": 3, "max_level": 4, "num_scales": 2,
                                            "aspect_ratios": [0.5, 1.0, 2.0], "anchor_size": 4.0})
    levels = garden.levels(100, 100)
    assert [level.grid for level in levels] == [(13, 13), (7, 7)]
    assert np.isclose(levels[0].stride[0], 100 / 13) and np.isclose(levels[0].offset[0], 50 / 13)
    # scale outer, aspect ratio inner: the first anchor is scale 1, aspect 0.5 (tall)
    height, width = levels[0].shapes[0]
    assert np.isclose(height, 32 * 2**0.5) and np.isclose(width, 32 / 2**0.5)


def test_ssd_anchor_generator_layers_follow_create_ssd_anchors():
    ssd = Generator("ssd_anchor_generator", {
        "num_layers": 6, "min_scale": 0.2, "max_scale": 0.95, "scales": [], "aspect_ratios": [1.0, 2.0, 0.5],
        "interpolated_scale_aspect_ratio": 1.0, "base_anchor_height": 1.0, "base_anchor_width": 1.0,
        "height_stride": [], "width_stride": [], "height_offset": [], "width_offset": [],
        "reduce_boxes_in_lowest_layer": True})
    levels = ssd.levels(300, 300)
    assert [level.grid[0] for level in levels] == [19, 10, 5, 3, 2, 1]
    assert [len(level.shapes) for level in levels] == [3, 4, 4, 4, 4, 4]
    assert np.allclose(levels[0].shapes[0], (30, 30))  # scale 0.1 of the 300 px side
    assert np.allclose(levels[-1].shapes[0], (285, 285))  # max_scale 0.95


generators = st.one_of(
    st.builds(lambda low, span, scale, ratios, octave: Generator("multiscale_anchor_generator", {
        "min_level": low, "max_level": low + span, "anchor_scale": scale, "aspect_ratios": ratios,
        "scales_per_octave": octave}), st.integers(2, 4), st.integers(0, 2), st.floats(0.5, 8),
        st.lists(st.floats(0.2, 5), min_size=1, max_size=3), st.integers(1, 3)),
    st.builds(lambda scales, ratios, stride, offset: Generator("grid_anchor_generator", {
        "scales": scales, "aspect_ratios": ratios, "height": 64, "width": 48, "height_stride": stride,
        "width_stride": stride, "height_offset": offset, "width_offset": offset}),
        st.lists(st.floats(0.1, 3), min_size=1, max_size=3), st.lists(st.floats(0.2, 5), min_size=1, max_size=3),
        st.integers(4, 40), st.integers(0, 10)),
    st.builds(lambda low, span, scales, size: Generator("task.model.anchor", {
        "min_level": low, "max_level": low + span, "num_scales": scales, "aspect_ratios": [0.5, 1.0, 2.0],
        "anchor_size": size}), st.integers(2, 4), st.integers(0, 2), st.integers(1, 3), st.floats(1, 8)))


@settings(max_examples=60, deadline=None)
@given(generators, st.integers(0, 2**31 - 1), st.sampled_from([(96, 96), (100, 150), (57, 203)]))
def test_the_nearest_centre_gives_the_same_best_iou_as_every_anchor(generator, seed, canvas):
    rng = np.random.default_rng(seed)
    n = 40
    h, w = rng.uniform(1, canvas[0], n), rng.uniform(1, canvas[1], n)
    found = ModelBoxes(rng.uniform(0, canvas[0], n), rng.uniform(0, canvas[1], n), h, w,
                       np.full(n, float(canvas[0])), np.full(n, float(canvas[1])))
    assert np.allclose(best_iou(generator, found), _brute_force(generator, found, canvas), atol=1e-9)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**31 - 1), st.floats(2, 200))
def test_a_fit_never_lowers_the_best_possible_recall_nor_the_anchors_per_location(seed, side):
    rng = np.random.default_rng(seed)
    n = 60
    h, w = side * rng.uniform(0.5, 2, n), side * rng.uniform(0.5, 2, n)
    found = ModelBoxes(rng.uniform(0, 320, n), rng.uniform(0, 320, n), h, w, np.full(n, 320.0), np.full(n, 320.0))
    anchors = Anchors(MULTISCALE, "ssd.anchor_generator.multiscale_anchor_generator", 0.5, "test", True)
    result = anchorfit.fit(anchors, found)
    assert result.after >= result.before
    assert result.generator.per_location() == MULTISCALE.per_location()
    assert set(result.changes) <= {"anchor_scale", "aspect_ratios"}


def test_check_warns_when_small_objects_reach_no_anchor_and_fit_anchors_fixes_it(tmp_path):
    """40 px objects in 640 px images are 20 px at SSD's 320: under its smallest anchor (32 px)."""
    code, output, found = checked(tmp_path, _small_objects(side=40), _small_objects(3, side=40), ("cat",))
    assert code == 0 and "anchors-miss-boxes" in found, output
    finding = found["anchors-miss-boxes"]
    message = finding["examples"][0]
    assert "48 of 48 train boxes (100.0%) reach no anchor at IoU 0.5" in message
    assert "small boxes 0.0% (48)" in message and "small_" in message and "20x20 px in " in message and "Worst boxes: " in message
    assert "--fit-anchors (raises BPR to 100.0% on these records" in finding["fix"]
    fitted = run_cli("patch-config", tmp_path / "p.config", "--fit-anchors", "-o", tmp_path / "fitted.config")
    assert fitted.exit_code == 0, fitted.output
    assert "best possible recall 0.0% -> " in fitted.output
    after = float(fitted.output.split("best possible recall 0.0% -> ")[1].split("%")[0])
    assert after >= 98.0
    changed = [line for line in fitted.output.splitlines() if line.startswith("  line ")]
    assert len(changed) == 1 and "anchor_scale:" in changed[0]  # square boxes: the ratios can stay
    original = load_facts(tmp_path / "p.config").anchors.generator
    new = load_facts(tmp_path / "fitted.config").anchors.generator
    assert new.params["anchor_scale"] < original.params["anchor_scale"]
    assert new.per_location() == original.per_location()
    rechecked = run_cli("check", tmp_path / "fitted.config", "--json")
    assert "anchors-miss-boxes" not in rechecked.output


def test_long_thin_boxes_get_aspect_ratios_of_their_own(tmp_path):
    """Boxes 8:1 wide (poles lying down, say) are far from ratios 0.5..2 at any size."""
    records = [framed_example(f"rail_{i}.jpg", [("cat", 0.1, 0.9, 0.2 + 0.05 * i, 0.3 + 0.05 * i)],
                              image=_photo(200 + i, (320, 320)), size=(320, 320)) for i in range(8)]
    checked(tmp_path, records, records[:2], ("cat",))
    fitted = run_cli("patch-config", tmp_path / "p.config", "--fit-anchors", "-o", tmp_path / "fitted.config")
    assert fitted.exit_code == 0 and "aspect_ratios: [1, 2, 0.5] -> " in fitted.output, fitted.output
    ratios = load_facts(tmp_path / "fitted.config").anchors.generator.params["aspect_ratios"]
    assert len(ratios) == 3 and max(ratios) > 4


def test_ordinary_boxes_reach_the_anchors_and_check_stays_quiet(tmp_path):
    code, output, found = checked(tmp_path, _ordinary(), _ordinary(2))
    assert "anchors-miss-boxes" not in found, output
    fitted = run_cli("patch-config", tmp_path / "p.config", "--fit-anchors", "-o", tmp_path / "fitted.config")
    assert fitted.exit_code == 0 and "anchors kept: best possible recall 100.0%" in fitted.output
    assert (tmp_path / "fitted.config").read_text() == (tmp_path / "p.config").read_text()


@pytest.mark.parametrize("template", ["faster_rcnn_resnet50_v1_640", "retinanet_resnet18_fpn_256",
                                      "maskrcnn_resnet18_fpn_256", "efficientdet_d0_512"])
def test_every_anchor_based_template_is_checked_and_fitted(tmp_path, template):
    suffix = ".yaml" if template.endswith("_256") else ".config"
    records = tmp_path / "train.record"
    records.write_bytes(b"".join(_small_objects(side=20)))
    made = run_cli("new-config", "--template", template, "--train-input", records, "--eval-input", records,
                   "--num-classes", "2", "--no-checkpoint", "--no-masks", "-o", tmp_path / f"p{suffix}")
    assert made.exit_code == 0, made.output
    assert "anchors-miss-boxes" in run_cli("check", tmp_path / f"p{suffix}", "--json").output
    fitted = run_cli("patch-config", tmp_path / f"p{suffix}", "--fit-anchors", "-o", tmp_path / f"fitted{suffix}")
    assert fitted.exit_code == 0, fitted.output
    before, after = (float(v.rstrip("%")) for v in
                     fitted.output.split("best possible recall ")[1].split(" on ")[0].split(" -> "))
    assert after > before
    original = load_facts(tmp_path / f"p{suffix}").anchors.generator
    new = load_facts(tmp_path / f"fitted{suffix}").anchors.generator
    assert new != original and new.per_location() == original.per_location()


def test_fit_anchors_refuses_a_model_without_anchors_and_records_without_boxes(tmp_path):
    _, _, _ = checked(tmp_path, _ordinary(), _ordinary(2), ("cat", "dog"), "centernet_resnet50_v1_fpn_512")
    refused = run_cli("patch-config", tmp_path / "p.config", "--fit-anchors", "-o", tmp_path / "x.config")
    assert refused.exit_code == 2 and "has no anchor generator" in refused.output
    assert not (tmp_path / "x.config").exists()
    empty = tmp_path / "empty.record"
    empty.write_bytes(framed_example("negative.jpg", []))
    refused = run_cli("patch-config", "--template", "ssd_mobilenet_v2_fpnlite_320", "--train-input", empty,
                      "--fit-anchors", "-o", tmp_path / "y.config")
    assert refused.exit_code == 2 and "hold no box" in refused.output and not (tmp_path / "y.config").exists()
    missing = run_cli("patch-config", "--template", "ssd_mobilenet_v2_fpnlite_320", "--train-input",
                      tmp_path / "nothing-*.record", "--fit-anchors", "-o", tmp_path / "z.config")
    assert missing.exit_code == 2 and "matches no file" in missing.output


FIELD_TEXTS = st.sampled_from(["0", "-1", "1e400", "nan", "inf", "3.5", "abc", "0x10", "1e-300", "99999",
                               "2", "4.0", "0.5", "[1.0, 0.0]", "[]", "[2.0, -3.0]", '"x"', "true", "13", "1"])
MULTISCALE_FIELDS = ("min_level", "max_level", "anchor_scale", "aspect_ratios", "scales_per_octave")
GRID_FIELDS = ("scales", "aspect_ratios", "height_stride", "width_stride", "height", "width")


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(["ssd_mobilenet_v2_fpnlite_320", "faster_rcnn_resnet50_v1_640"]),
       st.dictionaries(st.sampled_from(sorted(set(MULTISCALE_FIELDS + GRID_FIELDS))), FIELD_TEXTS, max_size=4))
def test_any_anchor_fields_are_named_or_measured_never_a_crash(template, fields):
    """Hostile values in the generator's fields: either a problem naming the field, or a
    generator whose coverage is a number in [0, 1]."""
    from odprep.anchors import ModelBoxes, best_iou
    from odprep.checks.facts import facts_from_text
    from odprep.errors import OdprepError
    from odprep.pipeline_config import template_text

    text = template_text(template)
    block = "multiscale_anchor_generator {" if template.startswith("ssd") else "grid_anchor_generator {"
    for name, value in fields.items():  # written first in the block: the value the parser reads
        text = text.replace(block, f"{block}\n        {name}: {value}", 1)
    try:
        anchors = facts_from_text(text, "p.config").anchors
    except OdprepError:
        return  # a config the text-format parser refuses (e.g. a list where a scalar goes): one line
    if anchors.problem():
        assert isinstance(anchors.problem(), str)
        return
    n = 8
    found = ModelBoxes(np.full(n, 100.0), np.full(n, 100.0), np.linspace(1, 300, n), np.linspace(300, 1, n),
                       np.full(n, 320.0), np.full(n, 320.0))
    best = best_iou(anchors.generator, found)
    assert np.all((best >= 0) & (best <= 1 + 1e-9)), best


def test_an_unusable_generator_is_an_error_naming_the_field(tmp_path):
    checked(tmp_path, _ordinary(), _ordinary(2))
    config = tmp_path / "p.config"
    config.write_text(config.read_text().replace("scales_per_octave: 2", "scales_per_octave: 0"))
    result = run_cli("check", config, "--json")
    import json

    found = {f["kind"]: f for f in json.loads(result.output)["findings"]}
    assert result.exit_code == 1 and "scales_per_octave is 0" in found["anchor-generator-invalid"]["examples"][0]
    refused = run_cli("patch-config", config, "--fit-anchors", "-o", tmp_path / "x.config")
    assert refused.exit_code == 2 and "scales_per_octave is 0" in refused.output
