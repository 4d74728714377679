"""Model Garden schedules: what an experiment YAML trains with when it leaves
``trainer.optimizer_config`` out (the registered COCO experiment's own), and what
`patch-config` moves with --num-steps and --scale-lr.

Only the stepwise rate with linear warmup is read and moved, which is what the detection
experiments (retinanet_resnetfpn_coco, maskrcnn_resnetfpn_coco) use.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

RATE = "trainer.optimizer_config.learning_rate"
WARMUP = "trainer.optimizer_config.warmup"


@dataclass(frozen=True)
class Stepwise:
    experiment: str  # whose default this is, or "" when the YAML writes it
    boundaries: tuple[int, ...]
    values: tuple[float, ...]
    warmup_steps: int | None
    warmup_rate: float | None
    batch_size: int  # the global batch the rates were tuned for
    made_for: int | None = None  # the training length the boundaries were set for (defaults: known)

    def scaled(self, batch_size: int) -> tuple[tuple[float, ...], float | None]:
        factor = batch_size / self.batch_size
        return tuple(round(v * factor, 8) for v in self.values), \
            round(self.warmup_rate * factor, 10) if self.warmup_rate is not None else None


# The registered experiments' optimizer_config (official/vision/configs): 118,287 COCO
# images at batch 256 for RetinaNet (462 steps an epoch: 72 epochs, decays at 57 and 67),
# and Mask R-CNN's 22,500 steps at batch 64.
DEFAULTS = {
    "retinanet": Stepwise("retinanet_resnetfpn_coco", (57 * 462, 67 * 462), (0.32, 0.032, 0.0032), 500, 0.0067,
                          256, 72 * 462),
    "maskrcnn": Stepwise("maskrcnn_resnetfpn_coco", (15000, 20000), (0.12, 0.012, 0.0012), 500, 0.0067, 64,
                         22500),
}


def _get(document: dict, dotted: str):  # experiment_config imports this module: its helpers come late
    from odprep.experiment_config import _get as get

    return get(document, dotted)


def _int(value) -> int | None:
    from odprep.experiment_config import _int as whole

    return whole(value)


def _numbers(value) -> tuple[float, ...] | None:
    if isinstance(value, list) and value and all(isinstance(v, int | float) and not isinstance(v, bool)
                                                 for v in value):
        return tuple(value)
    return None


def stepwise(document: dict, family: str | None) -> Stepwise | None:
    """The experiment's stepwise schedule: as the YAML writes it, else its family's default
    (None when the YAML writes another kind of schedule, or the family has none)."""
    default = DEFAULTS.get(family or "")
    if default is None:
        return None
    if _get(document, "trainer.optimizer_config") is None:
        return default
    kind = _get(document, f"{RATE}.type")
    if kind not in (None, "stepwise"):
        return None
    boundaries = _numbers(_get(document, f"{RATE}.stepwise.boundaries"))
    values = _numbers(_get(document, f"{RATE}.stepwise.values"))
    warmup = _get(document, f"{WARMUP}.linear.warmup_steps")
    rate = _get(document, f"{WARMUP}.linear.warmup_learning_rate")
    tuned = default.batch_size if values is None else (_int(_get(document, "task.train_data.global_batch_size"))
                                                       or default.batch_size)
    return Stepwise("", tuple(int(b) for b in boundaries) if boundaries else default.boundaries,
                    values or default.values, warmup if isinstance(warmup, int) else default.warmup_steps,
                    rate if isinstance(rate, int | float) else default.warmup_rate, tuned,
                    _int(_get(document, "trainer.train_steps")))


def patch(document: dict, family: str | None, num_steps: int | None, scale_to: int | None,
          tuned: dict[float, int], source: str) -> dict[str, object]:
    """The keys --num-steps and --scale-lr (to the global batch ``scale_to``) write; the
    rates are scaled from the batch size ``tuned`` says they were set for."""
    from odprep.errors import OdprepError

    plan = stepwise(document, family)
    if plan is None:
        if scale_to is not None:
            raise OdprepError(source, "--scale-lr: the experiment's learning rate is not a stepwise schedule "
                              "odprep knows", "Scale trainer.optimizer_config's rates by hand")
        return {}
    changes: dict[str, object] = {}
    steps = num_steps or _int(_get(document, "trainer.train_steps")) or plan.made_for
    if num_steps is not None or plan.experiment:
        changes.update(moved(plan, plan.made_for or steps, steps))
    if scale_to is not None:
        batch = tuned.get(plan.values[0])
        if batch is None:
            raise OdprepError(source, f"--scale-lr: the rate {plan.values[0]:g} is not a zoo value, so the batch "
                              "size it was tuned for is unknown", "Scale the rates by hand: rate x new batch / old "
                              "batch")
        values, warm = dataclasses.replace(plan, batch_size=batch).scaled(scale_to)
        changes[f"{RATE}.stepwise.values"] = list(values)
        if warm is not None:
            changes[f"{WARMUP}.linear.warmup_learning_rate"] = warm
    return changes


def moved(plan: Stepwise, old_steps: int, num_steps: int) -> dict[str, object]:
    """The keys to write so that the schedule fits ``num_steps`` (from ``old_steps``, the
    length it was made for): boundaries scaled with it (strictly increasing), warmup kept
    below it."""
    changes: dict[str, object] = {}
    boundaries, previous = [], 0
    for b in plan.boundaries:
        at = max(previous + 1, min(num_steps - len(plan.boundaries) + len(boundaries), round(b * num_steps / old_steps)))
        boundaries.append(at)
        previous = at
    changes[f"{RATE}.stepwise.boundaries"] = boundaries
    if plan.experiment:  # the default was implicit: write the whole schedule, so that it shows
        changes[f"{RATE}.type"] = "stepwise"
        changes[f"{RATE}.stepwise.values"] = list(plan.values)
        changes[f"{WARMUP}.type"] = "linear"
        changes[f"{WARMUP}.linear.warmup_learning_rate"] = plan.warmup_rate
    if plan.warmup_steps is not None:
        changes[f"{WARMUP}.linear.warmup_steps"] = plan.warmup_steps if plan.warmup_steps < num_steps \
            else max(1, num_steps // 10)
    return changes


KEYS = (f"{RATE}.type", f"{RATE}.stepwise.boundaries", f"{RATE}.stepwise.values", f"{WARMUP}.type",
        f"{WARMUP}.linear.warmup_steps", f"{WARMUP}.linear.warmup_learning_rate")
