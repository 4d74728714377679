"""Side-by-side benchmark: odprep against the alternatives, in one run.

For each dataset size it runs, alternating, several rounds of:
  odprep voc2tfr / coco2tfr (boxes) / coco2tfr --include-masks,
  (a) the tutorial-style single-process TF script (benchmarks/tutorial_voc_to_tfrecord.py),
  (b) Model Garden's create_coco_tf_record with --num_processes = cores, boxes and masks,
  (c) the I/O limit: cat images/* | sha256sum,
and prints median wall time, ratios and peak memory (PSS summed over the process
tree, sampled every 10 ms). With --coco-scale, coco2tfr also runs on synthesized
train2017-sized JSONs (benchmarks/coco_scale.py).

    python benchmarks/run.py --sizes 2000 20000 --rounds 3
    python benchmarks/run.py --sizes 2000 --coco-scale 20000 118287
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
CORES = len(os.sched_getaffinity(0))


def ensure_dataset(root: Path, size: int) -> Path:
    folder = root / f"n{size}"
    if not (folder / "instances.json").exists():
        subprocess.run([sys.executable, str(HERE / "make_dataset.py"), str(size), str(folder)], check=True)
    return folder


def tree_memory(process: psutil.Process) -> int:
    total = 0
    for proc in [process, *process.children(recursive=True)]:
        try:
            info = proc.memory_full_info()
            total += getattr(info, "pss", info.rss)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return total


def measure(command: list[str] | str, shell: bool = False, sample: bool = False,
            check: bool = True) -> tuple[float, int]:
    """(wall seconds, peak memory bytes) of one run. Memory is sampled only when asked,
    because reading /proc/*/smaps steals CPU from the run being timed."""
    started = time.perf_counter()
    proc = subprocess.Popen(command, shell=shell, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    peak = 0
    if sample:
        watcher = psutil.Process(proc.pid)
        while proc.poll() is None:
            try:
                peak = max(peak, tree_memory(watcher))
            except psutil.NoSuchProcess:
                break
            time.sleep(0.01)
    proc.wait()
    wall = time.perf_counter() - started
    if check and proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {command}\n{proc.stderr.read().decode()[-2000:]}")
    return wall, peak


def commands(data: Path, out: Path, odprep: str, garden: bool) -> dict[str, tuple[list[str] | str, bool]]:
    images, ann, coco = data / "images", data / "Annotations", data / "instances.json"
    garden_cmd = [sys.executable, "-m", "official.vision.data.create_coco_tf_record",
                  f"--image_dir={images}", f"--object_annotations_file={coco}", "--num_shards=1",
                  f"--num_processes={CORES}"]
    table = {
        "odprep voc2tfr": ([odprep, "voc2tfr", str(ann), "--images-dir", str(images), "-o",
                            str(out / "odprep_voc" / "train.record"), "-q"], False),
        "odprep coco2tfr": ([odprep, "coco2tfr", str(coco), "--images-dir", str(images), "-o",
                             str(out / "odprep_coco" / "train.record"), "-q"], False),
        "odprep coco2tfr --include-masks": ([odprep, "coco2tfr", str(coco), "--images-dir", str(images),
                                             "-o", str(out / "odprep_mask" / "train.record"),
                                             "--include-masks", "-q"], False),
        "(a) tutorial TF script": ([sys.executable, str(HERE / "tutorial_voc_to_tfrecord.py"), str(ann),
                                    str(images), str(out / "tutorial" / "train.record")], False),
        "(c) cat images | sha256sum": (f"cat {images}/* | sha256sum > /dev/null", True),
    }
    if garden:
        table["(b) Model Garden boxes"] = (garden_cmd + [f"--output_file_prefix={out / 'garden' / 'b'}"],
                                           False)
        table["(b) Model Garden masks"] = (garden_cmd + ["--include_masks",
                                                         f"--output_file_prefix={out / 'garden' / 'm'}"],
                                           False)
    return table


def run_size(root: Path, size: int, rounds: int, garden: bool) -> dict:
    data = ensure_dataset(root, size)
    out = root / f"out{size}"
    odprep = shutil.which("odprep") or "odprep"
    table = commands(data, out, odprep, garden)
    times: dict[str, list[float]] = {name: [] for name in table}
    peaks: dict[str, int] = dict.fromkeys(table, 0)
    subprocess.run(f"cat {data / 'images'}/* > /dev/null", shell=True, check=True)  # warm the cache
    def fresh_output() -> None:
        shutil.rmtree(out, ignore_errors=True)
        for sub in ("odprep_voc", "odprep_coco", "odprep_mask", "tutorial", "garden"):
            (out / sub).mkdir(parents=True, exist_ok=True)

    for round_index in range(rounds):
        order = list(table) if round_index % 2 == 0 else list(reversed(table))
        for name in order:
            fresh_output()
            wall, _ = measure(*table[name])
            times[name].append(wall)
            print(f"  n={size} round {round_index + 1} {name}: {wall:.2f} s", file=sys.stderr)
    for name in table:  # one more run each, sampled, for peak memory (PSS over the tree)
        fresh_output()
        _, peaks[name] = measure(*table[name], sample=True)
        print(f"  n={size} memory {name}: {peaks[name] / 2**20:.0f} MiB", file=sys.stderr)
    return {name: {"median_s": statistics.median(t), "runs_s": t, "peak_mib": peaks[name] / 2**20}
            for name, t in times.items()}


def report(results: dict[int, dict]) -> str:
    pairs = [("odprep voc2tfr", "(a) tutorial TF script", "faster than (a)"),
             ("odprep coco2tfr", "(b) Model Garden boxes", "faster than (b) boxes"),
             ("odprep coco2tfr --include-masks", "(b) Model Garden masks", "faster than (b) masks"),
             ("odprep voc2tfr", "(c) cat images | sha256sum", "of the I/O limit (c)")]
    lines = []
    for size, rows in results.items():
        lines += [f"\n### N = {size} ({CORES} cores)", "", "| command | median wall (s) | peak memory (MiB) |",
                  "|---|---:|---:|"]
        lines += [f"| {name.replace('|', chr(92) + '|')} | {r['median_s']:.2f} | {r['peak_mib']:.0f} |"
                  for name, r in rows.items()]
        lines += ["", "| ratio | value |", "|---|---:|"]
        for ours, theirs, label in pairs:
            if ours in rows and theirs in rows:
                if "I/O" in label:
                    value = rows[ours]["median_s"] / rows[theirs]["median_s"]
                    lines.append(f"| odprep voc2tfr time / I/O limit | {value:.2f}x |")
                else:
                    value = rows[theirs]["median_s"] / rows[ours]["median_s"]
                    lines.append(f"| {ours} {label} | {value:.1f}x |")
    return "\n".join(lines)


def run_shared(shared: Path) -> str:
    """odprep on the real datasets in ../shared/datasets: one timed run each."""
    odprep = shutil.which("odprep") or "odprep"
    out = Path(tempfile.mkdtemp(prefix="odprep-shared-"))
    jobs = {
        "raccoon VOC": ["voc2tfr", shared / "raccoon" / "annotations", "--images-dir",
                        shared / "raccoon" / "images"],
        "BCCD VOC (--skip-invalid)": ["voc2tfr", shared / "bccd" / "BCCD" / "Annotations", "--images-dir",
                                      shared / "bccd" / "BCCD" / "JPEGImages", "--skip-invalid"],
        "BCCD test.csv": ["csv2tfr", shared / "bccd" / "test.csv", "--images-dir",
                          shared / "bccd" / "BCCD" / "JPEGImages", "--columns", "class=cell_type",
                          "--skip-invalid"],
        "coco_tiny train, masks": ["coco2tfr", shared / "coco_tiny" / "annotations" / "instances_train2017.json",
                                   "--images-dir", shared / "coco_tiny" / "train2017", "--include-masks"],
        "coco_tiny val, masks": ["coco2tfr", shared / "coco_tiny" / "annotations" / "instances_val2017.json",
                                 "--images-dir", shared / "coco_tiny" / "val2017", "--include-masks"],
    }
    lines = ["\n### Real datasets (../shared/datasets)", "", "| dataset | wall (s) | summary |", "|---|---:|---|"]
    for index, (name, args) in enumerate(jobs.items()):
        started = time.perf_counter()
        done = subprocess.run([odprep, *map(str, args), "-o", str(out / str(index) / "x.record"), "-q"],
                              capture_output=True, text=True)
        wall = time.perf_counter() - started
        summary = "; ".join(line.strip() for line in done.stdout.splitlines()
                            if line.startswith(("images written", "objects written", "skipped")))
        lines.append(f"| {name} | {wall:.2f} | {summary or done.stderr.strip()} |")
    shutil.rmtree(out, ignore_errors=True)
    return "\n".join(lines)


def run_coco_scale(root: Path, sizes: list[int], garden_up_to: int) -> str:
    """coco2tfr on synthesized train2017-like JSONs (benchmarks/coco_scale.py): one sampled
    run each, boxes and masks, and Model Garden's converter up to ``garden_up_to`` images."""
    odprep = shutil.which("odprep") or "odprep"
    lines = ["\n### COCO at train2017 scale (synthesized; one run each)", "",
             "| images | annotations | JSON (MB) | command | wall (s) | peak memory (MiB, PSS) |",
             "|---:|---:|---:|---|---:|---:|"]
    for size in sizes:
        data = root / f"coco_scale_{size}"
        if not (data / "instances.json").exists():
            subprocess.run([sys.executable, str(HERE / "coco_scale.py"), str(size), str(data)], check=True)
        coco, images, out = data / "instances.json", data / "images", data / "out"
        objects = sum(1 for _ in json.loads(coco.read_bytes())["annotations"])
        runs = {"odprep coco2tfr": [odprep, "coco2tfr", str(coco), "--images-dir", str(images), "-o",
                                    str(out / "train.record"), "--num-shards", "16", "-q"]}
        runs["odprep coco2tfr --include-masks"] = runs["odprep coco2tfr"] + ["--include-masks"]
        if size <= garden_up_to:
            garden = [sys.executable, "-m", "official.vision.data.create_coco_tf_record",
                      f"--image_dir={images}", f"--object_annotations_file={coco}", "--num_shards=16",
                      f"--num_processes={CORES}", f"--output_file_prefix={out / 'garden'}"]
            runs["(b) Model Garden boxes"] = garden
            runs["(b) Model Garden masks"] = garden + ["--include_masks"]
        for name, command in runs.items():
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir(parents=True)
            wall, peak = measure(command, sample=True)
            print(f"  coco scale n={size} {name}: {wall:.1f} s, {peak / 2**20:.0f} MiB", file=sys.stderr)
            lines.append(f"| {size} | {objects} | {coco.stat().st_size / 1e6:.0f} | {name} | {wall:.1f} | "
                         f"{peak / 2**20:.0f} |")
        shutil.rmtree(out, ignore_errors=True)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=HERE / "_work")
    parser.add_argument("--no-garden", action="store_true", help="skip Model Garden (not installed)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--shared", type=Path, nargs="?", const=HERE.parent.parent / "shared" / "datasets",
                        help="also convert the real datasets there (default ../shared/datasets)")
    parser.add_argument("--coco-scale", type=int, nargs="*", metavar="IMAGES",
                        help="also run the train2017-scale COCO case at these sizes (e.g. 20000 118287)")
    parser.add_argument("--garden-up-to", type=int, default=20000,
                        help="run Model Garden's converter in the COCO-scale case up to this size")
    args = parser.parse_args()
    results = {size: run_size(args.workdir, size, args.rounds, not args.no_garden) for size in args.sizes}
    print(report(results))
    if args.shared is not None and args.shared.is_dir():
        print(run_shared(args.shared))
    if args.coco_scale:
        print(run_coco_scale(args.workdir, args.coco_scale, args.garden_up_to if not args.no_garden else 0))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
