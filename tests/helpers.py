"""Small helpers the tests share."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from odprep.cli import main


def run_cli(*args: object):
    """Invoke the CLI in-process; returns click's Result."""
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def assert_bad_input(result, *fragments: str) -> None:
    """Exit 2, one line naming what is wrong, no traceback."""
    assert result.exit_code == 2, result.output
    text = result.output.strip()
    assert "Traceback" not in text
    assert len(text.splitlines()) == 1, text
    for fragment in fragments:
        assert fragment in text, f"{fragment!r} not in {text!r}"


def leftovers(folder: Path) -> list[str]:
    """Files in a folder other than inputs: outputs or temporary files."""
    return sorted(p.name for p in folder.iterdir() if p.is_file())


VOC_TEMPLATE = """<annotation>
  <filename>{filename}</filename>
  <size><width>{width}</width><height>{height}</height><depth>3</depth></size>
  {objects}
</annotation>
"""


def voc_object(name: str = "cat", box=(1, 2, 30, 40), extra: str = "") -> str:
    xmin, ymin, xmax, ymax = box
    return (f"<object><name>{name}</name>{extra}<bndbox><xmin>{xmin}</xmin><ymin>{ymin}</ymin>"
            f"<xmax>{xmax}</xmax><ymax>{ymax}</ymax></bndbox></object>")


IDS = {"cat": 1, "dog": 2, "traffic light": 3, "bird": 4}


def framed_example(filename: str, objects=(), image: bytes | None = None, source: str | None = None,
                   size: tuple[int, int] = (96, 64), ids: dict[str, int] = IDS) -> bytes:
    """One framed record as odprep writes them: ``objects`` are (class, xmin, xmax, ymin, ymax),
    normalised; the image defaults to the sample's cat_dog.jpg (96x64)."""
    import hashlib

    from odprep import keys, proto
    from odprep.tfrecord import frame

    from .conftest import SAMPLE

    data = image if image is not None else (SAMPLE / "images" / "cat_dog.jpg").read_bytes()
    features = proto.Features()
    feature = features.feature
    feature[keys.IMAGE_FILENAME].bytes_list.value.append(filename.encode())
    feature[keys.IMAGE_SOURCE_ID].bytes_list.value.append((source if source is not None else filename).encode())
    feature[keys.IMAGE_SHA256].bytes_list.value.append(hashlib.sha256(data).hexdigest().encode())
    feature[keys.IMAGE_FORMAT].bytes_list.value.append(b"png" if data[:4] == b"\x89PNG" else b"jpeg")
    feature[keys.IMAGE_WIDTH].int64_list.value.append(size[0])
    feature[keys.IMAGE_HEIGHT].int64_list.value.append(size[1])
    for name, *box in objects:
        for key, value in zip(keys.BBOX_KEYS, box, strict=True):
            feature[key].float_list.value.append(value)
        feature[keys.CLASS_TEXT].bytes_list.value.append(name.encode())
        feature[keys.CLASS_LABEL].int64_list.value.append(ids.get(name, len(ids) + 1))
    return frame(b"".join(proto.example_parts(features, keys.IMAGE_ENCODED, data)))
