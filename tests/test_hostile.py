"""Hostile and broken input through the CLI: one line, exit 2, no traceback, nothing written.

Each case builds its files in a scratch folder; the output folder must stay empty. Cases
that could crash the interpreter (C code in pycocotools) run in a subprocess."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from odprep.tfrecord import frame

from .conftest import REPO, SAMPLE
from .helpers import VOC_TEMPLATE, assert_bad_input, leftovers, run_cli, voc_object


def png_header(width: int, height: int) -> bytes:
    """A PNG that claims a size in its header (the pixels are missing: a decompression bomb)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) \
        + chunk(b"IEND", b"")


def jpeg_header(width: int, height: int) -> bytes:
    """A real JPEG whose frame header is rewritten to claim a size (as a decompression bomb
    does); its tables and end marker stay, so readers identify it as a JPEG."""
    data = bytearray((SAMPLE / "images" / "cat_dog.jpg").read_bytes())
    sof = next(i for i in range(2, len(data) - 1) if data[i] == 0xFF and data[i + 1] in (0xC0, 0xC1, 0xC2))
    data[sof + 5:sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


@pytest.fixture
def voc(tmp_path):
    """A VOC case builder: (xml text, {image name: bytes}) -> (annotations, images, out folder)."""
    def build(xml: str, files: dict[str, bytes | None] | None = None):
        ann, imgs, out = tmp_path / "ann", tmp_path / "imgs", tmp_path / "out"
        for folder in (ann, imgs, out):
            folder.mkdir(exist_ok=True)
        (ann / "a.xml").write_text(xml)
        default = {"a.jpg": (SAMPLE / "images" / "cat_dog.jpg").read_bytes()}
        for name, data in (default if files is None else files).items():
            if data is not None:
                (imgs / name).write_bytes(data)
        return ann, imgs, out
    return build


def voc_xml(filename="a.jpg", width="96", height="64", objects=None, extra=""):
    return VOC_TEMPLATE.format(filename=filename, width=width, height=height,
                               objects=(objects if objects is not None else voc_object()) + extra)


VOC_CASES = {
    "width nan": (voc_xml(width="nan"), "<size><width> 'nan' is not a finite number"),
    "width inf": (voc_xml(width="inf"), "not a finite number"),
    "width 1e400": (voc_xml(width="1e400"), "not a finite number"),
    "height negative": (voc_xml(height="-64"), "not a whole number of pixels"),
    "difficult -7": (voc_xml(objects=voc_object(extra="<difficult>-7</difficult>")),
                     "<difficult> is '-7', expected 0 or 1"),
    "difficult 0.9": (voc_xml(objects=voc_object(extra="<difficult>0.9</difficult>")), "expected 0 or 1"),
    "box nan": (voc_xml(objects=voc_object(box=("nan", 2, 30, 40))), "'nan' is not a finite number"),
    "absolute filename": (voc_xml(filename="/etc/hostname"), "lies outside the images folder"),
    "dotdot filename": (voc_xml(filename="../secret.jpg"), "lies outside the images folder"),
    "not xml": ("<annotation><object>", "malformed XML"),
    "wrong root": ("<html/>", "root element is <html>"),
    "entity bomb": ('<?xml version="1.0"?><!DOCTYPE a [<!ENTITY a "aaaaaaaaaa">'
                    '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><annotation><filename>&b;</filename>'
                    "</annotation>", "the XML declares a DTD"),
}


@pytest.mark.parametrize("case", sorted(VOC_CASES))
def test_hostile_voc(voc, case):
    xml, fragment = VOC_CASES[case]
    ann, imgs, out = voc(xml)
    (imgs.parent / "secret.jpg").write_bytes((SAMPLE / "images" / "cat_dog.jpg").read_bytes())
    result = run_cli("voc2tfr", ann, "--images-dir", imgs, "-o", out / "x.record")
    assert_bad_input(result, fragment)
    assert leftovers(out) == []


def test_outside_images_dir_only_when_allowed(voc):
    ann, imgs, out = voc(voc_xml(filename="../secret.jpg"))
    (imgs.parent / "secret.jpg").write_bytes((SAMPLE / "images" / "cat_dog.jpg").read_bytes())
    result = run_cli("voc2tfr", ann, "--images-dir", imgs, "-o", out / "x.record",
                     "--allow-outside-images-dir")
    assert result.exit_code == 0, result.output


IMAGE_CASES = {
    "png bomb": ({"a.jpg": png_header(30000, 30000)}, "over the limit"),
    "jpeg bomb": ({"a.jpg": jpeg_header(65000, 65000)}, "over the limit"),
    "truncated jpeg": ({"a.jpg": (SAMPLE / "images" / "cat_dog.jpg").read_bytes()[:-600]},
                       "is truncated (the JPEG has no end marker)"),
    "not an image": ({"a.jpg": b"hello"}, "is not an image"),
    "empty file": ({"a.jpg": b""}, "is not an image"),
    "garbage after a jpeg signature": ({"a.jpg": b"\xff\xd8\xff" + os.urandom(300) + b"\xff\xd9"},
                                       "not a readable image"),
}


@pytest.mark.parametrize("case", sorted(IMAGE_CASES))
def test_hostile_images(voc, case):
    files, fragment = IMAGE_CASES[case]
    ann, imgs, out = voc(voc_xml(), files)
    result = run_cli("voc2tfr", ann, "--images-dir", imgs, "-o", out / "x.record")
    assert_bad_input(result, fragment)
    assert leftovers(out) == []


def test_bomb_passes_with_a_raised_pixel_limit_and_reencode_checks_it(voc):
    ann, imgs, out = voc(voc_xml(width="", height=""), {"a.jpg": png_header(30000, 30000)})
    result = run_cli("voc2tfr", ann, "--images-dir", imgs, "-o", out / "x.record", "--max-pixels", "10")
    assert_bad_input(result, "over the limit of 10 pixels")


def test_fifo_and_device_images_are_refused_without_hanging(voc):
    ann, imgs, out = voc(voc_xml(filename="a.jpg"), {})
    os.mkfifo(imgs / "a.jpg")
    result = run_cli("voc2tfr", ann, "--images-dir", imgs, "-o", out / "x.record")
    assert_bad_input(result, "is a FIFO, not a regular file")
    (imgs / "a.jpg").unlink()
    (imgs / "a.jpg").symlink_to("/dev/zero")
    result = run_cli("voc2tfr", ann, "--images-dir", imgs, "-o", out / "x.record")
    assert_bad_input(result, "the image is a device, not a regular file")
    assert leftovers(out) == []


def test_symlink_loops_in_the_images_dir_do_not_stop_the_run(voc):
    ann, imgs, out = voc(voc_xml())
    (imgs / "loop").symlink_to("loop")
    (imgs / "x").symlink_to("y")
    (imgs / "y").symlink_to("x")
    result = run_cli("voc2tfr", ann, "--images-dir", imgs, "-o", out / "x.record")
    assert result.exit_code == 0, result.output


def test_wrong_images_dir_says_how_many_were_found(tmp_path):
    (tmp_path / "empty").mkdir()
    result = run_cli("voc2tfr", SAMPLE / "voc" / "Annotations", "--images-dir", tmp_path / "empty",
                     "-o", tmp_path / "out" / "x.record")
    assert_bad_input(result, "0 of 6 images found under", "Check --images-dir")


def coco(images=None, annotations=None, categories=None, **extra) -> dict:
    return {"images": images if images is not None else
            [{"id": 1, "file_name": "cat_dog.jpg", "width": 96, "height": 64}],
            "annotations": annotations if annotations is not None else
            [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [8, 10, 32, 40], "iscrowd": 0,
              "segmentation": [[8, 10, 40, 10, 40, 50, 8, 50]]}],
            "categories": categories if categories is not None else [{"id": 1, "name": "cat"}], **extra}


