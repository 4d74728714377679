"""Real signals to a real odprep process: whatever the moment, nothing is left behind."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest
from PIL import Image

from .helpers import VOC_TEMPLATE, voc_object

ODPREP = [sys.executable, "-m", "odprep"]


@pytest.fixture(scope="module")
def big_voc(tmp_path_factory) -> Path:
    """4000 images (hard links to one noisy 640x480 JPEG) with VOC XML: a run of a second or
    two, long enough to be interrupted at every stage."""
    root = tmp_path_factory.mktemp("big")
    (root / "images").mkdir()
    (root / "Annotations").mkdir()
    buffer = io.BytesIO()
    Image.effect_noise((640, 480), 60).convert("RGB").save(buffer, format="JPEG", quality=95)
    (root / "one.jpg").write_bytes(buffer.getvalue())
    for i in range(4000):
        os.link(root / "one.jpg", root / "images" / f"{i:05d}.jpg")
        (root / "Annotations" / f"{i:05d}.xml").write_text(VOC_TEMPLATE.format(
            filename=f"{i:05d}.jpg", width=640, height=480,
            objects=voc_object("cat" if i % 3 else "dog", (4, 5, 90, 100))))
    return root


def _start(big_voc: Path, out: Path) -> subprocess.Popen:
    return subprocess.Popen([*ODPREP, "voc2tfr", big_voc / "Annotations", "--images-dir",
                             big_voc / "images", "-o", out / "train.record", "--num-shards", "3",
                             "--workers", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "CI": "1"})


def _wait_until_odprep_handles_signals(pid: int) -> None:
    """Before odprep's first line runs, the interpreter's own start-up has Python's default
    handlers; the test starts counting from the moment odprep catches SIGTERM."""
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            return
        caught = int(next(line.split()[1] for line in status.splitlines() if line.startswith("SigCgt")), 16)
        if caught & (1 << (signal.SIGTERM - 1)):
            return
        time.sleep(0.002)


def _family(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _assert_none_alive(processes: list[psutil.Process]) -> None:
    gone, alive = psutil.wait_procs(processes, timeout=10)
    assert not alive, f"orphaned workers: {alive}"


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
@pytest.mark.parametrize("delay", [0.0, 0.03, 0.1, 0.3, 0.7, 1.2, 1.8])
def test_a_signal_at_any_moment_leaves_nothing_behind(big_voc, tmp_path, signum, delay):
    out = tmp_path / "out"
    process = _start(big_voc, out)
    _wait_until_odprep_handles_signals(process.pid)
    time.sleep(delay)
    workers = _family(process.pid)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=60)
    _assert_none_alive(workers)
    left = sorted(p.name for p in out.iterdir()) if out.exists() else []
    if process.returncode == 0:  # it finished before the signal arrived
        assert left == ["label_map.pbtxt", *(f"train.record-0000{i}-of-00003" for i in range(3))]
        return
    # 128 + signum is what a shell shows for a process killed by the signal (-signum) too.
    assert process.returncode in (128 + signum, -signum), stderr
    assert b"Traceback" not in stderr, stderr.decode()[-3000:]
    if left:  # the signal came during or after the renames: all is there, and it says so
        assert left == ["label_map.pbtxt", *(f"train.record-0000{i}-of-00003" for i in range(3))]
        assert stderr.decode().strip() == "interrupted after the output was written: it is complete and in place"
    else:
        assert stderr.decode().strip() == "interrupted: no output was written"


def test_a_signal_during_the_renames_is_reported_as_what_it_left(tmp_path, monkeypatch):
    """A real SIGINT to this process while commit renames: the renames finish, and the
    interrupt that follows says the output is in place."""
    from odprep import fileio
    from odprep.termination import end_like_ctrl_c, interrupted_message, restore

    pending = []
    for name in ("a.record", "label_map.pbtxt"):
        temp = fileio.temp_path_for(tmp_path / name)
        temp.write_text(name)
        pending.append((temp, tmp_path / name))
    real_replace = os.replace
    sent = []

    def replace_and_signal(source, target):
        real_replace(source, target)
        if not sent:  # once, to this (the main) thread: other threads of pytest never see it
            sent.append(True)
            signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)

    monkeypatch.setattr(fileio.os, "replace", replace_and_signal)
    previous = end_like_ctrl_c()
    try:
        assert interrupted_message() == "interrupted: no output was written"
        with pytest.raises(KeyboardInterrupt):
            fileio.commit(pending)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["a.record", "label_map.pbtxt"]
        assert interrupted_message() == "interrupted after the output was written: it is complete and in place"
    finally:
        restore(previous)


def test_workers_die_with_a_killed_parent(big_voc, tmp_path):
    process = _start(big_voc, tmp_path / "out")
    deadline = time.time() + 10
    while len(_family(process.pid)) < 2 and time.time() < deadline:
        time.sleep(0.02)
    workers = _family(process.pid)
    assert workers, "no workers started"
    process.kill()
    process.wait()
    _assert_none_alive(workers)


@pytest.mark.parametrize("nth", [1, 2, 3, 4])
def test_a_signal_right_after_a_temporary_file_is_made_leaves_nothing(tmp_path, monkeypatch, nth):
    """A real SIGINT to this process the moment mkstemp returns, for each temporary file a
    run makes (shards, then the workers' chunk prefix): the file is listed before the signal
    is handled, so the run's last clean-up removes it."""
    import tempfile

    from .conftest import SAMPLE
    from .helpers import run_cli

    real = tempfile.mkstemp
    calls = []

    def mkstemp_then_signal(*args, **kwargs):
        made = real(*args, **kwargs)
        calls.append(made[1])
        if len(calls) == nth:
            os.kill(os.getpid(), signal.SIGINT)
        return made

    monkeypatch.setattr("odprep.fileio.tempfile.mkstemp", mkstemp_then_signal)
    out = tmp_path / "out"
    result = run_cli("voc2tfr", SAMPLE / "voc" / "Annotations", "--images-dir", SAMPLE / "images", "-o",
                     out / "train.record", "--num-shards", "3", "--workers", "2", "-q")
    assert len(calls) >= nth, calls
    assert result.exit_code == 130, result.output
    assert not out.exists() or not list(out.iterdir()), sorted(p.name for p in out.iterdir())
