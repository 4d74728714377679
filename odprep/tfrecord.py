"""TFRecord framing, written and read without TensorFlow.

Each record is: uint64 length (little endian), masked CRC32C of those 8 bytes,
the data, masked CRC32C of the data. The mask is TensorFlow's: rotate right by
15 bits and add 0xa282ead8.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import google_crc32c

from odprep.errors import OdprepError
from odprep.fileio import open_binary

_MASK_DELTA = 0xA282EAD8
_U64 = struct.Struct("<Q")
_U32 = struct.Struct("<I")


def _mask(crc: int) -> int:
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + _MASK_DELTA) & 0xFFFFFFFF


def masked_crc(data: bytes) -> int:
    return _mask(google_crc32c.value(data))


def frame(data: bytes) -> bytes:
    """One TFRecord: header, data and footer, ready to append to a file."""
    return b"".join(frame_parts([data]))


def frame_parts(parts: list) -> list:
    """One TFRecord whose data is the concatenation of ``parts`` (bytes-like), as a list
    of buffers for os.writev: the data is never copied, its CRC is computed piecewise."""
    size = sum(len(p) for p in parts)
    length = _U64.pack(size)
    crc = 0
    for part in parts:
        crc = google_crc32c.extend(crc, part)
    return [length + _U32.pack(masked_crc(length)), *parts, _U32.pack(_mask(crc))]


def write_all(fd: int, buffers: list) -> int:
    """os.writev every buffer to fd, resuming after partial writes; returns bytes written."""
    total = sum(len(b) for b in buffers)
    if not hasattr(os, "writev"):  # Windows: one write per buffer
        for buffer in buffers:
            view = memoryview(buffer).cast("B")
            while view:
                view = view[os.write(fd, view):]
        return total
    views = [memoryview(b).cast("B") for b in buffers]
    remaining = total
    while remaining:
        written = os.writev(fd, views[:1024])
        remaining -= written
        while written:
            if written >= len(views[0]):
                written -= len(views[0])
                views.pop(0)
            else:
                views[0] = views[0][written:]
                written = 0
    return total


def copy_range(source_fd: int, target_fd: int, offset: int, length: int) -> None:
    """Append ``length`` bytes of source (from ``offset``) to target, in the kernel when possible."""
    while length:
        try:
            copied = os.copy_file_range(source_fd, target_fd, length, offset)
        except (AttributeError, OSError):
            copied = 0
        if copied == 0:  # no copy_file_range here (or across filesystems): plain copy
            data = os.pread(source_fd, length, offset)
            write_all(target_fd, [data])
            copied = len(data)
        offset += copied
        length -= copied


class TFRecordError(OdprepError):
    """A record whose framing is broken: truncated, or failing a CRC."""

    def __init__(self, source: object, problem: str, fix: str = "", where: str = "",
                 offset: int = 0, index: int = 0) -> None:
        super().__init__(source, problem, fix, where)
        self.offset = offset
        self.index = index

    def __reduce__(self):
        return (type(self), (self.source, self.problem, self.fix, self.where, self.offset, self.index))


@dataclass(frozen=True, slots=True)
class RawRecord:
    index: int
    offset: int
    data: bytes


def read_records(path: Path | str, check_crc: bool = True) -> Iterator[RawRecord]:
    """Yield every record of a TFRecord file, checking both CRCs.

    Raises TFRecordError naming the record index and byte offset at the first
    broken record, and the offset after the last good one.
    """
    path = Path(path)
    rewrite = "Re-create the file; records before it are intact"
    with open_binary(path, "TFRecord file") as handle:
        size = os.fstat(handle.fileno()).st_size
        index = 0
        offset = 0
        while True:
            header = handle.read(12)
            if not header:
                return
            where = f"record {index} at byte {offset}"
            if len(header) < 12:
                raise TFRecordError(path, f"truncated header ({len(header)} of 12 bytes); the last good "
                                    f"record ends at byte {offset}", rewrite, where, offset, index)
            length_bytes = header[:8]
            (length,) = _U64.unpack(length_bytes)
            (length_crc,) = _U32.unpack(header[8:])
            if check_crc and masked_crc(length_bytes) != length_crc:
                raise TFRecordError(path, f"length CRC mismatch (the file is corrupt or not a TFRecord); "
                                    f"the last good record ends at byte {offset}", rewrite, where,
                                    offset, index)
            left = size - offset - 12
            if length + 4 > left:  # never read (or allocate) past the end of the file
                raise TFRecordError(path, f"truncated record (it claims {length} bytes, {max(left, 0)} are "
                                    f"left); the last good record ends at byte {offset}", rewrite, where,
                                    offset, index)
            data = handle.read(length)
            footer = handle.read(4)
            if len(data) < length or len(footer) < 4:
                raise TFRecordError(path, f"truncated record ({len(data)} of {length} bytes); the last "
                                    f"good record ends at byte {offset}", rewrite, where, offset, index)
            if check_crc and masked_crc(data) != _U32.unpack(footer)[0]:
                raise TFRecordError(path, "data CRC mismatch (bytes changed after writing)", rewrite,
                                    where, offset, index)
            yield RawRecord(index, offset, data)
            offset += 16 + length
            index += 1


def read_image_examples(paths) -> Iterator[tuple[str, object]]:
    """(where, features map) of every record of the files; a record that is not an Example
    with image/encoded stops with an OdprepError naming it (for the exporters)."""
    from odprep import keys, proto
    from odprep.fileio import expand_paths

    for path in expand_paths(paths):
        for raw in read_records(path):
            where = f"{path}: record {raw.index}"
            example = proto.parse_example(raw.data)
            if example is None or keys.IMAGE_ENCODED not in example.features.feature:
                raise OdprepError(where, "not an Example with image/encoded", "Run odprep validate on the file")
            yield where, example.features.feature
