"""Where each trainer's config writes its anchors and its matcher, read into
``anchors.Anchors`` with the proto's (or the experiment's) defaults filled in."""

from __future__ import annotations

import math

from odprep.anchors import Anchors, Generator
from odprep.pipeline_config import proto_int
from odprep.prototext import Message, Scalar

# The OD API's proto defaults (anchor_generator protos, argmax_matcher.proto).
OD_API_DEFAULTS = {
    "multiscale_anchor_generator": {"min_level": 3, "max_level": 7, "anchor_scale": 4.0,
                                    "aspect_ratios": [], "scales_per_octave": 2},
    "grid_anchor_generator": {"scales": [], "aspect_ratios": [], "height": 256, "width": 256,
                              "height_stride": 16, "width_stride": 16, "height_offset": 0, "width_offset": 0},
    "ssd_anchor_generator": {"num_layers": 6, "min_scale": 0.2, "max_scale": 0.95, "scales": [],
                             "aspect_ratios": [], "interpolated_scale_aspect_ratio": 1.0,
                             "base_anchor_height": 1.0, "base_anchor_width": 1.0, "height_stride": [],
                             "width_stride": [], "height_offset": [], "width_offset": [],
                             "reduce_boxes_in_lowest_layer": True},
    "flexible_grid_anchor_generator": {"anchor_grid": []},
}
FLEXIBLE_GRID = {"base_sizes": [], "aspect_ratios": [], "height_stride": 0, "width_stride": 0,
                 "height_offset": 0, "width_offset": 0}
# Model Garden: the families' Anchor defaults and their matchers' positive thresholds.
GARDEN_DEFAULTS = {"retinanet": {"num_scales": 3, "aspect_ratios": [0.5, 1.0, 2.0], "anchor_size": 4.0},
                   "maskrcnn": {"num_scales": 1, "aspect_ratios": [0.5, 1.0, 2.0], "anchor_size": 8.0}}
GARDEN_LEVELS = {"retinanet": (3, 7), "maskrcnn": (2, 6)}
# Every matcher here gives each box its best anchor even below the positive threshold (a
# forced match), so a box is missed when its best anchor is one the matcher otherwise calls
# background: below the unmatched threshold.
GARDEN_MATCH = {"retinanet": ("task.train_data.parser.unmatched_threshold", 0.5),
                "maskrcnn": ("task.train_data.parser.rpn_unmatched_threshold", 0.3)}
FASTER_RCNN_RPN_UNMATCHED = 0.3  # the OD API's 'FasterRCNN' proposal target assigner (0.7 / 0.3, forced)


def _numbers(block: Message, name: str, bad: list[str]) -> list[float]:
    values: list[float] = []
    for found in block.all(name):
        items = found.value if isinstance(found.value, list) else [found.value]
        for item in items:
            number = _number(item.text) if isinstance(item, Scalar) else None
            if number is None:
                bad.append(f"{name} holds {getattr(item, 'text', '{...}')[:40]!r}, not a finite number")
                continue
            values.append(number)
    return values


def _number(text: str) -> float | None:
    try:
        value = float(text.rstrip("fF"))
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _fill(block: Message, defaults: dict, bad: list[str]) -> dict:
    """The block's fields with the proto's defaults; fields that are not numbers of their
    kind (an integer field holding 3.5, a float holding inf) are listed in ``bad``."""
    params = {}
    for name, default in defaults.items():
        if isinstance(default, list):  # a repeated field
            params[name] = _numbers(block, name, bad) or list(default)
            continue
        text = block.scalar(name)
        if text is None:
            params[name] = default
        elif isinstance(default, bool):
            params[name] = text == "true"
        else:
            value = proto_int(text) if isinstance(default, int) else _number(text)
            if value is None:
                bad.append(f"{name} is {text[:40]!r}, not {'an integer' if isinstance(default, int) else 'a finite number'}")
            params[name] = default if value is None else value
    return params


def generator_block(arch: Message, model: str | None) -> tuple[str, Message, str] | None:
    """(kind, block, where it is written) of a model's anchor generator."""
    holder = {"ssd": "anchor_generator", "faster_rcnn": "first_stage_anchor_generator"}.get(model or "")
    if holder is None:
        return None
    for block in arch.messages(holder):
        for fld in block.fields:
            if fld.name in OD_API_DEFAULTS and isinstance(fld.value, Message):
                return fld.name, fld.value, f"{model}.{holder}.{fld.name}"
    return None


