"""--split / --split-from-lists / --oversample: by image, deterministic, stratified."""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from odprep.model import ImageRecord, ObjectAnnotation
from odprep.splits import oversample, repeat_factors, split_records, split_sizes

from .conftest import SAMPLE, SHARED_DATASETS
from .helpers import assert_bad_input, run_cli


def fake(n_by_class: dict[str, int]) -> list[ImageRecord]:
    records = []
    for label, count in n_by_class.items():
        for i in range(count):
            obj = ObjectAnnotation(label, 0, 0, 1, 1)
            records.append(ImageRecord(Path(f"{label}{i}.jpg"), f"{label}{i}.jpg", f"{label}{i}", "x",
                                       objects=(obj,)))
    return records


def test_sizes_within_one_image_of_the_fractions():
    for total in range(0, 50):
        sizes = split_sizes(total, {"train": 0.7, "val": 0.2, "test": 0.1})
        assert sum(sizes.values()) == total
        assert all(abs(sizes[k] - f * total) < 1 for k, f in {"train": 0.7, "val": 0.2, "test": 0.1}.items())


def test_split_is_by_image_complete_disjoint_stratified_and_deterministic():
    records = fake({"common": 40, "rare": 5, "mid": 12})
    splits = split_records(records, {"train": 0.6, "val": 0.2, "test": 0.2}, seed=3)
    assert sum(len(v) for v in splits.values()) == len(records)
    ids = [r.source_id for v in splits.values() for r in v]
    assert len(ids) == len(set(ids))
    for records_in_split in splits.values():
        assert {"common", "rare", "mid"} <= {r.labels[0] for r in records_in_split}
    assert splits == split_records(records, {"train": 0.6, "val": 0.2, "test": 0.2}, seed=3)
    assert splits != split_records(records, {"train": 0.6, "val": 0.2, "test": 0.2}, seed=4)


def test_repeat_factors_follow_lvis():
    records = fake({"common": 90, "rare": 10})
    factors = repeat_factors(records, threshold=0.4)
    assert factors[0] == 1.0  # f=0.9 > t
    assert factors[-1] == pytest.approx((0.4 / 0.1) ** 0.5)  # 2.0
    repeated = oversample(records, 0.4, seed=1, rounding="ceil")
    counts = Counter(r.labels[0] for r in repeated)
    assert counts == {"common": 90, "rare": 20}
    assert oversample(records, 0.3, seed=1) == oversample(records, 0.3, seed=1)


def digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("*.record*"))}


def test_cli_split_twice_gives_identical_disjoint_complete_outputs(tf, tmp_path):
    outs = []
    for attempt in ("a", "b"):
        result = run_cli("voc2tfr", SAMPLE / "voc" / "Annotations", "--images-dir", SAMPLE / "images",
                         "-o", tmp_path / attempt / "{split}.record", "--split", "train=0.8,val=0.2",
                         "--seed", "7")
        assert result.exit_code == 0, result.output
        outs.append(digest(tmp_path / attempt))
    assert outs[0] == outs[1]
    names = {}
    for split in ("train", "val"):
        for raw in tf.data.TFRecordDataset([str(tmp_path / "a" / f"{split}.record")]):
            example = tf.train.Example.FromString(raw.numpy())
            names.setdefault(split, []).append(example.features.feature["image/filename"].bytes_list.value[0])
    assert len(names["train"]) + len(names["val"]) == 6 and len(names["val"]) == 1
    assert not set(names["train"]) & set(names["val"])
    assert (tmp_path / "a" / "label_map.pbtxt").exists()


def test_split_needs_split_placeholder_and_valid_fractions(tmp_path):
    base = ["voc2tfr", SAMPLE / "voc" / "Annotations", "--images-dir", SAMPLE / "images"]
    assert_bad_input(run_cli(*base, "-o", tmp_path / "x.record", "--split", "train=0.8,val=0.2"),
                     "{split}")
    assert_bad_input(run_cli(*base, "-o", tmp_path / "{split}.record", "--split", "train=0.8,val=0.1"),
                     "sum to 0.9")
    assert_bad_input(run_cli(*base, "-o", tmp_path / "x.record", "--oversample", "repeat-factor"),
                     "train split")


def test_split_from_voc_lists(tmp_path):
    lists = tmp_path / "Main"
    lists.mkdir()
    (lists / "train.txt").write_text("cat_dog\nstreet\ngray\n")
    (lists / "val.txt").write_text("palette  1\nUpper\n")
    result = run_cli("voc2tfr", SAMPLE / "voc" / "Annotations", "--images-dir", SAMPLE / "images",
                     "-o", tmp_path / "o" / "{split}.record", "--split-from-lists", lists)
    assert result.exit_code == 0, result.output
    assert "images in no list (left out): 1" in result.output and "empty" in result.output
    (lists / "val.txt").write_text("gray\n")
    assert_bad_input(run_cli("voc2tfr", SAMPLE / "voc" / "Annotations", "--images-dir",
                             SAMPLE / "images", "-o", tmp_path / "p" / "{split}.record",
                             "--split-from-lists", lists), "gray is in both train.txt and val.txt")


