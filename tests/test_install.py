"""The door: the name users install, and what the core install must do without the extras."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from odprep.extras import DISTRIBUTION

from .conftest import REPO, SAMPLE

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
# Heavy libraries the core install does not carry: blocked, the main job must still run.
EXTRAS_ONLY = ("tensorflow", "pandas", "pyarrow", "apache_beam", "official", "matplotlib")


def _hints() -> list[tuple[str, str]]:
    """(where, the name installed) for every "pip install NAME[...]" in the README and the code."""
    found = []
    texts = {"README.md": (REPO / "README.md").read_text()}
    texts.update({str(p.relative_to(REPO)): p.read_text() for p in (REPO / "odprep").rglob("*.py")})
    texts.update({str(p.relative_to(REPO)): p.read_text() for p in (REPO / "benchmarks").glob("*.md")})
    for where, text in texts.items():
        for match in re.finditer(r"""pip install (?:-[-\w]+ )*["']?([A-Za-z0-9_.-]+)\[""", text):
            found.append((where, match.group(1)))
        for match in re.finditer(r"""echo ["']([A-Za-z0-9_.-]+)\[""", text):  # a requirements file
            found.append((where, match.group(1)))
    return found


def test_the_distribution_is_the_one_pyproject_declares():
    assert PYPROJECT["project"]["name"] == DISTRIBUTION


def test_every_install_hint_names_our_distribution():
    hints = _hints()
    assert len(hints) >= 4  # the README's extras, the storage and Beam messages
    wrong = [(where, name) for where, name in hints if name not in (DISTRIBUTION, ".", "-e")]
    assert wrong == []


def test_every_extra_named_in_a_hint_exists():
    extras = set(PYPROJECT["project"]["optional-dependencies"])
    text = (REPO / "README.md").read_text() + "".join(p.read_text() for p in (REPO / "odprep").rglob("*.py"))
    named = set(re.findall(re.escape(DISTRIBUTION) + r"\[([a-z0-9,-]+)\]", text))
    named |= set(re.findall(r'install_hint\("([a-z0-9-]+)"\)', text))
    named = {part for name in named for part in name.split(",")}
    assert named and named <= extras, named - extras


def test_the_core_install_carries_no_heavy_library():
    core = " ".join(PYPROJECT["project"]["dependencies"]).lower()
    for heavy in ("tensorflow", "pandas", "pyarrow", "apache-beam", "tf-models", "matplotlib"):
        assert heavy not in core


def _without_extras(*args: object, cwd=None) -> subprocess.CompletedProcess:
    code = ("import sys\n"
            f"for name in {EXTRAS_ONLY!r}: sys.modules[name] = None\n"
            "from odprep.__main__ import main\n"
            "sys.argv = ['odprep', *sys.argv[1:]]\n"
            "main()\n")
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True,
                          timeout=300, cwd=cwd)


def test_the_main_job_runs_without_the_extras(tmp_path):
    steps = [
        ["voc2tfr", SAMPLE / "voc" / "Annotations", "--images-dir", SAMPLE / "images", "-o",
         tmp_path / "{split}.record", "--split", "train=0.7,val=0.3", "-q"],
        ["coco2tfr", SAMPLE / "coco" / "instances.json", "--images-dir", SAMPLE / "images", "-o",
         tmp_path / "coco" / "coco.record", "--include-masks", "-q"],
        ["csv2tfr", SAMPLE / "csv" / "annotations.csv", "--images-dir", SAMPLE / "images", "-o",
         tmp_path / "csv" / "csv.record", "-q"],
        ["new-config", "--template", "ssd_mobilenet_v2_fpnlite_320", "--train-input", tmp_path / "train.record",
         "--eval-input", tmp_path / "val.record", "--label-map", tmp_path / "label_map.pbtxt",
         "--no-checkpoint", "-o", tmp_path / "pipeline.config"],
        ["validate", tmp_path / "train.record"],
        ["inspect", tmp_path / "train.record"],
        ["tfr2coco", tmp_path / "coco" / "coco.record", "-o", tmp_path / "coco.json"],
    ]
    for step in steps:
        done = _without_extras(*step)
        assert done.returncode == 0, (step[0], done.stdout + done.stderr)
    checked = _without_extras("check", tmp_path / "pipeline.config")
    assert checked.returncode in (0, 1) and "Traceback" not in checked.stderr, checked.stdout + checked.stderr


