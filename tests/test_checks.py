"""`check` predicts a bad training run: each finding with the problem, and without it.

Records are written here image by image (tests.helpers.framed_example), the config comes
from a bundled template through new-config, and `check` reads them as a user's would."""

from __future__ import annotations

import io
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from odprep.checks.data import share
from odprep.datasummary import dhash
from odprep.labelmap import LabelMap

from .conftest import SAMPLE
from .helpers import framed_example, run_cli

CAT = ("cat", 0.1, 0.4, 0.2, 0.8)
DOG = ("dog", 0.5, 0.9, 0.1, 0.9)
PHOTOS = {name: (SAMPLE / "images" / name).read_bytes() for name in ("cat_dog.jpg", "street.png", "gray.jpg")}


def _write(path: Path, records: list[bytes]) -> Path:
    path.write_bytes(b"".join(records))
    return path


def _photo(seed: int, size=(96, 64)) -> bytes:
    """A distinct noisy picture (a different one per seed)."""
    import numpy as np

    pixels = np.random.default_rng(seed).integers(0, 255, (size[1] // 8, size[0] // 8, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).resize(size, Image.Resampling.BILINEAR).save(buffer, format="JPEG", quality=92)
    return buffer.getvalue()


def checked(tmp_path: Path, train: list[bytes], evaluation: list[bytes], classes=("cat", "dog"),
            template: str = "ssd_mobilenet_v2_fpnlite_320", *patch: str):
    """(exit code, output, finding kinds) of check on a config built for these records."""
    folder = tmp_path / "data"
    folder.mkdir(exist_ok=True)
    _write(folder / "train.record", train)
    _write(folder / "val.record", evaluation)
    (folder / "label_map.pbtxt").write_text(LabelMap.build(classes).to_pbtxt())
    made = run_cli("new-config", "--template", template, "--train-input", folder / "train.record",
                   "--eval-input", folder / "val.record", "--label-map", folder / "label_map.pbtxt",
                   "--no-checkpoint", "--batch-size", "2", "--scale-lr", *patch, "-o", tmp_path / "p.config")
    assert made.exit_code == 0, made.output
    result = run_cli("check", tmp_path / "p.config", "--json")
    import json

    payload = json.loads(result.output)
    return result.exit_code, result.output, {f["kind"]: f for f in payload["findings"]}


def images(count: int, objects, start: int = 0) -> list[bytes]:
    return [framed_example(f"img{start + i}.jpg", objects, image=_photo(start + i)) for i in range(count)]


def test_clean_data_stays_clean(tmp_path):
    code, output, kinds = checked(tmp_path, images(12, [CAT, DOG]), images(4, [CAT, DOG], start=100))
    assert code == 0 and kinds == {}, output


def test_train_records_without_objects(tmp_path):
    code, output, kinds = checked(tmp_path, images(6, []), images(2, [CAT, DOG], start=100))
    assert code == 1 and "train-no-objects" in kinds, output
    assert "class-never-trained" not in kinds  # one finding says it; the rest would be noise


def test_eval_records_without_objects(tmp_path):
    code, _, kinds = checked(tmp_path, images(12, [CAT, DOG]), images(2, [], start=100))
    assert code == 1 and "eval-no-objects" in kinds


def test_a_class_in_the_map_that_train_never_shows(tmp_path):
    code, _, kinds = checked(tmp_path, images(12, [CAT]), images(2, [CAT], start=100))
    assert code == 1 and "'dog' is in the label map" in kinds["class-never-trained"]["examples"][0]


def test_rare_and_never_evaluated_classes(tmp_path):
    train = images(12, [CAT]) + images(2, [CAT, DOG], start=50)
    code, _, kinds = checked(tmp_path, train, images(3, [CAT], start=100))
    assert code == 0
    assert "'dog' has 2 train object(s), 2 of 16 (12%)" in kinds["class-rare"]["examples"][0]
    assert "'dog'" in kinds["class-never-evaluated"]["examples"][0]


def test_more_objects_than_the_pipeline_keeps_and_the_fix_the_message_gives(tmp_path):
    crowd = [("cat", 0.01 * (i % 90), 0.01 * (i % 90) + 0.01, 0.5, 0.6) for i in range(150)]
    train = images(10, [CAT, DOG]) + [framed_example("crowd.jpg", crowd, image=_photo(999))]
    code, output, kinds = checked(tmp_path, train, images(3, [CAT, DOG], start=100))
    found = kinds["too-many-objects-for-train-ground-truth"]
    assert code == 1 and "most: 150" in found["examples"][0] and "crowd.jpg" in found["examples"][0]
    assert "--max-objects 150" in found["fix"]
    fixed = run_cli("patch-config", tmp_path / "p.config", "--max-objects", "150", "--in-place")
    assert fixed.exit_code == 0, fixed.output
    again = run_cli("check", tmp_path / "p.config")
    assert "too-many-objects" not in again.output, again.output


def test_a_schedule_for_another_length(tmp_path):
    train, evaluation = images(12, [CAT, DOG]), images(3, [CAT, DOG], start=100)
    checked(tmp_path, train, evaluation)
    config = tmp_path / "p.config"
    config.write_text(config.read_text().replace("num_steps: 50000", "num_steps: 5000"))
    result = run_cli("check", config)
    assert "schedule-steps-differ" in result.output and "total_steps is 50000" in result.output
    assert run_cli("patch-config", config, "--num-steps", "5000", "--in-place").exit_code == 0
    assert "schedule-steps-differ" not in run_cli("check", config).output
    config.write_text(config.read_text().replace("num_steps: 5000", "num_steps: 800")
                      .replace("total_steps: 5000", "total_steps: 800"))
    warm = run_cli("check", config)
    assert warm.exit_code == 1 and "warmup-longer-than-training" in warm.output


def test_a_learning_rate_for_another_batch_size(tmp_path):
    train, evaluation = images(12, [CAT, DOG]), images(3, [CAT, DOG], start=100)
    checked(tmp_path, train, evaluation)
    config = tmp_path / "p.config"
    unscaled = config.read_text().replace("learning_rate_base: 0.00125", "learning_rate_base: 0.07999999821186066")
    config.write_text(unscaled)
    result = run_cli("check", config)
    assert "learning-rate-for-another-batch" in result.output and "suggests 0.00125" in result.output
    assert result.exit_code == 0  # a suggestion, not an error


def test_leaks_by_bytes_by_look_and_by_source_name(tmp_path):
    photo = _photo(7, size=(320, 240))
    with Image.open(io.BytesIO(photo)) as image:
        smaller, buffer = image.resize((200, 150)), io.BytesIO()
        smaller.save(buffer, format="JPEG", quality=60)
    train = images(10, [CAT, DOG]) + [
        framed_example("same.jpg", [CAT, DOG], image=PHOTOS["cat_dog.jpg"]),
        framed_example("photo.jpg", [CAT, DOG], image=photo, size=(320, 240)),
        framed_example("truck_jpg.rf.0123456789abcdef0123.jpg", [CAT, DOG], image=_photo(500))]
    evaluation = images(3, [CAT, DOG], start=100) + [
        framed_example("same.jpg", [CAT, DOG], image=PHOTOS["cat_dog.jpg"]),
        framed_example("photo_small.jpg", [CAT, DOG], image=buffer.getvalue(), size=(200, 150)),
        framed_example("truck_jpg.rf.fedcba9876543210fedc.jpg", [CAT, DOG], image=_photo(501))]
    _, _, kinds = checked(tmp_path, train, evaluation)
    assert kinds["train-eval-overlap"]["count"] == 1
    near = kinds["train-eval-near-duplicate"]["examples"][0]
    assert "photo.jpg" in near and "photo_small.jpg" in near and "1 eval image(s)" in near
    assert "truck_jpg.rf" in kinds["train-eval-same-source"]["examples"][0]


def test_eval_source_ids_that_collide(tmp_path):
    evaluation = [framed_example(f"v{i}.jpg", [CAT, DOG], image=_photo(200 + i), source="7") for i in range(3)]
    code, _, kinds = checked(tmp_path, images(12, [CAT, DOG]), evaluation)
    assert code == 1 and kinds["source-id-duplicate"]["count"] == 1


def test_shares_are_shown_as_they_are():
    assert share(2, 2182) == "2 of 2,182 (0.1%)"
    assert share(1, 2) == "1 of 2 (50%)"


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.sampled_from([95, 80, 60]))
def test_a_picture_stays_near_itself_and_far_from_others(seed, quality):
    photo = _photo(seed, size=(160, 120))
    with Image.open(io.BytesIO(photo)) as image:
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=quality)
    first, again, other = dhash(photo), dhash(buffer.getvalue()), dhash(_photo(seed + 1, size=(160, 120)))
    assert first == dhash(photo)  # the same bytes always hash alike
    assert bin(first[0] ^ again[0]).count("1") <= 10
    assert bin(first[0] ^ other[0]).count("1") > 10


