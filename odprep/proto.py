"""tf.train.Example message classes built with protobuf alone, without TensorFlow.

The schema (field numbers of tensorflow/core/example/{example,feature}.proto) is
declared here and registered in a private descriptor pool, so it never clashes
with TensorFlow's own registration when both are loaded in one process.
"""

from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import Message

_F = descriptor_pb2.FieldDescriptorProto


def _schema() -> descriptor_pb2.FileDescriptorProto:
    file = descriptor_pb2.FileDescriptorProto(
        name="odprep/example.proto", package="tensorflow", syntax="proto3"
    )

    def message(name: str, *fields: tuple[str, int, int, int, str]) -> descriptor_pb2.DescriptorProto:
        msg = file.message_type.add(name=name)
        for field_name, number, label, kind, type_name in fields:
            added = msg.field.add(name=field_name, number=number, label=label, type=kind)
            if type_name:
                added.type_name = type_name
        return msg

    repeated, optional = _F.LABEL_REPEATED, _F.LABEL_OPTIONAL
    message("BytesList", ("value", 1, repeated, _F.TYPE_BYTES, ""))
    message("FloatList", ("value", 1, repeated, _F.TYPE_FLOAT, ""))
    message("Int64List", ("value", 1, repeated, _F.TYPE_INT64, ""))
    feature = message(
        "Feature",
        ("bytes_list", 1, optional, _F.TYPE_MESSAGE, ".tensorflow.BytesList"),
        ("float_list", 2, optional, _F.TYPE_MESSAGE, ".tensorflow.FloatList"),
        ("int64_list", 3, optional, _F.TYPE_MESSAGE, ".tensorflow.Int64List"),
    )
    feature.oneof_decl.add(name="kind")
    for fld in feature.field:
        fld.oneof_index = 0
    features = message(
        "Features", ("feature", 1, repeated, _F.TYPE_MESSAGE, ".tensorflow.Features.FeatureEntry")
    )
    entry = features.nested_type.add(name="FeatureEntry")
    entry.options.map_entry = True
    entry.field.add(name="key", number=1, label=optional, type=_F.TYPE_STRING)
    entry.field.add(name="value", number=2, label=optional, type=_F.TYPE_MESSAGE,
                    type_name=".tensorflow.Feature")
    message("Example", ("features", 1, optional, _F.TYPE_MESSAGE, ".tensorflow.Features"))
    return file


_POOL = descriptor_pool.DescriptorPool()
_POOL.Add(_schema())

Example = message_factory.GetMessageClass(_POOL.FindMessageTypeByName("tensorflow.Example"))
Feature = message_factory.GetMessageClass(_POOL.FindMessageTypeByName("tensorflow.Feature"))


def parse_example(data: bytes):
    """The Example in a record's bytes, or None if they are not one."""
    try:
        return Example.FromString(data)
    except Exception:  # noqa: BLE001 - protobuf's DecodeError differs by backend
        return None


def feature_kind(feature: Message) -> str | None:
    """'bytes', 'float', 'int64' or None for an empty Feature."""
    kind = feature.WhichOneof("kind")
    return kind.removesuffix("_list") if kind else None


def feature_values(feature: Message) -> list:
    kind = feature.WhichOneof("kind")
    return list(getattr(feature, kind).value) if kind else []


def values_of(feature, key: str) -> list:
    """The values of ``key`` in a features map, or [] when it is absent."""
    return feature_values(feature[key]) if key in feature else []


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def example_parts(features: Message, key: str, payload: bytes) -> list:
    """A serialized Example, as buffers, holding ``features`` plus ``key`` = [payload].

    Everything but the payload is serialized by protobuf. The one large bytes
    feature (the encoded image) is appended as its map entry in wire format
    (Example.features=1 > Features.feature=1 entry > key=1, value=2 > Feature.bytes_list=1
    > BytesList.value=1), so the payload is referenced, never copied. Protobuf
    merges map entries, so this parses to the same Example as setting the feature
    directly; odprep's tests check that against TensorFlow.
    """
    rest = features.SerializeToString(deterministic=True)
    key_bytes = key.encode("utf-8")
    bytes_list = b"\x0a" + _varint(len(payload))  # BytesList.value
    feature = b"\x0a" + _varint(len(bytes_list) + len(payload))  # Feature.bytes_list
    entry_body = (b"\x0a" + _varint(len(key_bytes)) + key_bytes  # FeatureEntry.key
                  + b"\x12" + _varint(len(feature) + len(bytes_list) + len(payload)))  # .value
    entry = b"\x0a" + _varint(len(entry_body) + len(feature) + len(bytes_list) + len(payload))
    head = entry + entry_body + feature + bytes_list
    features_size = len(head) + len(payload) + len(rest)
    return [b"\x0a" + _varint(features_size) + head, payload, rest]  # Example.features


Features = message_factory.GetMessageClass(_POOL.FindMessageTypeByName("tensorflow.Features"))
