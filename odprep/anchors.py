"""Anchors as the trainers build them, without TensorFlow, and how well they cover boxes.

The generators a config can name: the OD API's ``multiscale_anchor_generator``,
``grid_anchor_generator``, ``ssd_anchor_generator`` and ``flexible_grid_anchor_generator``,
and Model Garden's ``task.model.anchor`` with ``min_level``/``max_level``. Each gives, for a
canvas (the padded or resized image the network sees), its levels: a grid of centres and the
anchor shapes placed on every centre, in model pixels and in the generator's own order, so
that ``boxes()`` equals what the trainer generates (the conformance stage compares them).

Coverage is the best IoU a box can reach with any anchor. For axis-aligned boxes of fixed
sizes the overlap in x and in y each shrinks as the centres move apart, so the best anchor
of a shape sits at the grid centre nearest the box's: one candidate per shape and level, not
one per anchor. The best possible recall (BPR) is the share of boxes whose best IoU reaches
the matcher's threshold.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

# Feature-map sizes: a level of stride s has ceil(size / s) cells, as 'same'-padded strided
# convolutions give (the OD API's FPN and ResNet extractors; Model Garden computes it so).
SSD_FIRST_STRIDE = 16  # ssd_anchor_generator's first layer (MobileNet's stride-16 layer); each next halves


@dataclass(frozen=True)
class Level:
    """One feature map's anchors: centres ``offset + i * stride`` (y, x) on a ``grid`` of
    (rows, columns), and the (height, width) of each anchor placed on every centre."""

    stride: tuple[float, float]
    offset: tuple[float, float]
    grid: tuple[int, int]
    shapes: tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class Generator:
    """A config's anchor generator: its ``kind`` (the block's name) and its own fields,
    defaults filled in, as a config would write them."""

    kind: str
    params: dict = field(hash=False)

    def levels(self, height: float, width: float) -> list[Level]:
        return _LEVELS[self.kind](self.params, height, width)

    def problem(self) -> str | None:
        """What makes these fields unusable (the trainer would fail or build no anchors),
        naming the field; None when they are sound."""
        return _PROBLEMS[self.kind](self.params)

    def with_params(self, **changes) -> Generator:
        return replace(self, params={**self.params, **changes})

    def per_location(self) -> list[int]:
        """Anchors per centre on each level (what the box predictor's heads are sized for)."""
        return [len(level.shapes) for level in self.levels(512, 512)]


@dataclass(frozen=True)
class Anchors:
    """What a config says about anchors: the generator, where it is written (``setting``),
    and the matcher: the IoU a box's best anchor must reach (``threshold``: the positive
    threshold; with ``force_match``, where the best anchor is a positive anyway, the
    threshold below which the matcher calls an anchor background)."""

    generator: Generator
    setting: str
    threshold: float
    threshold_field: str
    force_match: bool
    invalid: str = ""  # a field the config writes that is not a number of its kind

    def problem(self) -> str | None:
        return self.invalid or self.generator.problem()

    def describe(self) -> str:
        shown = ", ".join(f"{k}: {_short(v)}" for k, v in self.generator.params.items()
                          if k in FIT_FIELDS.get(self.generator.kind, ()) + _SHOWN)
        return f"{self.generator.kind} ({shown})"


_SHOWN = ("min_level", "max_level")


def _short(value) -> str:
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_short(v) for v in value) + "]"
    return f"{value:g}" if isinstance(value, float) else str(value)


# --- the generators --------------------------------------------------------------------------

def _grid_shapes(scales, aspect_ratios, base: tuple[float, float]) -> tuple[tuple[float, float], ...]:
    """Every (aspect ratio, scale) pair, aspect ratio outer: the OD API's meshgrid order."""
    return tuple((s / math.sqrt(a) * base[0], s * math.sqrt(a) * base[1]) for a in aspect_ratios for s in scales)


def _cells(size: float, stride: float) -> int:
    return max(1, math.ceil(size / stride))


