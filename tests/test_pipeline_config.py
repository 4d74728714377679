"""patch-config / new-config / templates: only the asked-for fields change."""

from __future__ import annotations

import difflib

import pytest

from odprep.errors import OdprepError
from odprep.pipeline_config import (
    ConfigPatch,
    patch_config,
    read_pipeline_config,
    template_file,
    template_names,
    template_text,
)

from .conftest import SAMPLE
from .helpers import run_cli

GOLDEN = SAMPLE.parent / "tests" / "golden"


def changed_lines(before: str, after: str) -> list[str]:
    return [line for line in difflib.unified_diff(before.splitlines(), after.splitlines(),
                                                  lineterm="", n=0)
            if line[:1] in "+-" and not line.startswith(("+++", "---"))]


def test_sample_config_patch_matches_golden(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "patched.config"
    result = run_cli("patch-config", SAMPLE / "configs" / "pipeline.config",
                     "--train-input", "data/train.record-?????-of-00004", "--eval-input",
                     "data/val.record", "--label-map", "data/label_map.pbtxt", "--num-classes", "3",
                     "-o", out)
    assert result.exit_code == 0, result.output
    assert out.read_text() == (GOLDEN / "pipeline.patched.config").read_text()


def test_only_requested_lines_change_and_comments_survive():
    before = (SAMPLE / "configs" / "pipeline.config").read_text()
    after = patch_config(before, ConfigPatch(train_inputs=("t.record",), num_classes=3,
                                             label_map_path="lm.pbtxt"))
    assert sorted(changed_lines(before, after)) == sorted([
        "-    num_classes: 90   # COCO; patched to the label map",
        "+    num_classes: 3   # COCO; patched to the label map",
        '-  label_map_path: "PATH_TO_BE_CONFIGURED/label_map.txt"',
        '-    input_path: "data/old_train_a.record"   # first half',
        '-    input_path: "data/old_train_b.record"   # second half',
        '+  label_map_path: "lm.pbtxt"',
        '+    input_path: "t.record"   # first half',
        '-  label_map_path: "PATH_TO_BE_CONFIGURED/label_map.txt"',
        '+  label_map_path: "lm.pbtxt"',
    ])


HAND_WRITTEN = """\
# my config
model { faster_rcnn { num_classes:7  image_resizer { fixed_shape_resizer { height: 64 width: 64 } } } }
train_config: {
    batch_size:2   # tiny
    fine_tune_checkpoint: 'old/ckpt-0'
}
train_input_reader {
    label_map_path: 'old.pbtxt'
    tf_record_input_reader: { input_path: 'a.record' input_path: 'b.record' }
}
eval_input_reader { label_map_path: "old.pbtxt" tf_record_input_reader { input_path: "v1" } }
eval_input_reader {
    label_map_path: "old.pbtxt"
    tf_record_input_reader {
        input_path: ["v2", "v3"]
    }
}
some_unknown_block { keep: "me"  exactly: 1 }
"""


def test_hand_written_config_one_line_blocks_and_quote_style():
    after = patch_config(HAND_WRITTEN, ConfigPatch(
        train_inputs=("n1", "n2", "n3"), eval_inputs=("e",), eval_reader=0,
        label_map_path="new.pbtxt", num_classes=2, batch_size=16, checkpoint="new/ckpt-1",
        eval_examples=10, masks=False))
    assert "model { faster_rcnn { num_classes:2  image_resizer" in after
    assert "    batch_size:16   # tiny" in after
    assert "fine_tune_checkpoint: 'new/ckpt-1'" in after
    assert 'fine_tune_checkpoint_type: "detection"' in after
    assert "tf_record_input_reader: { input_path: 'n1' input_path: 'n2' input_path: 'n3' }" in after
    assert "    label_map_path: 'new.pbtxt'" in after
    assert 'eval_input_reader { label_map_path: "new.pbtxt" tf_record_input_reader { input_path: "e" }' \
        ' load_instance_masks: false }' in after
    assert 'input_path: ["v2", "v3"]' in after  # second eval reader not chosen: inputs kept
    assert 'some_unknown_block { keep: "me"  exactly: 1 }' in after
    assert after.endswith("eval_config {\n  num_examples: 10\n}\n")  # absent block appended
    config_after = read_pipeline_config_text(after)
    assert config_after.num_classes == 2


def read_pipeline_config_text(text):
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "p.config"
        path.write_text(text)
        return read_pipeline_config(path)


def test_missing_fields_are_inserted_at_block_indentation():
    text = ("model {\n  ssd {\n    num_classes: 1\n  }\n}\ntrain_input_reader {\n"
            "  shuffle: true\n}\neval_config {\n}\n")
    after = patch_config(text, ConfigPatch(train_inputs=("x.record",), label_map_path="lm.pbtxt",
                                           eval_examples=5))
    assert after == ("model {\n  ssd {\n    num_classes: 1\n  }\n}\ntrain_input_reader {\n"
                     "  shuffle: true\n  tf_record_input_reader { input_path: \"x.record\" }\n"
                     "  label_map_path: \"lm.pbtxt\"\n}\neval_config {\n  num_examples: 5\n}\n")


def test_every_eval_reader_is_patched_by_default():
    after = patch_config(HAND_WRITTEN, ConfigPatch(eval_inputs=("e.record",)))
    assert 'tf_record_input_reader { input_path: "e.record" }' in after
    assert 'input_path: ["e.record"]' in after  # list syntax kept as a list
    assert '"v3"' not in after and '"v1"' not in after


@pytest.mark.parametrize("text, fragment", [
    ("model { ssd { num_classes: 3 }", "line 1:7: block is never closed"),
    ("model {\n  ssd { num_classes 3 } }", "line 2:21: expected ':' or '{'"),
    ("train_config { batch_size: \u201c3\u201d }", "curly quote"),
    ("train_input_reader { label_map_path: 'abc }", "unterminated string"),
])
def test_malformed_config_names_line_and_column(text, fragment):
    with pytest.raises(OdprepError, match=fragment):
        patch_config(text, ConfigPatch(num_classes=1), "bad.config")


def test_in_place_keeps_a_backup(tmp_path):
    config = tmp_path / "pipeline.config"
    original = (SAMPLE / "configs" / "pipeline.config").read_text()
    config.write_text(original)
    result = run_cli("patch-config", config, "--num-classes", "5", "--in-place")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "pipeline.config.bak").read_text() == original
    assert "num_classes: 5   # COCO" in config.read_text()