def test_oversample_summary_shows_before_and_after(tmp_path):
    result = run_cli("voc2tfr", SAMPLE / "voc" / "Annotations", "--images-dir", SAMPLE / "images",
                     "-o", tmp_path / "{split}.record", "--split", "train=0.5,val=0.5",
                     "--oversample", "repeat-factor", "--threshold", "1.0",
                     "--oversample-rounding", "ceil")
    assert result.exit_code == 0, result.output
    assert "before -> after" in result.output


def test_a_failing_split_leaves_no_split_behind(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    for p in (SAMPLE / "images").iterdir():
        (images / p.name).write_bytes(p.read_bytes())
    (images / "street.png").write_text("broken")
    out = tmp_path / "o"
    result = run_cli("voc2tfr", SAMPLE / "voc" / "Annotations", "--images-dir", images,
                     "-o", out / "{split}.record", "--split", "train=0.5,val=0.5")
    assert_bad_input(result, "street.png")
    assert not out.exists() or [p.name for p in out.iterdir()] == []


@pytest.mark.skipif(not SHARED_DATASETS.is_dir(), reason="../shared/datasets not present")
def test_real_bccd_split_from_imagesets(tmp_path):
    bccd = SHARED_DATASETS / "bccd" / "BCCD"
    result = run_cli("voc2tfr", bccd / "Annotations", "--images-dir", bccd / "JPEGImages",
                     "-o", tmp_path / "{split}.record", "--split-from-lists", bccd / "ImageSets" / "Main",
                     "--skip-invalid")
    assert result.exit_code == 0, result.output


def test_records_built_on_demand_split_and_oversample_as_a_list_does(tmp_path):
    """COCO and VOC records stay lazy through --split and --oversample (their stubs are
    split, not the records); the output must equal splitting the materialised list."""
    from odprep.conversion import split_and_convert
    from odprep.readers.common import LazyRecords
    from odprep.readers.voc import VocDataset

    lazy = VocDataset(SAMPLE / "voc" / "Annotations", SAMPLE / "images").as_sequence()
    assert isinstance(lazy, LazyRecords)
    for name, records in (("lazy", lazy), ("list", list(lazy))):
        split_and_convert(records, tmp_path / name / "{split}.record", split_spec="train=0.6,val=0.4",
                          oversample_threshold=0.9, seed=3)
    for split in ("train", "val"):
        ours = (tmp_path / "lazy" / f"{split}.record").read_bytes()
        assert ours and ours == (tmp_path / "list" / f"{split}.record").read_bytes()
    from odprep.tfrecord import read_records

    assert sum(1 for _ in read_records(tmp_path / "lazy" / "train.record")) == 6  # 4 images, repeated


def _stubs(names: list[str], labels=("cat",)):
    from odprep.splits import RecordStub

    return [RecordStub(i, labels, f"{name}.xml", name) for i, name in enumerate(names)]


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 12), st.integers(0, 5)), min_size=1, max_size=60),
       st.integers(0, 3), st.sampled_from([(0.8, 0.2), (0.5, 0.3, 0.2), (0.34, 0.33, 0.33)]))
def test_no_group_ever_spans_two_splits(items, seed, shares):
    from odprep.splits import grouper, split_records

    names = [f"video{group}_frame{i}_{copy}.jpg" for i, (group, copy) in enumerate(items)]
    fractions = dict(zip(["train", "val", "test"], shares, strict=False))
    splits = split_records(_stubs(names), fractions, seed, grouper(r"^(video\d+)_"))
    where: dict[str, str] = {}
    for split, records in splits.items():
        for record in records:
            group = record.filename.split("_")[0]
            assert where.setdefault(group, split) == split
    assert sum(len(r) for r in splits.values()) == len(items)


def test_roboflow_copies_of_one_photo_stay_on_one_side():
    from odprep.splits import split_records

    names = [f"p{photo}_jpg.rf.{copy:020x}.jpg" for photo in range(10) for copy in range(3)]
    splits = split_records(_stubs(names), {"train": 0.7, "val": 0.3}, 0)
    train = {n.filename.split(".rf.")[0] for n in splits["train"]}
    val = {n.filename.split(".rf.")[0] for n in splits["val"]}
    assert not train & val and len(splits["val"]) == 9