def _multiscale(p: dict, height: float, width: float) -> list[Level]:
    scales = [2 ** (i / p["scales_per_octave"]) for i in range(p["scales_per_octave"])]
    levels = []
    for level in range(p["min_level"], p["max_level"] + 1):
        stride = 2.0**level
        # The OD API centres on stride/2 only where the image divides evenly into the level.
        offset = tuple(stride / 2 if size % stride == 0 else 0.0 for size in (height, width))
        base = stride * p["anchor_scale"]
        levels.append(Level((stride, stride), offset, (_cells(height, stride), _cells(width, stride)),
                            _grid_shapes(scales, p["aspect_ratios"], (base, base))))
    return levels


def _grid(p: dict, height: float, width: float) -> list[Level]:
    stride = (float(p["height_stride"]), float(p["width_stride"]))
    return [Level(stride, (float(p["height_offset"]), float(p["width_offset"])),
                  (_cells(height, stride[0]), _cells(width, stride[1])),
                  _grid_shapes(p["scales"], p["aspect_ratios"], (p["height"], p["width"])))]


def ssd_layer_specs(p: dict) -> list[list[tuple[float, float]]]:
    """(scale, aspect ratio) per anchor, per layer, as create_ssd_anchors makes them."""
    layers = p["num_layers"]
    scales = list(p["scales"]) or [p["min_scale"] + (p["max_scale"] - p["min_scale"]) * i / (layers - 1)
                                   for i in range(layers)]
    scales = [*scales, 1.0]
    specs = []
    for layer in range(layers):
        scale, following = scales[layer], scales[layer + 1]
        if layer == 0 and p["reduce_boxes_in_lowest_layer"]:
            specs.append([(0.1, 1.0), (scale, 2.0), (scale, 0.5)])
            continue
        spec = [(scale, a) for a in p["aspect_ratios"]]
        if p["interpolated_scale_aspect_ratio"] > 0:
            spec.append((math.sqrt(scale * following), p["interpolated_scale_aspect_ratio"]))
        specs.append(spec)
    return specs


def _ssd(p: dict, height: float, width: float) -> list[Level]:
    shortest = min(height, width)  # the base anchor is square in pixels whatever the image
    base = (p["base_anchor_height"] * shortest, p["base_anchor_width"] * shortest)
    levels = []
    rows, cols = height, width
    for layer, spec in enumerate(ssd_layer_specs(p)):
        rows, cols = _cells(rows, SSD_FIRST_STRIDE if layer == 0 else 2), _cells(cols, SSD_FIRST_STRIDE if
                                                                                 layer == 0 else 2)
        if p["height_stride"]:
            stride = (float(p["height_stride"][layer]), float(p["width_stride"][layer]))
        else:
            stride = (height / rows, width / cols)
        if p["height_offset"]:
            offset = (float(p["height_offset"][layer]), float(p["width_offset"][layer]))
        else:
            offset = (stride[0] / 2, stride[1] / 2)
        shapes = tuple((s / math.sqrt(a) * base[0], s * math.sqrt(a) * base[1]) for s, a in spec)
        levels.append(Level(stride, offset, (rows, cols), shapes))
    return levels


def _flexible(p: dict, height: float, width: float) -> list[Level]:
    levels = []
    for grid in p["anchor_grid"]:
        stride = (float(grid["height_stride"]), float(grid["width_stride"]))
        shapes = tuple((b / math.sqrt(a), b * math.sqrt(a)) for b, a in zip(grid["base_sizes"],
                                                                             grid["aspect_ratios"], strict=False))
        levels.append(Level(stride, (float(grid["height_offset"]), float(grid["width_offset"])),
                            (_cells(height, stride[0]), _cells(width, stride[1])), shapes))
    return levels


def _garden(p: dict, height: float, width: float) -> list[Level]:
    levels = []
    for level in range(p["min_level"], p["max_level"] + 1):
        rows, cols = _cells(height, 2**level), _cells(width, 2**level)
        stride = (height / rows, width / cols)
        shapes = []
        for scale in range(p["num_scales"]):  # scale outer, aspect ratio inner: Model Garden's order
            for aspect in p["aspect_ratios"]:
                base = p["anchor_size"] * 2**level * 2 ** (scale / p["num_scales"])
                shapes.append((base * aspect**-0.5, base * aspect**0.5))
        levels.append(Level(stride, (stride[0] / 2, stride[1] / 2), (rows, cols), tuple(shapes)))
    return levels


MAX_LEVEL = 12  # a stride of 4096 pixels: past any input size a config can name


