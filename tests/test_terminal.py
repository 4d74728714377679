"""Names from data are data: never a path outside their folder, never a terminal control.

``fileio.below`` is the one rule for names that become local paths; ``errors.printable``
is the one helper every message and report goes through before it reaches a terminal."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from odprep.errors import OdprepError, printable, printable_lines
from odprep.fileio import below

from .conftest import SAMPLE

ESCAPE = "\x1b]0;owned\x07\x1b[2J\x9b31m"
CONTROLS = {*map(chr, range(0x20)), "\x7f", *map(chr, range(0x80, 0xA0)), "\u2028", "\u2029", "\u202e"}


@given(st.text())
def test_printable_leaves_no_control_character_and_one_line(text):
    shown = printable(text)
    assert not CONTROLS & set(shown)
    if not CONTROLS & set(text):
        assert shown == text  # ordinary names are shown as they are


@given(st.lists(st.text(), max_size=5))
def test_printable_lines_keeps_only_the_report_line_breaks(lines):
    shown = printable_lines("\n".join(lines))
    assert not (CONTROLS - {"\n"}) & set(shown)
    assert shown.count("\n") == "\n".join(lines).count("\n")


@settings(max_examples=300)
@given(st.text(alphabet=st.sampled_from(list("ab./\\:\0 C")), max_size=24))
def test_below_never_leaves_its_folder(tmp_path_factory, name):
    root = tmp_path_factory.getbasetemp() / "root"
    root.mkdir(exist_ok=True)
    try:
        target = below(root, name, "object")
    except OdprepError as error:
        assert "\n" not in error.message
        return
    real = os.path.realpath(target)
    assert real.startswith(os.path.realpath(root) + os.sep)


@pytest.mark.parametrize("name", ["../x", "a/../../x", "/etc/passwd", "..\\..\\x", "a\\..\\..\\x",
                                  "C:/x", "c:\\x", "a\0b", "", "/"])
def test_below_refuses_names_that_lead_out(tmp_path, name):
    with pytest.raises(OdprepError):
        below(tmp_path, name, "object")


@pytest.mark.parametrize("name", ["a b/#odd ..name é.xml", "back\\slash.xml", "..hidden", "./a/./b"])
def test_below_keeps_odd_but_harmless_names(tmp_path, name):
    assert below(tmp_path, name, "object").is_relative_to(tmp_path)


def test_below_refuses_a_link_that_leads_out(tmp_path):
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "link").symlink_to(tmp_path)
    with pytest.raises(OdprepError, match="symbolic link"):
        below(tmp_path / "root", "link/x", "object")


def _run(*args: object) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "odprep", *map(str, args)], capture_output=True,
                          text=True, timeout=300)


def _hostile_csv(folder: Path, filename: str = "cat_dog.jpg") -> Path:
    csv = folder / "a.csv"
    csv.write_text("filename,width,height,class,xmin,ymin,xmax,ymax\n"
                   f'"{filename}",96,64,"{ESCAPE}cat",8,10,40,50\n', encoding="utf-8")
    return csv


def test_a_class_name_with_escape_sequences_is_shown_escaped(tmp_path):
    csv = _hostile_csv(tmp_path)
    done = _run("csv2tfr", csv, "--images-dir", SAMPLE / "images", "-o", tmp_path / "a.record", "-q")
    assert done.returncode == 0, done.stderr
    assert "\x1b" not in done.stdout + done.stderr and "\x07" not in done.stdout
    assert "\\x1b]0;owned\\x07" in done.stdout
    inspected = _run("inspect", tmp_path / "a.record")
    assert inspected.returncode == 0, inspected.stderr
    assert "\x1b" not in inspected.stdout and "\\x1b[2J" in inspected.stdout
    written = tmp_path / "label_map.pbtxt"
    checked = _run("validate", tmp_path / "a.record", "--label-map", written)
    assert checked.returncode == 0 and "\x1b" not in checked.stdout + checked.stderr


def test_a_file_name_with_a_newline_keeps_the_error_on_one_line(tmp_path):
    csv = _hostile_csv(tmp_path, filename="missing\nInjected: line.jpg")
    done = _run("csv2tfr", csv, "--images-dir", SAMPLE / "images", "-o", tmp_path / "a.record")
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "missing\\nInjected" in done.stderr, done.stderr
    assert "\x1b" not in done.stderr


def test_a_huge_class_name_does_not_widen_every_row(tmp_path):
    rows = ["filename,width,height,class,xmin,ymin,xmax,ymax"]
    rows += [f"cat_dog.jpg,96,64,c{i},8,10,40,50" for i in range(200)]
    rows.append("cat_dog.jpg,96,64," + "x" * 130_000 + ",8,10,40,50")
    (tmp_path / "a.csv").write_text("\n".join(rows) + "\n")
    done = _run("csv2tfr", tmp_path / "a.csv", "--images-dir", SAMPLE / "images", "-o",
                tmp_path / "a.record", "-q")
    assert done.returncode == 0, done.stderr
    assert len(done.stdout) < 40_000  # 201 rows of bounded width, not 201 x 130,000
    inspected = _run("inspect", tmp_path / "a.record")
    assert inspected.returncode == 0 and len(inspected.stdout) < 40_000
