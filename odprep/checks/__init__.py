"""What `check` predicts about a training run, one concern a module.

Each concern is a function ``(facts, summary, report)``: ``facts`` what the config says
(``facts.ConfigFacts``, the same for both trainers), ``summary`` what the records hold
(``odprep.datasummary.DataSummary``, read once), ``report`` where findings go. A concern
never reads a file itself.
"""

from __future__ import annotations

from odprep.checks import anchors, data, leakage, limits, schedule
from odprep.checks.facts import ConfigFacts
from odprep.datasummary import DataSummary
from odprep.findings import Report

CONCERNS = (data.findings, limits.findings, anchors.findings, schedule.findings, leakage.findings)


def run(facts: ConfigFacts, summary: DataSummary, report: Report) -> None:
    for concern in CONCERNS:
        concern(facts, summary, report)