def _positive(params: dict, *names: str) -> str | None:
    for name in names:
        values = params[name] if isinstance(params[name], list) else [params[name]]
        for value in values:
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                return f"{name} holds {value!r}, not a positive number"
    return None


def _levels_problem(p: dict) -> str | None:
    if not 0 <= p["min_level"] <= p["max_level"] <= MAX_LEVEL:
        return f"min_level {p['min_level']} and max_level {p['max_level']} are not levels 0 <= min <= max <= {MAX_LEVEL}"
    return None


def _pyramid_problem(p: dict, scales: str, size: str) -> str | None:
    """A feature pyramid's generator (OD API multiscale, Model Garden): ``scales`` anchors an
    octave, sized by ``size`` times the stride."""
    if not p["aspect_ratios"]:
        return "aspect_ratios is empty: no anchor would be placed"
    if p[scales] < 1:
        return f"{scales} is {p[scales]}, not at least 1"
    return _levels_problem(p) or _positive(p, size, "aspect_ratios")


def _grid_problem(p: dict) -> str | None:
    if not p["scales"] or not p["aspect_ratios"]:
        return "scales or aspect_ratios is empty: no anchor would be placed"
    return _positive(p, "scales", "aspect_ratios", "height", "width", "height_stride", "width_stride")


def _ssd_problem(p: dict) -> str | None:
    layers = p["num_layers"]
    if not 1 <= layers <= 32 or (layers < 2 and not p["scales"]):
        return f"num_layers is {layers}: between 2 and 32 (or 1 with scales) are usable"
    if p["scales"] and len(p["scales"]) != layers:
        return f"scales holds {len(p['scales'])} values for num_layers {layers}"
    for name in ("height_stride", "width_stride", "height_offset", "width_offset"):
        if p[name] and len(p[name]) != layers:
            return f"{name} holds {len(p[name])} values for num_layers {layers}"
    if not p["aspect_ratios"] and not (layers == 1 and p["reduce_boxes_in_lowest_layer"]):
        return "aspect_ratios is empty: the layers above the first would hold no anchor"
    return _positive(p, "aspect_ratios", "base_anchor_height", "base_anchor_width", "height_stride",
                     "width_stride", *(("scales",) if p["scales"] else ("min_scale", "max_scale")))


def _flexible_problem(p: dict) -> str | None:
    if not p["anchor_grid"]:
        return "no anchor_grid is given"
    for number, grid in enumerate(p["anchor_grid"]):
        if not grid["base_sizes"] or len(grid["base_sizes"]) != len(grid["aspect_ratios"]):
            return f"anchor_grid {number}: base_sizes and aspect_ratios must be non-empty lists of one length"
        found = _positive(grid, "base_sizes", "aspect_ratios", "height_stride", "width_stride")
        if found:
            return f"anchor_grid {number}: {found}"
    return None


_PROBLEMS = {"multiscale_anchor_generator": lambda p: _pyramid_problem(p, "scales_per_octave", "anchor_scale"),
             "grid_anchor_generator": _grid_problem, "ssd_anchor_generator": _ssd_problem,
             "flexible_grid_anchor_generator": _flexible_problem,
             "task.model.anchor": lambda p: _pyramid_problem(p, "num_scales", "anchor_size")}
_LEVELS = {"multiscale_anchor_generator": _multiscale, "grid_anchor_generator": _grid,
           "ssd_anchor_generator": _ssd, "flexible_grid_anchor_generator": _flexible,
           "task.model.anchor": _garden}
# The fields --fit-anchors may change, per generator: a size and the aspect ratios. The count
# of anchors per location stays, so a zoo checkpoint's box predictor still loads.
FIT_FIELDS = {"multiscale_anchor_generator": ("anchor_scale", "aspect_ratios"),
              "grid_anchor_generator": ("scales", "aspect_ratios"),
              "ssd_anchor_generator": ("min_scale", "max_scale", "aspect_ratios"),
              "flexible_grid_anchor_generator": ("anchor_grid",),
              "task.model.anchor": ("anchor_size", "aspect_ratios")}