def polygon(points) -> dict:
    return coco(annotations=[{"id": 1, "image_id": 1, "category_id": 1, "bbox": [8, 10, 32, 40],
                              "segmentation": [points]}])


COCO_CASES = {
    "string image id": (coco(images=[{"id": "1", "file_name": "cat_dog.jpg"}]),
                        "has id '1' (a string), not an integer"),
    "bool image id": (coco(images=[{"id": True, "file_name": "cat_dog.jpg"}]), "has id True"),
    "list image id": (coco(images=[{"id": [1], "file_name": "cat_dog.jpg"}]), "not an integer"),
    "non-dict image": (coco(images=[7]), "images[0] is int, not an object"),
    "non-list annotations": (coco(annotations={}), "'annotations' is not a list"),
    "duplicate image ids": (coco(images=[{"id": 1, "file_name": "cat_dog.jpg"},
                                         {"id": 1, "file_name": "gray.jpg"}]), "images id 1 is used twice"),
    "duplicate annotation ids": (coco(annotations=[
        {"id": 4, "image_id": 1, "category_id": 1, "bbox": [8, 10, 32, 40]},
        {"id": 4, "image_id": 1, "category_id": 1, "bbox": [8, 10, 32, 40]}]), "annotations id 4 is used twice"),
    "string width": (coco(images=[{"id": 1, "file_name": "cat_dog.jpg", "width": "96", "height": 64}]),
                     "width is '96' (a string), not a whole number of pixels"),
    "string category id": (coco(categories=[{"id": "1", "name": "cat"}]), "not an integer"),
    "string bbox value": (coco(annotations=[{"id": 1, "image_id": 1, "category_id": 1,
                                             "bbox": ["8", 10, 32, 40]}]), "not a finite number"),
    "nan area": (coco(annotations=[{"id": 1, "image_id": 1, "category_id": 1, "bbox": [8, 10, 32, 40],
                                    "area": float("nan")}]), "annotation id 1 (annotations[0]): area holds NaN"),
    "iscrowd 7": (coco(annotations=[{"id": 1, "image_id": 1, "category_id": 1, "bbox": [8, 10, 32, 40],
                                     "iscrowd": 7}]), "iscrowd is 7"),
    "used background id 0": (coco(categories=[{"id": 0, "name": "_background_"}],
                                  annotations=[{"id": 1, "image_id": 1, "category_id": 0,
                                                "bbox": [8, 10, 32, 40]}]), "outside 1..2^31-1"),
    "NUL in file_name": (coco(images=[{"id": 1, "file_name": "cat\u0000dog.jpg"}]), "file_name is"),
    "absolute file_name": (coco(images=[{"id": 1, "file_name": "/etc/hostname"}]), "lies outside"),
    "no images": (coco(images=[], annotations=[]), "no image was written: the input holds no images"),
}
MASK_CASES = {
    "nan polygon": (polygon([8, 10, float("nan"), 10, 40, 50]), "segmentation holds NaN"),
    "huge polygon": (polygon([8, 10, 1e300, 10, 40, 50]), "reaches far outside"),
    "odd polygon": (polygon([8, 10, 40, 10, 40]), "odd number of values"),
    "string polygon": (polygon([8, 10, "40", 10, 40, 50]), "not a list of numbers"),
    "rle bad sum": (coco(annotations=[{"id": 1, "image_id": 1, "category_id": 1, "bbox": [8, 10, 32, 40],
                                       "segmentation": {"size": [64, 96], "counts": [5, 10]}}]),
                    "cover 15 pixels, not the image's 6144"),
    "rle garbage string": (coco(annotations=[{"id": 1, "image_id": 1, "category_id": 1,
                                              "bbox": [8, 10, 32, 40],
                                              "segmentation": {"size": [64, 96], "counts": "~~~~"}}]),
                           "compressed RLE counts"),
    "no segmentation": (coco(annotations=[{"id": 1, "image_id": 1, "category_id": 1,
                                           "bbox": [8, 10, 32, 40]}]), "has no segmentation"),
}