def test_a_bad_group_by_is_one_line(tmp_path):
    result = run_cli("voc2tfr", SAMPLE / "voc" / "Annotations", "--images-dir", SAMPLE / "images", "-o",
                     tmp_path / "{split}.record", "--split", "train=0.5,val=0.5", "--group-by", "(")
    assert_bad_input(result, "--group-by", "not a regular expression")


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 40), st.lists(st.tuples(st.integers(0, 39), st.integers(0, 39)), max_size=30),
       st.integers(0, 3))
def test_pairs_kept_together_never_span_two_splits(count, pairs, seed):
    from odprep.splits import split_records

    pairs = [(a % count, b % count) for a, b in pairs]
    splits = split_records(_stubs([f"img{i}.jpg" for i in range(count)]), {"train": 0.7, "val": 0.3}, seed,
                           together=pairs)
    side = {stub.position: name for name, stubs in splits.items() for stub in stubs}
    assert all(side[a] == side[b] for a, b in pairs) and len(side) == count


def test_group_near_duplicates_keeps_re_encoded_and_mirrored_copies_on_one_side(tmp_path):
    """Ten photos, each with a re-encoded, a resized and a mirrored copy under unrelated file
    names: by name they would scatter; --group-near-duplicates keeps each photo's four on
    one side, and check then finds no near-duplicate leak."""
    import io

    import numpy as np
    from PIL import Image

    from .helpers import VOC_TEMPLATE, voc_object

    images, annotations = tmp_path / "images", tmp_path / "Annotations"
    images.mkdir()
    annotations.mkdir()
    rng = np.random.default_rng(0)
    number = 0
    for _ in range(10):
        base = Image.fromarray(rng.integers(0, 255, (12, 16, 3), dtype=np.uint8)).resize((160, 120))
        for copy in (base, base, base.resize((120, 90)), base.transpose(Image.Transpose.FLIP_LEFT_RIGHT)):
            buffer = io.BytesIO()
            copy.save(buffer, format="JPEG", quality=95 - 30 * (number % 2))
            name = f"{number * 7919 % 1000:03d}_{number}.jpg"
            (images / name).write_bytes(buffer.getvalue())
            (annotations / f"{name}.xml").write_text(VOC_TEMPLATE.format(
                filename=name, width=copy.width, height=copy.height, objects=voc_object("cat", (2, 2, 50, 50))))
            number += 1
    out = tmp_path / "out"
    result = run_cli("voc2tfr", annotations, "--images-dir", images, "-o", out / "{split}.record", "--split",
                     "train=0.7,val=0.3", "--group-near-duplicates", "-q")
    assert result.exit_code == 0, result.output
    from odprep.datasummary import summarize

    summary = summarize({"train": [out / "train.record"], "eval": [out / "val.record"]}, hashes=True)
    from odprep.checks.leakage import near_duplicates

    assert summary.splits["eval"].images in (8, 12) and near_duplicates(summary.splits["train"],
                                                                         summary.splits["eval"]) == []
    plain = run_cli("voc2tfr", annotations, "--images-dir", images, "-o", tmp_path / "plain" / "{split}.record",
                    "--split", "train=0.7,val=0.3", "-q")
    assert plain.exit_code == 0
    scattered = summarize({"train": [tmp_path / "plain" / "train.record"],
                           "eval": [tmp_path / "plain" / "val.record"]}, hashes=True)
    assert near_duplicates(scattered.splits["train"], scattered.splits["eval"])  # the test can fail


def test_group_near_duplicates_needs_a_split(tmp_path):
    result = run_cli("voc2tfr", SAMPLE / "voc" / "Annotations", "--images-dir", SAMPLE / "images", "-o",
                     tmp_path / "x.record", "--group-near-duplicates")
    assert_bad_input(result, "--group-near-duplicates", "--split")


def test_images_it_cannot_compare_are_counted_not_silently_left_out(tmp_path):
    """LabelMe files that embed their pictures (imageData) give no file to hash: the split
    says how many it grouped by name only."""
    import base64
    import json

    folder = tmp_path / "lm"
    folder.mkdir()
    data = base64.b64encode((SAMPLE / "images" / "cat_dog.jpg").read_bytes()).decode()
    for i in range(4):
        shape = {"label": "cat", "points": [[8, 10], [40, 50]], "shape_type": "rectangle"}
        (folder / f"{i}.json").write_text(json.dumps({"shapes": [shape], "imagePath": f"{i}.jpg",
                                                      "imageData": data, "imageWidth": 96, "imageHeight": 64}))
    result = run_cli("labelme2tfr", folder, "-o", tmp_path / "out" / "{split}.record", "--split",
                     "train=0.5,val=0.5", "--group-near-duplicates")
    assert result.exit_code == 0, result.output
    assert "--group-near-duplicates: 4 image(s) could not be read or decoded to compare" in result.output