def test_a_feature_without_its_extra_names_the_extra_in_one_line(tmp_path):
    oid = SAMPLE / "oid"
    done = _without_extras("oid2tfr", oid / "boxes.csv", "--class-descriptions",
                           oid / "class-descriptions-boxable.csv", "--images-dir", SAMPLE / "images",
                           "-o", tmp_path / "oid.record")
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and f'pip install "{DISTRIBUTION}[oid]"' in done.stderr
    assert list(tmp_path.iterdir()) == []
    voc = _without_extras("voc2tfr", SAMPLE / "voc" / "Annotations", "--images-dir", SAMPLE / "images", "-o",
                          tmp_path / "v" / "t.record", "-q")
    assert voc.returncode == 0, voc.stderr
    page = _without_extras("inspect", tmp_path / "v" / "t.record", "--report", tmp_path / "report")
    assert page.returncode == 2 and page.stderr.count("\n") == 1, page.stderr
    assert f'pip install "{DISTRIBUTION}[report]"' in page.stderr and not (tmp_path / "report").exists()
    code = ("import sys; sys.modules['tensorflow'] = None\n"
            "from odprep.errors import OdprepError\nfrom odprep.tfdata import tf_dataset\n"
            "try:\n    tf_dataset('x-*.record')\nexcept OdprepError as e:\n    print(e)\n")
    tf = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert f'pip install "{DISTRIBUTION}[tf]"' in tf.stdout, tf.stdout + tf.stderr


@pytest.mark.parametrize("module", ["odprep.cli", "odprep.conversion", "odprep.consistency"])
def test_the_core_modules_import_no_heavy_library(module):
    code = f"import sys, {module}; print(sorted(m for m in {EXTRAS_ONLY!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "[]", done.stdout + done.stderr


def test_version_names_the_distribution():
    done = subprocess.run([sys.executable, "-m", "odprep", "--version"], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0 and DISTRIBUTION in done.stdout.lower(), done.stdout + done.stderr


def test_readme_command_1_runs_and_ends_with_a_clean_check(tmp_path):
    """README command 1, after its install step, verbatim, in a copy of the repo."""
    readme = (REPO / "README.md").read_text()
    command = next(line for line in readme.splitlines() if line.startswith("python3 -m venv .venv"))
    jobs = command.split("pip install . && ", 1)[1]
    assert jobs.startswith("odprep ") and jobs.rstrip().endswith("odprep check out/pipeline.config")
    shutil.copytree(REPO / "sample_data", tmp_path / "sample_data")
    bin_dir = Path(sys.executable).parent
    done = subprocess.run(["bash", "-c", jobs], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "\n0 error(s)," in done.stdout
    assert (tmp_path / "out" / "train.record").stat().st_size > 0
    assert (tmp_path / "out" / "val.record").stat().st_size > 0


def test_the_wheel_carries_every_module_and_runs_readme_command_1(tmp_path):
    """What `pip install .` installs, not the editable tree: a module missing from the wheel's
    package list imports here and fails on a user's machine. Builds the wheel from a copy of
    the project, runs README command 1's jobs with only the wheel's odprep on the path."""
    project = tmp_path / "project"
    project.mkdir()
    for name in ("odprep", "templates"):
        shutil.copytree(REPO / name, project / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, project / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", ".",
                    "-w", tmp_path / "dist"], cwd=project, check=True, capture_output=True, timeout=300)
    wheel = next((tmp_path / "dist").glob("*.whl"))
    unpacked = tmp_path / "site"
    shutil.unpack_archive(wheel, unpacked, "zip")
    shipped = {p.relative_to(unpacked).as_posix() for p in unpacked.rglob("*.py")}
    source = {p.relative_to(REPO).as_posix() for p in (REPO / "odprep").rglob("*.py")}
    assert source <= shipped, f"modules missing from the wheel: {sorted(source - shipped)}"
    assert {p.name for p in (unpacked / "odprep" / "templates").iterdir()} >= \
        {p.name for p in (REPO / "templates").glob("*.config")}
    readme = (REPO / "README.md").read_text()
    command = next(line for line in readme.splitlines() if line.startswith("python3 -m venv .venv"))
    jobs = command.split("pip install . && ", 1)[1].replace("odprep ", f"{sys.executable} -m odprep ")
    shutil.copytree(REPO / "sample_data", tmp_path / "run" / "sample_data")
    done = subprocess.run(["bash", "-c", jobs], cwd=tmp_path / "run", capture_output=True, text=True,
                          timeout=300, env={**os.environ, "PYTHONPATH": str(unpacked)})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "\n0 error(s)," in done.stdout
