"""The TF-free writer: framing byte-identical to TensorFlow's, Examples equal to TF's."""

from __future__ import annotations

import subprocess
import sys

import pytest

from odprep import proto
from odprep.errors import OdprepError
from odprep.tfrecord import frame, read_records

from .conftest import REPO, SAMPLE


def _payloads():
    example = proto.Example()
    feature = example.features.feature
    feature["image/encoded"].bytes_list.value.append(b"\x00\xff" * 1000)
    feature["image/object/bbox/xmin"].float_list.value.extend([0.1, 0.5])
    feature["image/object/class/label"].int64_list.value.extend([1, 2**40, -3])
    return [b"", b"x", example.SerializeToString(deterministic=True), bytes(range(256)) * 300]


def test_framing_is_byte_identical_to_tf_record_writer(tf, tmp_path):
    theirs = tmp_path / "tf.record"
    with tf.io.TFRecordWriter(str(theirs)) as writer:
        for payload in _payloads():
            writer.write(payload)
    ours = tmp_path / "ours.record"
    ours.write_bytes(b"".join(frame(p) for p in _payloads()))
    assert ours.read_bytes() == theirs.read_bytes()
    assert [r.data for r in read_records(theirs)] == _payloads()


def test_example_bytes_parse_to_the_same_tf_example(tf):
    tf_example = tf.train.Example(features=tf.train.Features(feature={
        "image/encoded": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"\x00\xff" * 1000])),
        "image/object/bbox/xmin": tf.train.Feature(float_list=tf.train.FloatList(value=[0.1, 0.5])),
        "image/object/class/label": tf.train.Feature(
            int64_list=tf.train.Int64List(value=[1, 2**40, -3])),
    }))
    ours = tf.train.Example.FromString(_payloads()[2])
    assert ours == tf_example
    assert tf_example.SerializeToString(deterministic=True) == _payloads()[2]


def test_reader_names_offset_of_truncated_and_flipped_records(tmp_path):
    data = b"".join(frame(p) for p in _payloads())
    truncated = tmp_path / "t.record"
    truncated.write_bytes(data[:-10])
    with pytest.raises(OdprepError, match="truncated record") as caught:
        list(read_records(truncated))
    assert caught.value.index == 3
    flipped = bytearray(data)
    flipped[16 + 12] ^= 0x01  # record 1 (at byte 16) holds one data byte after its 12-byte header
    corrupt = tmp_path / "c.record"
    corrupt.write_bytes(bytes(flipped))
    with pytest.raises(OdprepError, match="data CRC mismatch") as caught:
        list(read_records(corrupt))
    assert caught.value.index == 1 and caught.value.offset == 16


def _modules_after(code: str) -> set[str]:
    output = subprocess.run([sys.executable, "-c", code + "\nimport sys\nprint(' '.join(sys.modules))"],
                            check=True, capture_output=True, text=True, cwd=REPO).stdout
    return set(output.split())


def test_conversion_in_process_never_imports_tensorflow(tmp_path):
    code = (f"from odprep.readers.voc import read_voc\nfrom odprep.conversion import convert\n"
            f"convert(read_voc({str(SAMPLE / 'voc' / 'Annotations')!r}, "
            f"{str(SAMPLE / 'images')!r}), {str(tmp_path / 'o.record')!r}, workers=2)")
    assert "tensorflow" not in _modules_after(code)
    assert (tmp_path / "o.record").exists()


@pytest.mark.parametrize("argv", [["--help"], ["make-labelmap", "--help"], ["voc2tfr", "--help"]])
def test_help_does_not_import_tensorflow(argv):
    code = f"import sys\nsys.argv = ['odprep', *{argv!r}]\nfrom odprep.cli import main\n" \
           "try:\n    main()\nexcept SystemExit:\n    pass"
    assert "tensorflow" not in _modules_after(code)


def test_make_labelmap_does_not_import_tensorflow(tmp_path):
    code = ("import sys\nfrom odprep.cli import main\n"
            f"sys.argv = ['odprep', 'make-labelmap', {str(SAMPLE / 'voc' / 'Annotations')!r}, "
            f"'-o', {str(tmp_path / 'm.pbtxt')!r}]\n"
            "try:\n    main()\nexcept SystemExit:\n    pass")
    assert "tensorflow" not in _modules_after(code)
    assert (tmp_path / "m.pbtxt").exists()


def test_check_and_validate_do_not_import_tensorflow(tmp_path):
    out = tmp_path / "t.record"
    config = tmp_path / "p.config"
    code = (f"from odprep.readers.voc import read_voc\nfrom odprep.conversion import convert\n"
            f"from odprep.pipeline_config import ConfigPatch, patch_config, template_text\n"
            f"from odprep.consistency import check\nfrom odprep.validation import validate\n"
            f"from odprep.inspection import inspect_records\nfrom pathlib import Path\n"
            f"convert(read_voc({str(SAMPLE / 'voc' / 'Annotations')!r}, {str(SAMPLE / 'images')!r}), "
            f"{str(out)!r})\n"
            f"Path({str(config)!r}).write_text(patch_config(template_text('efficientdet_d0_512'), "
            f"ConfigPatch(train_inputs=({str(out)!r},), eval_inputs=({str(out)!r},), "
            f"label_map_path={str(tmp_path / 'label_map.pbtxt')!r}, num_classes=3, no_checkpoint=True)))\n"
            f"assert check({str(config)!r}).errors == 0\n"
            f"assert validate([{str(out)!r}], decode=True).errors == 0\n"
            f"assert inspect_records([{str(out)!r}]).images == 6")
    assert "tensorflow" not in _modules_after(code)


@pytest.mark.parametrize("has_writev", [True, False])
def test_write_all_writes_every_buffer(tmp_path, monkeypatch, has_writev):
    import os

    from odprep.tfrecord import write_all

    if not has_writev:
        monkeypatch.delattr(os, "writev")
    path = tmp_path / "w.bin"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    try:
        parts = [b"ab", memoryview(b"cdef"), bytearray(b"g"), b"x" * 100_000]
        assert write_all(fd, parts) == 100_007
    finally:
        os.close(fd)
    assert path.read_bytes() == b"abcdefg" + b"x" * 100_000