def test_label_map_with_gaps_sets_the_highest_id_and_warns_naming_the_gap(tmp_path):
    label_map = tmp_path / "lm.pbtxt"
    label_map.write_text('item { id: 1 name: "a" }\nitem { id: 4 name: "b" }\n')
    result = run_cli("patch-config", SAMPLE / "configs" / "pipeline.config", "--label-map", label_map,
                     "-o", tmp_path / "o.config")
    assert result.exit_code == 0, result.output
    assert "2, 3 missing" in result.output
    assert "num_classes: 4" in (tmp_path / "o.config").read_text()


def test_masks_on_a_model_without_a_mask_head_are_refused_naming_what_is_missing():
    with pytest.raises(OdprepError, match="predict_instance_masks is not true"):
        patch_config(HAND_WRITTEN, ConfigPatch(masks=True))
    with pytest.raises(OdprepError, match="model ssd has no instance-mask head"):
        patch_config(template_text("ssd_mobilenet_v2_fpnlite_320"), ConfigPatch(masks=True))


@pytest.fixture
def mask_records(tmp_path):
    import odprep
    from odprep.readers.coco import read_coco

    records = tmp_path / "train.record"
    reader = read_coco(SAMPLE / "coco" / "instances.json", SAMPLE / "images")
    odprep.convert(reader.records(), records, built_map=reader.label_map,
                   options=odprep.EncodeOptions(include_masks=True))
    return records


def test_masks_in_the_records_stay_off_for_a_model_without_a_mask_head(tmp_path, mask_records):
    out = tmp_path / "p.config"
    result = run_cli("patch-config", SAMPLE / "configs" / "pipeline.config", "--train-input",
                     mask_records, "-o", out)
    assert result.exit_code == 0 and "has no mask head; masks stay off" in result.output
    assert "load_instance_masks: true" not in out.read_text()


def test_masks_in_the_records_switch_a_mask_rcnn_on_with_resize_masks_off(tmp_path, mask_records):
    out = tmp_path / "p.config"
    assert run_cli("patch-config", "--template", "mask_rcnn_resnet50_v1_640", "--no-masks",
                   "-o", out).exit_code == 0
    text = out.read_text()
    assert text.count("load_instance_masks: false") == 2
    text = text.replace("resize_masks: false", "resize_masks: true")
    out.write_text(text)
    assert run_cli("patch-config", out, "--train-input", mask_records, "-o", out).exit_code == 0
    text = out.read_text()
    assert text.count("load_instance_masks: true") == 2 and text.count("mask_type: PNG_MASKS") == 2
    assert "resize_masks: false" in text and "resize_masks: true" not in text


