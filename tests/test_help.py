"""The help a newcomer reads: commands in the order of the work, nothing cut off."""

from __future__ import annotations

import subprocess
import sys

import pytest

from odprep.cli import COMMAND_GROUPS, main
from odprep.formats import FORMATS

from .helpers import run_cli


def test_bare_odprep_shows_the_help_and_succeeds():
    done = subprocess.run([sys.executable, "-m", "odprep"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "Convert annotations to TFRecords:" in done.stdout and done.stderr == ""


def test_help_lists_every_command_in_groups_in_workflow_order_without_cuts():
    text = run_cli("-h").output
    titles = [f"{title}:" for title in COMMAND_GROUPS]
    assert [text.index(t) for t in titles] == sorted(text.index(t) for t in titles)
    assert "..." not in text.split("\n", 1)[1]  # the usage line ends in click's own "[ARGS]..."
    listed = {name for names in COMMAND_GROUPS.values() for name in names}
    assert listed == set(main.commands)


@pytest.mark.parametrize("command", sorted(f.command for f in FORMATS.values()))
def test_a_converter_shows_its_basics_first_and_its_own_list_rule(command):
    text = run_cli(command, "-h").output
    assert text.index("-o, --output") < text.index("Splits and sampling:") < text.index("Scale:")
    assert "--runner" in text[text.index("Scale:"):]
    rule = next(f for f in FORMATS.values() if f.command == command).listed_by
    assert " ".join(rule.split()[:3]) in " ".join(text.split())
