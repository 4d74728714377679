"""Huge single inputs in bounded memory: a CSV of millions of rows, a VOC XML of ~200 MB,
and a label map holding a 10 MB string. Prints wall time and peak memory (PSS over the
process tree) for each.

    python benchmarks/big_inputs.py --csv-rows 5000000 --voc-objects 1300000
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import measure  # noqa: E402

ODPREP = [sys.executable, "-m", "odprep"]


def make_images(folder: Path, count: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    Image.effect_noise((640, 480), 40).convert("RGB").save(buffer, format="JPEG", quality=85)
    pool = [folder / f"one{k}.jpg" for k in range(count // 60_000 + 1)]  # a file takes 65000 links
    for copy in pool:
        copy.write_bytes(buffer.getvalue())
    for i in range(count):
        os.link(pool[i % len(pool)], folder / f"{i:05d}.jpg")


def big_csv(root: Path, rows: int, images: int) -> Path:
    path = root / "big.csv"
    with open(path, "w") as handle:
        handle.write("filename,width,height,class,xmin,ymin,xmax,ymax\n")
        for i in range(rows):
            x = i % 600
            handle.write(f"{i % images:05d}.jpg,640,480,c{i % 7},{x},{x % 400},{x + 30},{x % 400 + 40}\n")
    return path


def big_voc(root: Path, objects: int) -> Path:
    folder = root / "voc"
    folder.mkdir()
    with open(folder / "big.xml", "w") as handle:
        handle.write("<annotation><filename>00000.jpg</filename><size><width>640</width>"
                     "<height>480</height><depth>3</depth></size>\n")
        for i in range(objects):
            x = i % 600
            handle.write(f"<object><name>c{i % 7}</name><pose>Unspecified</pose><truncated>0</truncated>"
                         f"<difficult>0</difficult><bndbox><xmin>{x}</xmin><ymin>{x % 400}</ymin>"
                         f"<xmax>{x + 30}</xmax><ymax>{x % 400 + 40}</ymax></bndbox></object>\n")
        handle.write("</annotation>\n")
    return folder


def many_voc(root: Path, count: int) -> Path:
    """``count`` small VOC files (1-4 objects) and as many images, hard links to one JPEG."""
    folder = root / f"voc_{count}"
    (folder / "Annotations").mkdir(parents=True)
    (folder / "images").mkdir()
    (folder / "pool").mkdir()
    buffer = io.BytesIO()  # small, so that 200k records fit on the disk: memory is measured here
    Image.effect_noise((160, 120), 40).convert("RGB").save(buffer, format="JPEG", quality=75)
    pool = [folder / "pool" / f"{k}.jpg" for k in range(count // 60_000 + 1)]  # a file takes 65000 links
    for copy in pool:
        copy.write_bytes(buffer.getvalue())
    for i in range(count):
        os.link(pool[i % len(pool)], folder / "images" / f"{i:06d}.jpg")
        objects = "".join(f"<object><name>c{(i + k) % 20}</name><difficult>0</difficult><bndbox>"
                          f"<xmin>{10 + k}</xmin><ymin>20</ymin><xmax>{100 + k}</xmax><ymax>110</ymax>"
                          f"</bndbox></object>" for k in range(1 + i % 4))
        (folder / "Annotations" / f"{i:06d}.xml").write_text(
            f"<annotation><filename>{i:06d}.jpg</filename><size><width>160</width><height>120</height>"
            f"<depth>3</depth></size>{objects}</annotation>\n")
    return folder


def big_oid(root: Path, rows: int, images: int) -> tuple[Path, Path]:
    """An Open Images V7-style box CSV of ``rows`` rows over ``images`` images, and its
    descriptions file (the V7 train boxes file has about 15 million rows)."""
    boxes, descriptions = root / "oid-boxes.csv", root / "oid-classes.csv"
    descriptions.write_text("".join(f"/m/0c{k:03d},class {k}\n" for k in range(600)))
    with open(boxes, "w") as handle:
        handle.write("ImageID,Source,LabelName,Confidence,XMin,XMax,YMin,YMax,IsOccluded,IsTruncated,"
                     "IsGroupOf,IsDepiction,IsInside\n")
        for i in range(rows):
            x = (i % 500) / 1000
            handle.write(f"{i % images:05d},xclick,/m/0c{i % 600:03d},1,{x:.6f},{x + 0.3:.6f},{x / 2:.6f},"
                         f"{x / 2 + 0.4:.6f},{i % 2},0,{int(i % 97 == 0)},0,0\n")
    return boxes, descriptions


def big_cvat(root: Path, images: int) -> Path:
    """A CVAT for images 1.1 XML of ``images`` images of 4 boxes each (hard links to one JPEG)."""
    make_images(root / "images", images)
    path = root / "annotations.xml"
    with open(path, "w") as handle:
        handle.write("<annotations><version>1.1</version><meta><task><labels>"
                     + "".join(f"<label><name>c{k}</name></label>" for k in range(7))
                     + "</labels></task></meta>\n")
        for i in range(images):
            boxes = "".join(f'<box label="c{(i + k) % 7}" occluded="0" xtl="{10 + k}" ytl="20" xbr="{100 + k}" '
                            f'ybr="110" z_order="0"><attribute name="note">box {k} of image {i}</attribute></box>'
                            for k in range(4))
            handle.write(f'<image id="{i}" name="{i:05d}.jpg" width="640" height="480">{boxes}</image>\n')
        handle.write("</annotations>\n")
    return path


def report(name: str, command: list) -> None:
    command = [str(c) for c in command]
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - started
    _, peak = measure(command, sample=True, check=False)
    tail = (result.stderr or result.stdout).strip().splitlines()[-1:]
    print(f"| {name} | {wall:.1f} | {peak / 2**20:.0f} | exit {result.returncode}: {tail[0][:90] if tail else ''} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--csv-rows", type=int, default=5_000_000)
    parser.add_argument("--csv-images", type=int, default=2000)
    parser.add_argument("--voc-objects", type=int, default=1_300_000)
    parser.add_argument("--voc-files", type=int, nargs="*", default=[],
                        help="also convert this many small VOC files (memory must stay flat), "
                             "e.g. 20000 200000")
    parser.add_argument("--cvat-images", type=int, nargs="*", default=[],
                        help="only run cvat2tfr on one CVAT XML over this many images (memory must stay "
                             "flat), e.g. 20000 200000")
    parser.add_argument("--oid-rows", type=int, default=0,
                        help="only run oid2tfr on an Open Images box CSV of this many rows")
    args = parser.parse_args()
    if args.oid_rows:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            make_images(root / "images", args.csv_images)
            boxes, descriptions = big_oid(root, args.oid_rows, args.csv_images)
            print(f"Open Images box CSV {boxes.stat().st_size / 1e6:.0f} MB ({args.oid_rows} rows)")
            print("| input | wall (s) | peak memory (MiB) | outcome |\n|---|---:|---:|---|")
            report("oid2tfr, big box CSV", [*ODPREP, "oid2tfr", boxes, "--images-dir", root / "images",
                                            "--class-descriptions", descriptions,
                                            "-o", root / "out" / "x.record", "-q"])
        return
    if args.cvat_images:
        print("| input | wall (s) | peak memory (MiB) | outcome |\n|---|---:|---:|---|")
        for count in args.cvat_images:
            with tempfile.TemporaryDirectory() as tmp:
                path = big_cvat(Path(tmp), count)
                report(f"cvat2tfr, {path.stat().st_size / 1e6:.0f} MB XML, {count} images",
                       [*ODPREP, "cvat2tfr", path, "--images-dir", Path(tmp) / "images", "-o",
                        Path(tmp) / "out" / "x.record", "--num-shards", "8", "-q"])
        return
    if args.voc_files:
        with tempfile.TemporaryDirectory() as tmp:
            print("| input | wall (s) | peak memory (MiB) | outcome |\n|---|---:|---:|---|")
            for count in args.voc_files:
                folder = many_voc(Path(tmp), count)
                for extra in ([], ["--skip-invalid"]):
                    report(f"voc2tfr, {count} files {' '.join(extra)}",
                           [*ODPREP, "voc2tfr", folder / "Annotations", "--images-dir", folder / "images",
                            "-o", Path(tmp) / f"out{count}" / "x.record", "--num-shards", "16", "-q", *extra])
        return
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_images(root / "images", args.csv_images)
        csv_path = big_csv(root, args.csv_rows, args.csv_images)
        voc = big_voc(root, args.voc_objects)
        lm = root / "lm.pbtxt"
        lm.write_text('item { id: 1 name: "' + "a" * 10_000_000 + '" }\nitem { id: 1 name: "b" }\n')
        print(f"CSV {csv_path.stat().st_size / 1e6:.0f} MB ({args.csv_rows} rows), VOC XML "
              f"{(voc / 'big.xml').stat().st_size / 1e6:.0f} MB ({args.voc_objects} objects in one image)")
        print("| input | wall (s) | peak memory (MiB) | outcome |\n|---|---:|---:|---|")
        report("csv2tfr, big CSV", [*ODPREP, "csv2tfr", csv_path, "--images-dir", root / "images",
                                    "-o", root / "out_csv" / "x.record", "-q"])
        report("voc2tfr, one huge XML", [*ODPREP, "voc2tfr", voc, "--images-dir", root / "images",
                                         "-o", root / "out_voc" / "x.record", "-q"])
        report("label map with a 10 MB string", [*ODPREP, "make-labelmap", "--merge", lm, voc,
                                                 "-o", root / "lm2.pbtxt"])


if __name__ == "__main__":
    main()
