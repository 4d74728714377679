"""`patch-config --fit-anchors`: anchors that reach more of the boxes, found by a search over
the generator's own fields.

Two things are searched: one size for every anchor (the generator's size field times
2^(k/8), from an eighth to four times the config's), and the aspect ratios (the config's,
or k-means centres of the boxes' log aspect ratios, as many as the config has). The number
of anchors on each location never changes, so a zoo checkpoint's box predictor still loads.
Anchors change only for a higher best possible recall: of the candidates that raise it, the
highest wins, then the highest mean best IoU. A fit never lowers the recall.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from odprep.anchors import Anchors, Generator, ModelBoxes, best_iou

SIZE_STEPS = range(-24, 17)  # 2^(k/8): 1/8x to 4x the config's size
SAMPLE = 20_000  # boxes the search scores each candidate on (seeded); the result is scored on all


@dataclass(frozen=True)
class Fit:
    generator: Generator
    changes: dict  # generator field -> new value, as the config will hold it
    before: float  # best possible recall, on all the boxes
    after: float


def _round(value: float) -> float:
    return float(f"{value:.4g}")


def _scaled(generator: Generator, factor: float) -> dict:
    p = generator.params
    kind = generator.kind
    if kind == "multiscale_anchor_generator":
        return {"anchor_scale": _round(p["anchor_scale"] * factor)}
    if kind == "grid_anchor_generator":
        return {"scales": [_round(s * factor) for s in p["scales"]]}
    if kind == "ssd_anchor_generator":
        if p["scales"]:
            return {"scales": [_round(s * factor) for s in p["scales"]]}
        return {"min_scale": _round(p["min_scale"] * factor), "max_scale": _round(p["max_scale"] * factor)}
    if kind == "flexible_grid_anchor_generator":
        return {"anchor_grid": [{**grid, "base_sizes": [_round(b * factor) for b in grid["base_sizes"]]}
                                for grid in p["anchor_grid"]]}
    return {"anchor_size": _round(p["anchor_size"] * factor)}


def _with_ratios(generator: Generator, changes: dict, ratios: list[float] | None) -> dict:
    if ratios is None:
        return changes
    if generator.kind == "flexible_grid_anchor_generator":
        grids = changes.get("anchor_grid", generator.params["anchor_grid"])
        return {**changes, "anchor_grid": [{**grid, "aspect_ratios": _replace_ranked(grid["aspect_ratios"], ratios)}
                                           for grid in grids]}
    return {**changes, "aspect_ratios": _replace_ranked(generator.params["aspect_ratios"], ratios)}


def _replace_ranked(old: list[float], fitted: list[float]) -> list[float]:
    """The i-th smallest old ratio becomes the i-th smallest fitted one, in the old places."""
    distinct = sorted(set(old))
    if len(fitted) != len(distinct):
        return list(old)
    mapping = dict(zip(distinct, sorted(fitted), strict=True))
    return [mapping[r] for r in old]


def fitted_ratios(found: ModelBoxes, count: int, seed: int = 0) -> list[float] | None:
    """``count`` aspect ratios (width / height) at the k-means centres of the boxes' log
    aspect ratios (1-D, so started from quantiles and run to convergence); where the boxes
    have fewer shapes than that, ratios spread by about 1.4x around their mean."""
    usable = (found.h > 0) & (found.w > 0)
    if count < 1 or np.count_nonzero(usable) < count:
        return None
    logs = np.log(found.w[usable] / found.h[usable])
    centres = np.quantile(logs, (np.arange(count) + 0.5) / count)
    for _ in range(100):
        nearest = np.argmin(np.abs(logs[:, None] - centres[None, :]), axis=1)
        moved = np.array([logs[nearest == i].mean() if np.any(nearest == i) else centres[i] for i in range(count)])
        if np.allclose(moved, centres, atol=1e-6):
            break
        centres = moved
    ratios = sorted({_round(float(np.exp(c))) for c in centres})
    if len(ratios) < count:  # the boxes share fewer shapes than there are ratios: spread around them
        middle = float(np.mean(logs))
        ratios = sorted({_round(float(np.exp(middle + 0.35 * (i - (count - 1) / 2)))) for i in range(count)})
    return ratios if len(ratios) == count else None


def _score(generator: Generator, found: ModelBoxes, threshold: float) -> tuple[float, float]:
    best = best_iou(generator, found)
    return float(np.mean(best >= threshold)), float(best.mean())


def fit(anchors: Anchors, found: ModelBoxes, seed: int = 0, best: np.ndarray | None = None) -> Fit:
    """The fit; ``best``, when the caller measured it already, is each box's best IoU with
    the config's anchors."""
    generator = anchors.generator
    sample = found
    if len(found) > SAMPLE:
        sample = found.take(np.random.default_rng(seed).choice(len(found), SAMPLE, replace=False))
    ratio_counts = [len(set(g["aspect_ratios"])) for g in generator.params["anchor_grid"]] \
        if generator.kind == "flexible_grid_anchor_generator" else [len(set(generator.params["aspect_ratios"]))]
    ratio_sets = [None]
    if len(set(ratio_counts)) == 1:
        ratios = fitted_ratios(sample, ratio_counts[0], seed)
        if ratios is not None:
            ratio_sets.append(ratios)
    start = _score(generator, sample, anchors.threshold)
    best_changes, best_score = {}, start
    for ratios in ratio_sets:  # the config's ratios first: new ones must raise the recall further
        floor = best_score[0]
        for step in SIZE_STEPS:
            changes = _with_ratios(generator, _scaled(generator, 2 ** (step / 8)), ratios)
            score = _score(generator.with_params(**changes), sample, anchors.threshold)
            if score[0] > floor and score > best_score:  # only a higher recall earns a change
                best_changes, best_score = changes, score
    fitted = generator.with_params(**best_changes)
    best = best if best is not None else best_iou(generator, found)
    before = (float(np.mean(best >= anchors.threshold)), float(best.mean()))
    after = _score(fitted, found, anchors.threshold) if best_changes else before
    if after < before:  # the sample misled the search: keep the config's anchors
        return Fit(generator, {}, before[0], before[0])
    return Fit(fitted, best_changes, before[0], after[0])