def test_the_sample_images_do_not_look_alike():
    hashes = [dhash(data)[0] for data in PHOTOS.values()]
    assert all(bin(a ^ b).count("1") > 10 for i, a in enumerate(hashes) for b in hashes[i + 1:])



def test_no_empty_shards_and_earlier_outputs_are_named(tmp_path):
    out = tmp_path / "out" / "t.record"
    first = run_cli("voc2tfr", SAMPLE / "voc" / "Annotations", "--images-dir", SAMPLE / "images", "-o", out)
    assert first.exit_code == 0
    result = run_cli("voc2tfr", SAMPLE / "voc" / "Annotations", "--images-dir", SAMPLE / "images", "-o", out,
                     "--num-shards", "32")
    assert result.exit_code == 0, result.output
    assert "--num-shards 32 for 6 image(s): 6 shard(s) written" in result.output
    assert len(list(out.parent.glob("t.record-*-of-00006"))) == 6 and not list(out.parent.glob("*-of-00032"))
    assert "1 earlier output(s) beside it" in result.output and str(out) in result.output
    made = run_cli("new-config", "--template", "ssd_mobilenet_v2_fpnlite_320", "--train-input", f"{out}*",
                   "--eval-input", f"{out}*", "--label-map", out.parent / "label_map.pbtxt", "--no-checkpoint",
                   "-o", tmp_path / "p.config")
    checked_now = run_cli("check", tmp_path / "p.config")
    assert "input-glob-two-shard-sets" in made.output + checked_now.output
    assert "t.record (6 shard(s)), t.record (1 shard(s))" in checked_now.output
    out.unlink()
    assert "input-glob-two-shard-sets" not in run_cli("check", tmp_path / "p.config").output


