"""Schedules that do not fit: a learning-rate schedule for another number of steps, a
warmup longer than training, a learning rate tuned for another batch size."""

from __future__ import annotations

from odprep.checks.facts import ConfigFacts, template_rates
from odprep.datasummary import DataSummary
from odprep.findings import Report


def findings(facts: ConfigFacts, summary: DataSummary, report: Report) -> None:
    plan = facts.schedule
    if plan is None or not plan.num_steps:
        return
    steps = plan.num_steps
    fix = f"odprep patch-config --num-steps {steps} moves the schedule with it"
    if plan.total_steps is not None and plan.total_steps != steps:
        effect = ("the rate never reaches its end of the decay" if plan.total_steps > steps else
                  "the rate reaches its floor before training ends")
        report.warning("schedule-steps-differ", f"{facts.path}: {plan.steps_field} is {steps} but "
                       f"{plan.total_field} is {plan.total_steps}: {effect}", fix)
    if plan.last_boundary is not None and plan.last_boundary >= steps:
        report.warning("schedule-steps-differ", f"{facts.path}: {plan.steps_field} is {steps} but "
                       f"{plan.boundary_field} reaches {plan.last_boundary}: the later rates are never used", fix)
    if plan.warmup_steps is not None and plan.warmup_steps >= steps:
        report.error("warmup-longer-than-training", f"{facts.path}: {plan.warmup_field} is {plan.warmup_steps}, "
                     f"not below {plan.steps_field} {steps}: training ends while the rate is still warming up",
                     fix)
    tuned = template_rates(facts.trainer, facts.model).get(plan.learning_rate) if plan.learning_rate else None
    if tuned and plan.batch_size and tuned != plan.batch_size:
        scaled = plan.learning_rate * plan.batch_size / tuned
        report.warning("learning-rate-for-another-batch", f"{facts.path}: the learning rate "
                       f"{plan.learning_rate:g} is the zoo's for batch size {tuned}, but batch_size is "
                       f"{plan.batch_size}; the linear scaling rule suggests {scaled:.3g}",
                       "A suggestion: odprep patch-config --scale-lr applies it")
