"""Every command answers -h with an example; the group reports its version."""

from __future__ import annotations

import pytest

from odprep.cli import main

from .helpers import run_cli


@pytest.mark.parametrize("command", sorted(main.commands))
def test_every_command_has_help_with_an_example(command):
    result = run_cli(command, "-h")
    assert result.exit_code == 0
    assert "Example" in result.output and f"odprep {command}" in result.output


def test_group_help_and_version():
    assert "voc2tfr" in run_cli("-h").output
    from odprep import __version__

    assert f" {__version__} (the tf-odprep distribution)" in run_cli("--version").output