def _run_coco_subprocess(tmp_path, data, *extra):
    """coco2tfr in a child process: a crash in C code must not take pytest with it."""
    instances = tmp_path / "instances.json"
    instances.write_text(json.dumps(data))
    out = tmp_path / "out"
    out.mkdir()
    result = subprocess.run([sys.executable, "-m", "odprep", "coco2tfr", instances, "--images-dir",
                             SAMPLE / "images", "-o", out / "x.record", *extra],
                            capture_output=True, text=True, timeout=60)
    return result, out


@pytest.mark.parametrize("case", sorted(COCO_CASES) + [f"mask: {c}" for c in sorted(MASK_CASES)])
def test_hostile_coco(tmp_path, case):
    masks = case.startswith("mask: ")
    data, fragment = MASK_CASES[case[6:]] if masks else COCO_CASES[case]
    result, out = _run_coco_subprocess(tmp_path, data, *(["--include-masks"] if masks else []))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert fragment in result.stderr, result.stderr
    assert leftovers(out) == []


def test_skip_invalid_skips_an_object_without_segmentation_under_masks(tmp_path):
    data = coco(annotations=[{"id": 1, "image_id": 1, "category_id": 1, "bbox": [8, 10, 32, 40],
                              "segmentation": [[8, 10, 40, 10, 40, 50, 8, 50]]},
                             {"id": 2, "image_id": 1, "category_id": 1, "bbox": [8, 10, 32, 40]}])
    result, out = _run_coco_subprocess(tmp_path, data, "--include-masks", "--skip-invalid")
    assert result.returncode == 0, result.stderr
    assert "skipped objects: 1" in result.stdout and "annotation id 2" in result.stdout


