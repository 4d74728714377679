"""--runner: the same conversions on Apache Beam's DirectRunner, in-process and with worker
processes. The set of Examples must equal the local run's; shards carry the OD API names."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from odprep.tfrecord import read_records
from tests.conftest import SAMPLE, parse_with_od_api_spec

pytest.importorskip("apache_beam")

MULTI = ["--beam-option", "direct_num_workers=2", "--beam-option", "direct_running_mode=multi_processing"]


def odprep(*args: object) -> subprocess.CompletedProcess:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([sys.executable, "-m", "odprep", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=600)


def examples(folder: Path, stem: str) -> set[bytes]:
    return {record.data for path in folder.glob(f"{stem}*") for record in read_records(path)}


@pytest.mark.parametrize("mode", [[], MULTI], ids=["in-process", "multi-processing"])
def test_beam_writes_the_same_examples_as_a_local_run(tmp_path, mode, tf):
    args = ["voc2tfr", SAMPLE / "voc" / "Annotations", "--images-dir", SAMPLE / "images", "--num-shards", "3"]
    local = odprep(*args, "-o", tmp_path / "local" / "train.record")
    beam = odprep(*args, "-o", tmp_path / "beam" / "train.record", "--runner", "DirectRunner", *mode)
    assert local.returncode == 0, local.stderr
    assert beam.returncode == 0, beam.stderr
    assert sorted(p.name for p in (tmp_path / "beam").iterdir()) == [
        "label_map.pbtxt", "train.record-00000-of-00003", "train.record-00001-of-00003",
        "train.record-00002-of-00003"]
    assert examples(tmp_path / "beam", "train.record") == examples(tmp_path / "local", "train.record")
    assert len(examples(tmp_path / "beam", "train.record")) > 1
    assert (tmp_path / "beam" / "label_map.pbtxt").read_bytes() == \
        (tmp_path / "local" / "label_map.pbtxt").read_bytes()
    for shard in (tmp_path / "beam").glob("train.record-*"):
        parse_with_od_api_spec(tf, [shard])
    assert "images written: " in beam.stdout and beam.stderr == ""


def test_beam_coco_masks_with_worker_processes(tmp_path, tf):
    args = ["coco2tfr", SAMPLE / "coco" / "instances.json", "--images-dir", SAMPLE / "images",
            "--include-masks"]
    assert odprep(*args, "-o", tmp_path / "local" / "x.record").returncode == 0
    beam = odprep(*args, "-o", tmp_path / "beam" / "x.record", "--runner", "DirectRunner", *MULTI)
    assert beam.returncode == 0, beam.stderr
    assert examples(tmp_path / "beam", "x.record") == examples(tmp_path / "local", "x.record")
    assert parse_with_od_api_spec(tf, [tmp_path / "beam" / "x.record"], masks=True)


@pytest.fixture()
def broken(tmp_path) -> Path:
    root = tmp_path / "broken"
    shutil.copytree(SAMPLE / "images", root / "images")
    shutil.copytree(SAMPLE / "voc" / "Annotations", root / "ann")
    (root / "images" / "zz.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (root / "ann" / "zz.xml").write_text(
        "<annotation><filename>zz.jpg</filename><size><width>8</width><height>8</height></size>"
        "<object><name>cat</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>4</xmax><ymax>4</ymax>"
        "</bndbox></object></annotation>")
    return root


@pytest.mark.parametrize("mode", [[], MULTI], ids=["in-process", "multi-processing"])
def test_a_bad_image_fails_the_pipeline_with_the_local_message_and_leaves_nothing(broken, tmp_path, mode):
    args = ["voc2tfr", broken / "ann", "--images-dir", broken / "images", "--num-shards", "2"]
    local = odprep(*args, "-o", tmp_path / "local" / "t.record")
    beam = odprep(*args, "-o", tmp_path / "beam" / "t.record", "--runner", "DirectRunner", *mode)
    assert local.returncode == beam.returncode == 2
    assert beam.stderr == local.stderr and beam.stderr.count("\n") == 1, beam.stderr
    assert "zz.jpg" in beam.stderr
    assert not (tmp_path / "beam").exists() and not (tmp_path / "local").exists()  # nor the folders made


def test_skips_are_counted_with_beam_metrics(broken, tmp_path):
    args = ["voc2tfr", broken / "ann", "--images-dir", broken / "images", "--skip-invalid"]
    local = odprep(*args, "-o", tmp_path / "local" / "t.record")
    beam = odprep(*args, "-o", tmp_path / "beam" / "t.record", "--runner", "DirectRunner")
    assert local.returncode == beam.returncode == 0, beam.stderr
    assert "skipped images: 1" in local.stdout and "skipped images: 1" in beam.stdout
    assert "counted by the Beam workers" in beam.stdout
    assert examples(tmp_path / "beam", "t.record") == examples(tmp_path / "local", "t.record")
    for line in local.stdout.splitlines():
        if line.startswith(("images written", "objects written")):
            assert line in beam.stdout


def test_beam_options_need_a_runner(tmp_path):
    done = odprep("voc2tfr", SAMPLE / "voc" / "Annotations", "--images-dir", SAMPLE / "images", "-o",
                  tmp_path / "t.record", "--beam-option", "direct_num_workers=2")
    assert done.returncode == 2 and "--runner" in done.stderr and done.stderr.count("\n") == 1


def _run_with_workers(tmp_path):
    """A Beam run with worker processes, started and waited for until its SDK workers are up:
    (the process, its descendants then, the output folder)."""
    import time

    import psutil

    annotations = tmp_path / "ann"
    annotations.mkdir()
    for xml in (SAMPLE / "voc" / "Annotations").glob("*.xml"):
        for copy in range(300):
            (annotations / f"{copy}_{xml.name}").write_bytes(xml.read_bytes())
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "odprep", "voc2tfr", annotations, "--images-dir",
                             SAMPLE / "images", "-o", out / "t.record", "--runner", "DirectRunner", *MULTI],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "TMPDIR": str(tmp_path)})
    parent = psutil.Process(proc.pid)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not any(
            "sdk_worker_main" in " ".join(c.cmdline()) for c in parent.children(recursive=True)):
        time.sleep(0.2)
    family = parent.children(recursive=True)
    assert any("sdk_worker_main" in " ".join(c.cmdline()) for c in family), "the workers never started"
    return proc, family, out


def test_ctrl_c_stops_the_workers_and_leaves_nothing(tmp_path):
    import signal
    import time

    import psutil

    proc, children, out = _run_with_workers(tmp_path)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert err.strip() == "interrupted: no output was written"
    assert not out.exists() or list(out.iterdir()) == []
    assert list(tmp_path.glob("odprep-beam-*")) == []
    time.sleep(1)
    assert [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE] == []


def test_a_killed_odprep_takes_its_beam_workers_with_it(tmp_path):
    """SIGKILL leaves odprep no chance to clean up: the pipeline's group must still die."""
    import signal

    import psutil

    proc, family, _ = _run_with_workers(tmp_path)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    _, alive = psutil.wait_procs(family, timeout=20)
    assert [p for p in alive if p.status() != psutil.STATUS_ZOMBIE] == []


