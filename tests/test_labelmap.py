"""Label maps: build, merge, escape, and read the files people really have."""

from __future__ import annotations

import pytest

from odprep.errors import OdprepError
from odprep.labelmap import LabelMap

from .conftest import SAMPLE
from .helpers import assert_bad_input, run_cli

GOLDEN = SAMPLE.parent / "tests" / "golden"


def test_make_labelmap_from_voc_matches_golden(tmp_path):
    out = tmp_path / "label_map.pbtxt"
    result = run_cli("make-labelmap", SAMPLE / "voc" / "Annotations", "-o", out)
    assert result.exit_code == 0, result.output
    assert out.read_text() == (GOLDEN / "sample_voc_label_map.pbtxt").read_text()


def test_first_seen_order(tmp_path):
    names = tmp_path / "classes.txt"
    names.write_text("zebra\napple\n\n# comment\nzebra\nmango\n")
    out = tmp_path / "map.pbtxt"
    assert run_cli("make-labelmap", names, "-o", out, "--order", "first-seen").exit_code == 0
    assert [(i.id, i.name) for i in LabelMap.load(out).items] == [(1, "zebra"), (2, "apple"),
                                                                 (3, "mango")]
    assert run_cli("make-labelmap", names, "-o", out).exit_code == 0
    assert LabelMap.load(out).names == ["apple", "mango", "zebra"]


def test_merge_keeps_existing_ids_and_appends_after_highest(tmp_path):
    existing = tmp_path / "old.pbtxt"
    existing.write_text('item { id: 4 name: "dog" }\nitem { id: 9 name: "bird" }\n')
    names = tmp_path / "classes.txt"
    names.write_text("dog\ncat\nant\n")
    out = tmp_path / "new.pbtxt"
    assert run_cli("make-labelmap", names, "--merge", existing, "-o", out).exit_code == 0
    assert [(i.id, i.name) for i in LabelMap.load(out).items] == [
        (4, "dog"), (9, "bird"), (10, "ant"), (11, "cat")]


@pytest.mark.parametrize("name", ['say "hi"', "back\\slash", "café ünïcode", "日本", "tab\tname",
                                  "it's"])
def test_names_round_trip_with_escaping(name, tmp_path):
    path = tmp_path / "m.pbtxt"
    LabelMap.build([name, "plain"]).save(path)
    assert LabelMap.load(path).names == sorted([name, "plain"])
    assert ("café" in path.read_text(encoding="utf-8")) == ("café" in name)  # kept as is


def test_names_parse_with_protobuf_text_format(tmp_path):
    """The OD API reads label maps with protobuf's text_format; our output must parse there."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format

    file = descriptor_pb2.FileDescriptorProto(name="lm_test.proto", package="lmtest")
    item = file.message_type.add(name="Item")
    item.field.add(name="name", number=1, type=9, label=1)
    item.field.add(name="id", number=2, type=5, label=1)
    item.field.add(name="display_name", number=3, type=9, label=1)
    lm = file.message_type.add(name="LabelMap")
    lm.field.add(name="item", number=1, type=11, label=3, type_name=".lmtest.Item")
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    message = message_factory.GetMessageClass(pool.FindMessageTypeByName("lmtest.LabelMap"))()
    names = ['q"uote', "back\\slash", "ünï", "a b"]
    text_format.Parse(LabelMap.build(names).to_pbtxt(), message)
    assert sorted(i.name for i in message.item) == sorted(names)


REAL_WORLD = """
# exported by some tool
item{
  name: 'cat'   # single quotes
  id: 1
  display_name: "Cat"
}
item {
  id: 2,
  name: "dog";
}
item { name: "bird" id: 3 }
"""


def test_reads_real_world_label_maps():
    label_map = LabelMap.parse(REAL_WORLD, "real.pbtxt")
    assert [(i.id, i.name) for i in label_map.items] == [(1, "cat"), (2, "dog"), (3, "bird")]
    assert label_map.id_of("Cat") == 1  # display_name lookup, as the OD API does


def test_background_id_zero_is_allowed_and_not_a_class():
    label_map = LabelMap.parse('item { id: 0 name: "background" }\nitem { id: 1 name: "cat" }\n')
    assert len(label_map) == 1 and label_map.max_id == 1


BAD_MAPS = [
    ('item { id: 0 name: "cat" }', ["line 1", "id 0", "background", "from 1"]),
    ('item { id: 1 name: "a" }\nitem { id: 1 name: "b" }', ["line 2", "duplicate id 1"]),
    ('item { id: 1 name: "a" }\nitem { id: 2 name: "a" }', ["line 2", "duplicate name 'a'"]),
    ("item { id: 1 name: \u201ccat\u201d }", ["line 1", "curly quote"]),
    ("model { ssd { num_classes: 3 } }", ["not a label map"]),
    ("this is not: a label map {", ["line 1"]),
    ("", ["not a label map"]),
    ('item { name: "a" }', ["no id"]),
]


@pytest.mark.parametrize("text, fragments", BAD_MAPS)
def test_rejects_broken_label_maps_naming_the_line(text, fragments):
    with pytest.raises(OdprepError) as caught:
        LabelMap.parse(text, "bad.pbtxt")
    message = str(caught.value)
    assert message.startswith("bad.pbtxt: ")
    for fragment in fragments:
        assert fragment in message, message


def test_cli_rejects_a_bad_merge_map(tmp_path):
    bad = tmp_path / "bad.pbtxt"
    bad.write_text('item { id: 0 name: "cat" }\n')
    result = run_cli("make-labelmap", SAMPLE / "voc" / "Annotations", "--merge", bad,
                     "-o", tmp_path / "x.pbtxt")
    assert_bad_input(result, "bad.pbtxt", "line 1")
    assert not (tmp_path / "x.pbtxt").exists()