def boxes(levels: list[Level]) -> np.ndarray:
    """Every anchor as (ymin, xmin, ymax, xmax) in model pixels: level by level, then row,
    column and shape, the order both trainers generate them in."""
    out = []
    for level in levels:
        ys = level.offset[0] + level.stride[0] * np.arange(level.grid[0])
        xs = level.offset[1] + level.stride[1] * np.arange(level.grid[1])
        shapes = np.asarray(level.shapes, dtype=np.float64).reshape(-1, 2)
        cy, cx = np.meshgrid(ys, xs, indexing="ij")
        cy, cx = cy[..., None], cx[..., None]
        h, w = shapes[:, 0], shapes[:, 1]
        out.append(np.stack([cy - h / 2, cx - w / 2, cy + h / 2, cx + w / 2], axis=-1).reshape(-1, 4))
    return np.concatenate(out) if out else np.zeros((0, 4))


# --- coverage --------------------------------------------------------------------------------

@dataclass(frozen=True)
class ModelBoxes:
    """Boxes in model pixels: centres, sizes, and the canvas each lies on."""

    cy: np.ndarray
    cx: np.ndarray
    h: np.ndarray
    w: np.ndarray
    canvas_h: np.ndarray
    canvas_w: np.ndarray

    def take(self, index) -> ModelBoxes:
        return ModelBoxes(*(getattr(self, f)[index] for f in ("cy", "cx", "h", "w", "canvas_h", "canvas_w")))

    def __len__(self) -> int:
        return len(self.cy)


def model_boxes(columns: dict[str, np.ndarray], resizer) -> ModelBoxes:
    """The data summary's box columns (normalised corners, image sizes) in model pixels."""
    width, height = columns["width"].astype(np.float64), columns["height"].astype(np.float64)
    if resizer is None:
        scale_x = scale_y = np.ones_like(width)
        canvas_w, canvas_h = width, height
    else:
        scale_x, scale_y = resizer.scales(width, height)
        canvas_w, canvas_h = resizer.canvas(width, height)
    x0, x1 = columns["xmin"] * width * scale_x, columns["xmax"] * width * scale_x
    y0, y1 = columns["ymin"] * height * scale_y, columns["ymax"] * height * scale_y
    return ModelBoxes((y0 + y1) / 2, (x0 + x1) / 2, y1 - y0, x1 - x0,
                      np.asarray(canvas_h, dtype=np.float64), np.asarray(canvas_w, dtype=np.float64))


def best_iou(generator: Generator, found: ModelBoxes) -> np.ndarray:
    """Each box's best IoU with any anchor of ``generator`` on its canvas."""
    best = np.zeros(len(found))
    canvases = np.stack([found.canvas_h, found.canvas_w], axis=1) if len(found) else np.zeros((0, 2))
    for canvas in np.unique(canvases, axis=0):
        where = np.flatnonzero((canvases == canvas).all(axis=1))
        part = found.take(where)
        result = np.zeros(len(where))
        area = part.h * part.w
        for level in generator.levels(float(canvas[0]), float(canvas[1])):
            ay = _nearest(part.cy, level.offset[0], level.stride[0], level.grid[0])
            ax = _nearest(part.cx, level.offset[1], level.stride[1], level.grid[1])
            for anchor_h, anchor_w in level.shapes:
                inter = _overlap(part.cy, part.h, ay, anchor_h) * _overlap(part.cx, part.w, ax, anchor_w)
                union = area + anchor_h * anchor_w - inter
                np.maximum(result, np.divide(inter, union, out=np.zeros_like(inter), where=union > 0), out=result)
        best[where] = result
    return best


def _nearest(centre: np.ndarray, offset: float, stride: float, cells: int) -> np.ndarray:
    return offset + stride * np.clip(np.rint((centre - offset) / stride), 0, cells - 1)


def _overlap(centre: np.ndarray, size: np.ndarray, anchor_centre: np.ndarray, anchor_size: float) -> np.ndarray:
    low = np.maximum(centre - size / 2, anchor_centre - anchor_size / 2)
    high = np.minimum(centre + size / 2, anchor_centre + anchor_size / 2)
    return np.clip(high - low, 0, None)


def recall(generator: Generator, found: ModelBoxes, threshold: float) -> float:
    """Best possible recall: the share of boxes whose best anchor reaches ``threshold``."""
    if not len(found):
        return 1.0
    return float(np.mean(best_iou(generator, found) >= threshold))