def fit_config(text: str, source: str) -> tuple[Fit, str]:
    """Fit the anchors of a config (its text) to the boxes of the train records it names;
    the fit, and a line that says what changed."""
    from odprep.anchors import model_boxes
    from odprep.checks.facts import facts_from_text
    from odprep.consistency import _expand
    from odprep.datasummary import summarize
    from odprep.errors import OdprepError

    facts = facts_from_text(text, source)
    if facts.anchors is None:
        raise OdprepError(source, f"--fit-anchors: this model ({facts.model or 'none'}) has no anchor generator",
                          "Leave --fit-anchors out (anchors apply to SSD, Faster R-CNN, RetinaNet and Mask R-CNN)")
    if facts.anchors.problem():
        raise OdprepError(source, f"{facts.anchors.setting}: {facts.anchors.problem()}",
                          "Fix the anchor generator first")
    files = [path for pattern in facts.train_inputs for path in _expand(pattern)]
    if not files:
        raise OdprepError(source, "--fit-anchors needs the train records, and the config's train input "
                          f"matches no file ({', '.join(facts.train_inputs) or 'none set'})",
                          "Pass --train-input with the records to fit to")
    summary = summarize({"train": files})
    columns = summary.splits["train"].boxes.arrays()
    if not columns["cls"].size:
        raise OdprepError(source, f"--fit-anchors: the train records ({len(files)} file(s)) hold no box",
                          "Fit to records with objects")
    found = model_boxes(columns, facts.resizer)
    result = fit(facts.anchors, found)
    where = f"{len(found):,} train boxes at IoU {facts.anchors.threshold:g}"
    if not result.changes:
        return result, (f"anchors kept: best possible recall {result.before:.1%} on {where}; no size or aspect "
                        f"ratios of {facts.anchors.generator.kind} do better")
    shown = ", ".join(f"{name}: {_shown(facts.anchors.generator.params[name])} -> {_shown(value)}"
                      for name, value in result.changes.items())
    return result, (f"anchors fitted: best possible recall {result.before:.1%} -> {result.after:.1%} on {where} "
                    f"({facts.anchors.setting}: {shown})")


def _shown(value) -> str:
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_shown(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_shown(v)}" for k, v in value.items() if k in ("base_sizes", "aspect_ratios")) + "}"
    return f"{value:g}" if isinstance(value, float) else str(value)