def od_api_anchors(arch: Message | None, model: str | None) -> Anchors | None:
    if arch is None:
        return None
    found = generator_block(arch, model)
    if found is None:
        return None
    kind, block, setting = found
    bad: list[str] = []
    params = _fill(block, OD_API_DEFAULTS[kind], bad)
    if kind == "flexible_grid_anchor_generator":
        params["anchor_grid"] = [_fill(grid, FLEXIBLE_GRID, bad) for grid in block.messages("anchor_grid")]
    invalid = bad[0] if bad else ""
    if model == "faster_rcnn":
        return Anchors(Generator(kind, params), setting, FASTER_RCNN_RPN_UNMATCHED,
                       "the first stage's unmatched threshold, fixed in the OD API", True, invalid)
    threshold, force, field = 0.5, False, "ssd.matcher.argmax_matcher.matched_threshold"
    for matcher in arch.messages("matcher"):
        for argmax in matcher.messages("argmax_matcher"):
            values = _fill(argmax, {"matched_threshold": 0.5, "unmatched_threshold": 0.5}, bad)
            force = argmax.scalar("force_match_for_each_row") == "true"
            threshold = values["unmatched_threshold"] if force else values["matched_threshold"]
            if force:
                field = "ssd.matcher.argmax_matcher.unmatched_threshold"
        if matcher.messages("bipartite_matcher"):
            force = True  # each box gets exactly one anchor, its best
    return Anchors(Generator(kind, params), setting, threshold, field, force, bad[0] if bad else "")


def garden_anchors(document: dict, family: str | None) -> Anchors | None:
    from odprep.experiment_config import _get

    if family not in GARDEN_DEFAULTS:
        return None
    given = _get(document, "task.model.anchor")
    given = given if isinstance(given, dict) else {}
    params: dict = {}
    bad: list[str] = []
    low, high = GARDEN_LEVELS[family]
    for name, default in (("min_level", low), ("max_level", high)):
        value = _get(document, f"task.model.{name}")
        params[name] = _garden_value(name, value, default, bad)
    for name, default in GARDEN_DEFAULTS[family].items():
        value = given.get(name, default)
        if isinstance(default, list):
            ok = isinstance(value, list) and value and all(_real(v) for v in value)
            if not ok:
                bad.append(f"{name} is {str(value)[:40]!r}, not a list of finite numbers")
            params[name] = [float(v) for v in value] if ok else list(default)
        else:
            params[name] = _garden_value(name, value, default, bad)
    key, default = GARDEN_MATCH[family]
    threshold = _get(document, key)
    return Anchors(Generator("task.model.anchor", params), "task.model.anchor",
                   float(threshold) if _real(threshold) else default, key, True, bad[0] if bad else "")


def _garden_value(name: str, value, default, bad: list[str]):
    if value is None:
        return default
    if isinstance(default, int) and not isinstance(default, bool):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        bad.append(f"{name} is {str(value)[:40]!r}, not an integer")
        return default
    if _real(value) and math.isfinite(value):
        return float(value)
    bad.append(f"{name} is {str(value)[:40]!r}, not a finite number")
    return default


def _real(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value == value


# --- writing the fitted fields ---------------------------------------------------------------

def patch_od_api(editor, arch: Message, model: str | None, changes: dict, set_scalar, set_repeated) -> None:
    """Write ``changes`` (generator field -> value) into the config's generator block."""
    _, block, _ = generator_block(arch, model)
    for name, value in changes.items():
        if name == "anchor_grid":
            for grid, fitted in zip(block.messages("anchor_grid"), value, strict=False):
                set_repeated(editor, grid, "base_sizes", tuple(fitted["base_sizes"]))
                set_repeated(editor, grid, "aspect_ratios", tuple(fitted["aspect_ratios"]))
        elif isinstance(value, list | tuple):
            set_repeated(editor, block, name, tuple(value))
        else:
            set_scalar(editor, block, name, value)
