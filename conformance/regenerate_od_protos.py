"""Regenerate the OD API's *_pb2.py modules for protobuf >= 4.

The registry packaging of research/object_detection ships generated modules that
protobuf 4 refuses ("Descriptors cannot be created directly") and no .proto
sources. The descriptors are embedded in those modules, so: load them once with
the pure-Python protobuf backend, write a FileDescriptorSet, and let protoc
(grpcio-tools) generate current modules from it.

Run with the conformance environment's Python: python regenerate_od_protos.py
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import subprocess
import sys
import tempfile
from pathlib import Path


def collect_descriptor_set(package_dir: Path) -> bytes:
    os.environ["PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION"] = "python"
    from google.protobuf import descriptor_pb2

    files: dict[str, descriptor_pb2.FileDescriptorProto] = {}

    def add(descriptor) -> None:
        if descriptor.name in files:
            return
        for dependency in descriptor.dependencies:
            add(dependency)
        proto = descriptor_pb2.FileDescriptorProto()
        descriptor.CopyToProto(proto)
        files[descriptor.name] = proto

    for module in pkgutil.iter_modules([str(package_dir)]):
        if module.name.endswith("_pb2"):
            add(importlib.import_module(f"object_detection.protos.{module.name}").DESCRIPTOR)
    return descriptor_pb2.FileDescriptorSet(file=list(files.values())).SerializeToString()


def main() -> int:
    spec = importlib.util.find_spec("object_detection")
    if spec is None or not spec.submodule_search_locations:
        print("object_detection is not installed", file=sys.stderr)
        return 2
    root = Path(next(iter(spec.submodule_search_locations))).parent
    protos = root / "object_detection" / "protos"
    if os.environ.get("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION") != "python":
        # A fresh interpreter, so that no module is loaded with another backend first.
        env = {**os.environ, "PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION": "python"}
        return subprocess.call([sys.executable, __file__], env=env)
    data = collect_descriptor_set(protos)
    from google.protobuf import descriptor_pb2

    names = [f.name for f in descriptor_pb2.FileDescriptorSet.FromString(data).file
             if f.name.startswith("object_detection/")]
    with tempfile.TemporaryDirectory() as tmp:
        descriptor_set = Path(tmp) / "od.pb"
        descriptor_set.write_bytes(data)
        out = Path(tmp) / "out"
        out.mkdir()
        subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"--descriptor_set_in={descriptor_set}",
                        f"--python_out={out}", *names], check=True)
        for name in names:
            generated = out / name.replace(".proto", "_pb2.py")
            (root / generated.relative_to(out)).write_bytes(generated.read_bytes())
    print(f"regenerated {len(names)} modules in {protos}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