def test_numeric_source_ids_are_unique_across_splits(tf, tmp_path):
    from .conftest import parse_with_od_api_spec

    result = run_cli("voc2tfr", SAMPLE / "voc" / "Annotations", "--images-dir", SAMPLE / "images", "-o",
                     tmp_path / "{split}.record", "--split", "train=0.5,val=0.5", "--numeric-source-ids", "-q")
    assert result.exit_code == 0, result.output
    ids = [int(r["image/source_id"]) for split in ("train", "val")
           for r in parse_with_od_api_spec(tf, [tmp_path / f"{split}.record"])]
    assert sorted(ids) == list(range(1, 7))


def test_check_names_records_annotated_on_the_upright_view(tmp_path):
    from PIL import Image as PILImage

    upright = PILImage.new("RGB", (60, 40), (40, 120, 200))
    exif = PILImage.Exif()
    exif[274] = 6
    buffer = io.BytesIO()
    upright.transpose(PILImage.Transpose.ROTATE_90).save(buffer, format="JPEG", exif=exif.tobytes())
    tagged = buffer.getvalue()  # stored 40x60
    train = images(12, [CAT, DOG]) + [framed_example("phone.jpg", [CAT, DOG], image=tagged, size=(60, 40))]
    code, _, kinds = checked(tmp_path, train, images(3, [CAT, DOG], start=100))
    assert code == 1 and "phone.jpg" in kinds["size-transposed"]["examples"][0]
    train[-1] = framed_example("phone.jpg", [CAT, DOG], image=tagged, size=(40, 60))
    code, _, kinds = checked(tmp_path, train, images(3, [CAT, DOG], start=100))
    assert "size-transposed" not in kinds and "1 of 13 (7.7%) images" in kinds["exif-orientation"]["examples"][0]


def test_flat_pictures_are_compared_too(tmp_path):
    """A uniform picture's dHash is 0, which is a hash like any other: the same flat grey
    frame in train and eval (re-encoded) is a near-duplicate, not an unreadable image."""
    def grey(quality: int) -> bytes:
        buffer = io.BytesIO()
        Image.new("RGB", (96, 64), (128, 128, 128)).save(buffer, format="JPEG", quality=quality)
        return buffer.getvalue()

    assert dhash(grey(90)) == (0, 0)
    train = [framed_example(f"t{i}.jpg", [CAT], image=_photo(300 + i)) for i in range(3)]
    train.append(framed_example("flat_a.jpg", [CAT], image=grey(90)))
    evaluation = [framed_example("flat_b.jpg", [CAT], image=grey(60))]
    _, output, found = checked(tmp_path, train, evaluation, ("cat",))
    assert "train-eval-near-duplicate" in found, output