def test_unused_background_category_is_dropped_with_a_warning(tmp_path):
    data = coco(categories=[{"id": 0, "name": "_background_"}, {"id": 1, "name": "cat"}])
    result, out = _run_coco_subprocess(tmp_path, data)
    assert result.returncode == 0, result.stderr
    assert "category 0 ('_background_') is used by no annotation" in result.stdout
    assert "_background_" not in (out / "label_map.pbtxt").read_text()


@pytest.mark.parametrize("text, fragment", [
    (b"\xff\xfe{not utf-8", "not UTF-8"),
    (b"[" * 100_000 + b"]" * 100_000, "not a COCO instances file"),
    (b'{"images": [], "categories": [], "annotations": [' + b"[" * 100_000 + b"]" * 100_001 + b"}",
     "nests too deeply"),
    (b'{"images": [{"id": 1, "file_name": "a.jpg"}], "categories": [{"id": 1, "name": "a"}], '
     b'"annotations": [{"id": 1, "image_id": 1, "segmentation": ' + b"[" * 100_000 + b"]" * 100_000
     + b"}]}", "nests too deeply"),
    (b'{"images": [], "categories": [], "annotations": [1]}', "annotations[0] is int"),
])
def test_unreadable_coco_json(tmp_path, text, fragment):
    (tmp_path / "i.json").write_bytes(text)
    result = run_cli("coco2tfr", tmp_path / "i.json", "--images-dir", SAMPLE / "images", "-o",
                     tmp_path / "out" / "x.record")
    assert_bad_input(result, fragment)


CSV_CASES = {
    "width nan": ("filename,width,height,class,xmin,ymin,xmax,ymax\ncat_dog.jpg,nan,64,cat,1,2,3,4\n",
                  "width 'nan' is not a finite number"),
    "width 1e400": ("filename,width,height,class,xmin,ymin,xmax,ymax\ncat_dog.jpg,1e400,64,cat,1,2,3,4\n",
                    "not a finite number"),
    "NUL in filename": ("filename,class,xmin,ymin,xmax,ymax\ncat\0dog.jpg,cat,1,2,3,4\n", "cat"),
    "box inf": ("filename,class,xmin,ymin,xmax,ymax\ncat_dog.jpg,cat,-inf,2,3,4\n", "line 2"),
    "no rows": ("filename,class,xmin,ymin,xmax,ymax\n", "no annotations found"),
    "all rows bad with skip": ("filename,class,xmin,ymin,xmax,ymax\nnope.jpg,cat,1,2,3,4\n",
                               "no image was written: all 1 image(s) were skipped"),
}


