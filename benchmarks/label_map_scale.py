"""Reading big label maps: odprep's reader (which names the line of every problem) beside
protobuf's own text_format parser, which the OD API's label_map_util uses. Both run in
their own process on the same files; prints wall time, the ratio and peak memory.

    python benchmarks/label_map_scale.py --items 10000 100000 1000000
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import measure  # noqa: E402

ODPREP = "from odprep.labelmap import LabelMap; import sys; print(len(LabelMap.load(sys.argv[1]).items))"
# The OD API's StringIntLabelMap (name = 1, id = 2, display_name = 3), read with text_format.Merge.
PROTOBUF = """
import sys
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format
f = descriptor_pb2.FileDescriptorProto(name="lm.proto", package="lm")
item = f.message_type.add(name="StringIntLabelMapItem")
for number, (name, kind) in enumerate([("name", 9), ("id", 5), ("display_name", 9)], start=1):
    item.field.add(name=name, number=number, type=kind, label=1)
top = f.message_type.add(name="StringIntLabelMap")
top.field.add(name="item", number=1, type=11, label=3, type_name=".lm.StringIntLabelMapItem")
pool = descriptor_pool.DescriptorPool()
pool.Add(f)
cls = message_factory.GetMessageClass(pool.FindMessageTypeByName("lm.StringIntLabelMap"))
message = cls()
text_format.Merge(open(sys.argv[1]).read(), message)
print(len(message.item))
"""


def write_map(path: Path, items: int) -> None:
    with open(path, "w") as handle:
        for i in range(items):
            handle.write(f'item {{\n  id: {i + 1}\n  name: "class_{i}"\n  display_name: "Class {i}"\n}}\n')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        print(f"{'items':>9}  {'odprep s':>9}  {'protobuf s':>10}  {'ratio':>6}  {'odprep MiB':>10}  "
              f"{'protobuf MiB':>12}")
        for items in args.items:
            path = Path(folder) / f"{items}.pbtxt"
            write_map(path, items)
            ours, our_peak = measure([sys.executable, "-c", ODPREP, str(path)], sample=True)
            theirs, their_peak = measure([sys.executable, "-c", PROTOBUF, str(path)], sample=True)
            print(f"{items:>9}  {ours:>9.2f}  {theirs:>10.2f}  {ours / theirs:>6.2f}  "
                  f"{our_peak / 2**20:>10.0f}  {their_peak / 2**20:>12.0f}")


if __name__ == "__main__":
    main()
