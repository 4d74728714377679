"""Small helpers the tests share."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from odprep.cli import main


def run_cli(*args: object):
    """Invoke the CLI in-process; returns click's Result."""
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def assert_bad_input(result, *fragments: str) -> None:
    """Exit 2, one line naming what is wrong, no traceback."""
    assert result.exit_code == 2, result.output
    text = result.output.strip()
    assert "Traceback" not in text
    assert len(text.splitlines()) == 1, text
    for fragment in fragments:
        assert fragment in text, f"{fragment!r} not in {text!r}"


def leftovers(folder: Path) -> list[str]:
    """Files in a folder other than inputs: outputs or temporary files."""
    return sorted(p.name for p in folder.iterdir() if p.is_file())


VOC_TEMPLATE = """<annotation>
  <filename>{filename}</filename>
  <size><width>{width}</width><height>{height}</height><depth>3</depth></size>
  {objects}
</annotation>
"""


def voc_object(name: str = "cat", box=(1, 2, 30, 40), extra: str = "") -> str:
    xmin, ymin, xmax, ymax = box
    return (f"<object><name>{name}</name>{extra}<bndbox><xmin>{xmin}</xmin><ymin>{ymin}</ymin>"
            f"<xmax>{xmax}</xmax><ymax>{ymax}</ymax></bndbox></object>")