@pytest.mark.parametrize("case", sorted(CSV_CASES))
def test_hostile_csv(tmp_path, case):
    text, fragment = CSV_CASES[case]
    (tmp_path / "a.csv").write_text(text)
    out = tmp_path / "out"
    out.mkdir()
    extra = ["--skip-invalid"] if "skip" in case else []
    result = run_cli("csv2tfr", tmp_path / "a.csv", "--images-dir", SAMPLE / "images", "-o",
                     out / "x.record", *extra)
    assert_bad_input(result, fragment)
    assert leftovers(out) == []


def test_allow_empty_writes_an_empty_file_and_says_so(tmp_path):
    (tmp_path / "a.csv").write_text("filename,class,xmin,ymin,xmax,ymax\nnope.jpg,cat,1,2,3,4\n")
    result = run_cli("csv2tfr", tmp_path / "a.csv", "--images-dir", SAMPLE / "images", "-o",
                     tmp_path / "x.record", "--skip-invalid", "--allow-empty")
    assert result.exit_code == 0 and "images written: 0" in result.output
    assert (tmp_path / "x.record").read_bytes() == b""


def test_an_empty_run_never_replaces_good_records(tmp_path):
    good = tmp_path / "x.record"
    assert run_cli("csv2tfr", SAMPLE / "csv" / "annotations.csv", "--images-dir", SAMPLE / "images",
                   "-o", good).exit_code == 0
    before = good.read_bytes()
    (tmp_path / "a.csv").write_text("filename,class,xmin,ymin,xmax,ymax\nnope.jpg,cat,1,2,3,4\n")
    result = run_cli("csv2tfr", tmp_path / "a.csv", "--images-dir", SAMPLE / "images", "-o", good,
                     "--skip-invalid", "--label-map", tmp_path / "label_map.pbtxt")
    assert result.exit_code == 2 and good.read_bytes() == before


def test_split_lists_that_match_nothing(tmp_path):
    (tmp_path / "lists").mkdir()
    (tmp_path / "lists" / "train.txt").write_text("nothing\n")
    result = run_cli("voc2tfr", SAMPLE / "voc" / "Annotations", "--images-dir", SAMPLE / "images",
                     "-o", tmp_path / "out" / "{split}.record", "--split-from-lists", tmp_path / "lists")
    assert_bad_input(result, "no image was written")
    assert not (tmp_path / "out").exists() or leftovers(tmp_path / "out") == []


def test_output_under_a_regular_file(tmp_path):
    (tmp_path / "file").write_text("x")
    result = run_cli("voc2tfr", SAMPLE / "voc" / "Annotations", "--images-dir", SAMPLE / "images",
                     "-o", tmp_path / "file" / "x.record")
    assert_bad_input(result, "a part of the path is a file, not a folder")


def test_output_path_that_is_a_folder(tmp_path):
    (tmp_path / "x.record").mkdir()
    result = run_cli("voc2tfr", SAMPLE / "voc" / "Annotations", "--images-dir", SAMPLE / "images",
                     "-o", tmp_path / "x.record")
    assert_bad_input(result, "the output path is a folder")