@pytest.fixture
def full_disk(tmp_path):
    """A 1 MB tmpfs: a real filesystem that fills up (mounting needs root, as CI runs)."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
                                           capture_output=True).returncode != 0:
        if os.environ.get("CI"):
            pytest.fail("CI runs as root: a tmpfs must mount")
        pytest.skip("mounting a tmpfs needs root")
    yield mount
    subprocess.run(["umount", str(mount)], check=False)


def test_a_full_disk_is_one_line_naming_it_and_leaves_nothing(full_disk, tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    annotations = tmp_path / "Annotations"
    annotations.mkdir()
    from PIL import Image

    from tests.helpers import VOC_TEMPLATE, voc_object

    for i in range(12):  # 12 x ~200 KB of noise: more than the 1 MB the disk holds
        Image.effect_noise((320, 240), 80).convert("RGB").save(images / f"{i}.png")
        (annotations / f"{i}.xml").write_text(VOC_TEMPLATE.format(filename=f"{i}.png", width=320, height=240,
                                                                  objects=voc_object()))
    for runner in ([], ["--runner", "DirectRunner"]):
        done = odprep("voc2tfr", annotations, "--images-dir", images, "-o", full_disk / "out" / "train.record",
                      "-q", *runner)
        assert done.returncode == 2, done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and "no space left on the device" in lines[0] and "Traceback" not in done.stderr
        assert "train.record" in lines[0]
        assert list(full_disk.iterdir()) == []  # no shard, no temporary file, no folder made for them