@pytest.mark.parametrize("name", [n for n in template_names() if template_file(n).endswith(".config")])
def test_every_template_passes_check_once_patched(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    masks = name.startswith("mask_rcnn")
    if masks:
        run_cli("coco2tfr", SAMPLE / "coco" / "instances.json", "--images-dir", SAMPLE / "images",
                "--include-masks", "-o", "data/train.record", "-q")
    else:
        run_cli("voc2tfr", SAMPLE / "voc" / "Annotations", "--images-dir", SAMPLE / "images",
                "-o", "data/train.record", "-q")
    out = tmp_path / "pipeline.config"
    result = run_cli("new-config", "--template", name, "--label-map", "data/label_map.pbtxt",
                     "--train-input", "data/train.record", "--eval-input", "data/train.record",
                     "-o", out)
    assert result.exit_code == 0, result.output
    assert "still to set" in result.output and "fine_tune_checkpoint (--checkpoint PREFIX or " \
        "--no-checkpoint)" in result.output
    assert read_pipeline_config(out).num_classes == (18 if masks else 3)
    result = run_cli("check", out)
    assert result.exit_code == 1 and "path-not-set" in result.output
    result = run_cli("patch-config", out, "--no-checkpoint", "--batch-size", "2", "--scale-lr", "--in-place")
    assert result.exit_code == 0 and "still to set" not in result.output, result.output
    assert "PATH_TO_BE_CONFIGURED" not in out.read_text()
    result = run_cli("check", out)
    # The COCO sample declares 'car' and annotates none: a class the model can never learn.
    assert result.exit_code == (1 if masks else 0), result.output
    assert result.output.count("ERROR") == (1 if masks else 0)
    assert not masks or "ERROR class-never-trained (1)" in result.output and "'car'" in result.output
    assert "WARNING" not in result.output.replace("WARNING train-eval-overlap", "") \
        .replace("WARNING label-map-id-gaps", "").replace("WARNING objects-vanish-after-resize", "") \
        .replace("WARNING class-rare", ""), \
        result.output


def test_templates_lists_at_least_the_four_models():
    result = run_cli("templates")
    for name in ("ssd_mobilenet_v2_fpnlite_320", "efficientdet_d0_512", "faster_rcnn_resnet50_v1_640",
                 "centernet_resnet50_v1_fpn_512"):
        assert name in result.output


def test_windows_line_endings_and_bom_survive_byte_for_byte(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    source = (SAMPLE / "configs" / "pipeline.config").read_text()
    config = tmp_path / "crlf.config"
    config.write_bytes(b"\xef\xbb\xbf" + source.replace("\n", "\r\n").encode())
    out = tmp_path / "patched.config"
    result = run_cli("patch-config", config, "--train-input", "data/train.record-?????-of-00004",
                     "--eval-input", "data/val.record", "--label-map", "data/label_map.pbtxt",
                     "--num-classes", "3", "--batch-size", "4", "-o", out)
    assert result.exit_code == 0, result.output
    golden = (GOLDEN / "pipeline.patched.config").read_text().replace("  batch_size: 128", "  batch_size: 4")
    assert out.read_bytes() == b"\xef\xbb\xbf" + golden.replace("\n", "\r\n").encode()


def test_inserted_lines_follow_crlf():
    text = "train_input_reader {\r\n  shuffle: true\r\n}\r\n"
    after = patch_config(text, ConfigPatch(train_inputs=("a", "b"), label_map_path="m"))
    assert "\n" not in after.replace("\r\n", "")
    assert after.count("\r\n") == 5


def test_mask_detection_tolerates_records_that_are_not_examples(tf, tmp_path):
    from .test_validate import write_junk

    junk = write_junk(tf, tmp_path / "junk.record")
    result = run_cli("patch-config", SAMPLE / "configs" / "pipeline.config", "--train-input", junk,
                     "-o", tmp_path / "p.config")
    assert result.exit_code == 0, result.output
    assert "load_instance_masks" not in (tmp_path / "p.config").read_text()