def test_a_full_disk_mid_run_is_one_line_and_leaves_nothing(tmp_path):
    """RLIMIT_FSIZE makes writes past 50 kB fail like a full disk (EFBIG), mid-run."""
    out = tmp_path / "out"
    out.mkdir()
    code = ("import resource, signal; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
            "resource.setrlimit(resource.RLIMIT_FSIZE, (50_000, 50_000)); "
            "from odprep.__main__ import main; main()")
    shutil.copytree(SAMPLE / "images", tmp_path / "imgs")
    for i in range(40):  # enough bytes to pass the limit
        shutil.copy(SAMPLE / "images" / "cat_dog.jpg", tmp_path / "imgs" / f"c{i}.jpg")
    (tmp_path / "a.csv").write_text("filename,class,xmin,ymin,xmax,ymax\n" + "".join(
        f"c{i}.jpg,cat,1,2,30,40\n" for i in range(40)))
    result = subprocess.run([sys.executable, "-c", code, "csv2tfr", tmp_path / "a.csv", "--images-dir",
                             tmp_path / "imgs", "-o", out / "x.record", "--workers", "1"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr and "cannot write the records: File too large" in result.stderr
    assert leftovers(out) == []


TFRECORD_CASES = {
    "length 2^63": (struct.pack("<Q", 2**63) + b"\0" * 8,),
    "garbage": (os.urandom(64),),
}


@pytest.mark.parametrize("case", sorted(TFRECORD_CASES))
def test_hostile_tfrecords(tmp_path, case):
    import google_crc32c

    from odprep.tfrecord import _U32, _mask

    data = TFRECORD_CASES[case][0]
    if case == "length 2^63":  # a valid length CRC, so the length itself is believed
        length = data[:8]
        data = length + _U32.pack(_mask(google_crc32c.value(length)))
    path = tmp_path / "bad.record"
    path.write_bytes(frame(b"not an example") + data)
    result = run_cli("validate", path)
    assert result.exit_code == 1 and "Traceback" not in result.output and "framing" in result.output
    assert_bad_input(run_cli("inspect", path), "bad.record")


def test_validate_names_folders_and_fifos(tmp_path):
    assert_bad_input(run_cli("validate", tmp_path), "is a folder, not a regular file")
    os.mkfifo(tmp_path / "pipe")
    assert_bad_input(run_cli("validate", tmp_path / "pipe"), "is a FIFO, not a regular file")
    (tmp_path / "empty.record").write_bytes(b"")
    result = run_cli("validate", tmp_path / "empty.record")
    assert result.exit_code == 1 and "records-empty" in result.output


LABEL_MAP_CASES = {
    "unterminated list": ("[a", "'[' is never closed"),
    "deep nesting": ("item " + "{ a " * 500 + "}" * 500, "nest deeper than 100"),
    "id 2^31": ('item { id: 2147483648 name: "a" }', "does not fit in 32 bits"),
    "quoted id": ("item { id: '1' name: 'a' }", "id must be a number"),
    "unquoted name": ("item { id: 1 name: cat }", "name must be a quoted string"),
    "id on line 2": ('item {\n  id: 0\n  name: "x"\n}', "line 2: id 0"),
    "huge string": ('item { id: 1 name: "' + "a" * 10_000_000 + '" } junk', "line 1"),
}


@pytest.mark.parametrize("case", sorted(LABEL_MAP_CASES))
def test_hostile_label_maps(tmp_path, case):
    text, fragment = LABEL_MAP_CASES[case]
    (tmp_path / "lm.pbtxt").write_text(text)
    out = tmp_path / "out"
    out.mkdir()
    result = run_cli("voc2tfr", SAMPLE / "voc" / "Annotations", "--images-dir", SAMPLE / "images",
                     "-o", out / "x.record", "--label-map", tmp_path / "lm.pbtxt")
    assert_bad_input(result, fragment)
    assert len(result.output) < 500
    assert leftovers(out) == []


def test_hostile_configs(tmp_path):
    (tmp_path / "deep.config").write_text("model " + "{ a " * 2000 + "}" * 2000)
    assert_bad_input(run_cli("patch-config", tmp_path / "deep.config", "--num-classes", "3", "-o",
                             tmp_path / "o.config"), "nest deeper than 100")
    assert_bad_input(run_cli("check", tmp_path / "deep.config"), "nest deeper than 100")
    assert not (tmp_path / "o.config").exists()


def test_in_place_keeps_mode_patches_through_links_and_never_overwrites_a_backup(tmp_path):
    real = tmp_path / "real.config"
    shutil.copy(SAMPLE / "configs" / "pipeline.config", real)
    original = real.read_text()
    real.chmod(0o600)
    link = tmp_path / "link.config"
    link.symlink_to(real)
    assert run_cli("patch-config", link, "--num-classes", "7", "--in-place").exit_code == 0
    assert link.is_symlink() and "num_classes: 7" in real.read_text()
    assert (real.stat().st_mode & 0o777) == 0o600
    backup = tmp_path / "real.config.bak"
    assert backup.read_text() == original and (backup.stat().st_mode & 0o777) == 0o600
    assert run_cli("patch-config", link, "--num-classes", "8", "--in-place").exit_code == 0
    assert backup.read_text() == original  # the first backup stays
    assert "num_classes: 7" in (tmp_path / "real.config.bak.1").read_text()


def test_concurrent_run_never_replaces_a_different_label_map(tmp_path, monkeypatch):
    """A different map that appears at the output while a run is writing stops the commit."""
    import odprep.conversion as conversion
    from odprep.fileio import stage_text as real_stage

    out = tmp_path / "out"

    def stage_then_race(target, text):
        staged = real_stage(target, text)
        Path(target).write_text('item { id: 1 name: "other" }\n')  # the other run's map lands
        return staged

    monkeypatch.setattr(conversion, "stage_text", stage_then_race)
    result = run_cli("voc2tfr", SAMPLE / "voc" / "Annotations", "--images-dir", SAMPLE / "images",
                     "-o", out / "x.record")
    assert_bad_input(result, "a different file appeared here")
    assert sorted(p.name for p in out.iterdir()) == ["label_map.pbtxt"]
    assert "other" in (out / "label_map.pbtxt").read_text()


def test_commit_is_all_or_nothing_when_one_destination_fails(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "x.record-00001-of-00002").mkdir()  # the second shard cannot be written
    result = run_cli("voc2tfr", SAMPLE / "voc" / "Annotations", "--images-dir", SAMPLE / "images",
                     "-o", out / "x.record", "--num-shards", "2")
    assert_bad_input(result, "the output path is a folder")
    assert sorted(p.name for p in out.iterdir()) == ["x.record-00001-of-00002"]


def test_preview_of_a_bomb_is_refused_and_writes_nothing(tmp_path):
    from odprep import keys, proto

    features = proto.Features()
    features.feature[keys.IMAGE_FILENAME].bytes_list.value.append(b"bomb.png")
    features.feature[keys.IMAGE_WIDTH].int64_list.value.append(30000)
    features.feature[keys.IMAGE_HEIGHT].int64_list.value.append(30000)
    example = b"".join(proto.example_parts(features, keys.IMAGE_ENCODED, png_header(30000, 30000)))
    good = (SAMPLE / "images" / "cat_dog.jpg").read_bytes()
    fine = b"".join(proto.example_parts(proto.Features(), keys.IMAGE_ENCODED, good))
    (tmp_path / "x.record").write_bytes(frame(fine) + frame(example))
    result = run_cli("inspect", tmp_path / "x.record", "--preview", tmp_path / "preview")
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "over the limit" in result.output.strip().splitlines()[-1]  # after the statistics
    assert list((tmp_path / "preview").iterdir()) == []
    validation = run_cli("validate", tmp_path / "x.record")
    assert validation.exit_code == 1 and "image-too-large" in validation.output


def _alias_bomb(levels: int = 11) -> str:
    """About a kilobyte of anchors, each level ten aliases of the one before ("billion laughs")."""
    names = [f"l{i}" for i in range(levels + 1)]
    text = f"{names[0]}: &{names[0]} [x, x, x, x, x, x, x, x, x, x]\n"
    for previous, name in zip(names, names[1:], strict=False):
        text += f"{name}: &{name} [" + ", ".join([f"*{previous}"] * 10) + "]\n"
    return text


@pytest.mark.parametrize("command, body", [
    ("check", "task:\n  model:\n    num_classes: *l11\n"),
    ("patch-config", "task:\n  model:\n    num_classes: 3\n"),
    ("yolo2tfr", "path: *l11\nnames: [a]\ntrain: images\n"),
])
def test_yaml_alias_bombs_are_refused_at_once(tmp_path, command, body):
    name = "data.yaml" if command == "yolo2tfr" else "exp.yaml"
    (tmp_path / name).write_text(_alias_bomb() + body)
    args = {"check": [tmp_path / name], "patch-config": [tmp_path / name, "--num-classes", "3", "-o",
                                                         tmp_path / "out.yaml"],
            "yolo2tfr": [tmp_path / name, "-o", tmp_path / "{split}.record"]}[command]
    done = subprocess.run([sys.executable, "-m", "odprep", command, *map(str, args)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "aliases expand to more than" in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


@pytest.mark.parametrize("value, fragment", [("[a, b]", "is a list, not a path"), ("5", "is a number, not a path")])
def test_a_model_garden_path_of_the_wrong_type(tmp_path, value, fragment):
    text = (REPO / "templates" / "retinanet_resnet18_fpn_256.yaml").read_text()
    (tmp_path / "exp.yaml").write_text(text.replace("  init_checkpoint: ''", f"  init_checkpoint: {value}"))
    assert_bad_input(run_cli("check", tmp_path / "exp.yaml"), "task.init_checkpoint", fragment)


def test_config_paths_must_be_utf8_and_model_garden_patterns_comma_free(tmp_path):
    pipeline = REPO / "templates" / "ssd_mobilenet_v2_fpnlite_320.config"
    done = subprocess.run([sys.executable, "-m", "odprep", "patch-config", str(pipeline), "--train-input",
                           os.fsdecode(b"caf\xe9.record"), "-o", str(tmp_path / "p.config")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "not valid UTF-8" in done.stderr
    experiment = REPO / "templates" / "retinanet_resnet18_fpn_256.yaml"
    assert_bad_input(run_cli("patch-config", experiment, "--train-input", "a.record,b.record", "-o",
                             tmp_path / "e.yaml"), "holds a comma", "Model Garden splits input_path")
    assert list(tmp_path.iterdir()) == []


def test_a_coco_json_that_is_not_utf8(tmp_path):
    data = json.dumps(coco()).replace("cat_dog.jpg", "caf\u00e9.jpg").encode("latin-1")
    (tmp_path / "x.json").write_bytes(data)
    assert_bad_input(run_cli("coco2tfr", tmp_path / "x.json", "--images-dir", SAMPLE / "images", "-o",
                             tmp_path / "out" / "x.record"), "not UTF-8", "Save the file as UTF-8")
    assert not (tmp_path / "out").exists()


def _naive_size(node) -> int:
    if isinstance(node, dict):
        return 1 + sum(_naive_size(k) + _naive_size(v) for k, v in node.items())
    if isinstance(node, list):
        return 1 + sum(_naive_size(v) for v in node)
    return 1


@settings(max_examples=200, deadline=None)
@given(st.recursive(st.integers(0, 3), lambda inner: st.lists(inner, max_size=4), max_leaves=20),
       st.integers(1, 4))
def test_the_alias_measure_equals_writing_the_aliases_out(tree, repeats):
    """Shared nodes (what YAML aliases load as) count once per reference, as if expanded."""
    from odprep.yamlsize import expanded_size

    document = {"a": tree, "b": [tree] * repeats, "c": {"d": [tree, [tree]]}}
    assert expanded_size(document) == min(_naive_size(document), 100_001)


@given(st.text(alphabet=st.sampled_from(list("abcdefghijklmnopqrstuvwxyz_:'\"# \t/.*,")), max_size=300))
def test_config_path_lines_parse_without_raising(text):
    from odprep.cli import missing_paths

    for number, key, value in missing_paths(text.replace("\t", "\n")):
        assert number >= 1 and key and "\n" not in value


def test_a_long_config_line_is_read_in_linear_time(tmp_path):
    from odprep.cli import missing_paths

    line = "input_path: 'x" + " " * 200_000 + "'\n" + "annotation_file:" + " " * 200_000 + "x #\n"
    assert [key for _, key, _ in missing_paths(line)] == ["input_path", "annotation_file"]
