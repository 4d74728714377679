"""Model Garden experiment YAML (official.vision): patched losslessly, read for `check`.

Text in, text out, through ruamel.yaml's round-trip mode, so comments, key order, quoting
and flow lists stay. Model Garden applies the YAML with ``is_strict=True``: an unknown key
is an error, so only keys the experiment family has are ever written. ``num_classes``
counts the background: the highest label id + 1.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path

from odprep import gardenschedule
from odprep.errors import OdprepError
from odprep.pipeline_config import ConfigPatch
from odprep.yamlsize import refuse_alias_bombs

YAML_SUFFIXES = (".yaml", ".yml")
DETECTION = ("retinanet", "maskrcnn")
# Keys odprep may write, by family (all exist in retinanet_resnetfpn_coco,
# maskrcnn_resnetfpn_coco and seg_deeplabv3plus_pascal respectively).
COMMON_KEYS = ("task.train_data.input_path", "task.validation_data.input_path", "task.model.num_classes",
               "task.train_data.global_batch_size", "trainer.train_steps", "task.init_checkpoint",
               "task.validation_data.decoder.simple_decoder.regenerate_source_id")
_CAPS = ("task.train_data.parser.max_num_instances", "task.validation_data.parser.max_num_instances",
         "task.model.detection_generator.max_num_detections")  # objects per image (--max-objects)
_ANCHOR = ("task.model.anchor.anchor_size", "task.model.anchor.aspect_ratios")  # --fit-anchors
_SCHEDULE = gardenschedule.KEYS  # --num-steps, --scale-lr
FAMILY_KEYS = {"retinanet": ("task.annotation_file", *_CAPS, *_ANCHOR, *_SCHEDULE),
               "maskrcnn": ("task.annotation_file", "task.model.include_mask", *_CAPS, *_ANCHOR, *_SCHEDULE),
               "segmentation": ()}


def is_experiment(source: str, text: str) -> bool:
    """True for a Model Garden YAML: by its suffix, or a top-level task/trainer key."""
    if str(source).lower().endswith(YAML_SUFFIXES):
        return True
    head = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")][:50]
    return any(line.startswith(("task:", "trainer:", "runtime:")) for line in head)


def num_classes_for(max_id: int) -> int:
    """Model Garden counts the background as class 0: ids 1..N need num_classes N + 1."""
    return max_id + 1


def _yaml(text: str = ""):
    """A round-trip YAML that writes as ``text`` does: document markers, and null as the file
    spells it (null, ~ or nothing)."""
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096
    body = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    yaml.explicit_start = bool(body) and body[0].rstrip().startswith("---")
    yaml.explicit_end = bool(body) and body[-1].rstrip() == "..."
    spellings = {"null": len(re.findall(r":\s+null\s*(#.*)?$", text, re.M)),
                 "~": len(re.findall(r":\s+~\s*(#.*)?$", text, re.M))}
    null = max(spellings, key=spellings.get) if any(spellings.values()) else "null"
    yaml.representer.add_representer(
        type(None), lambda representer, _: representer.represent_scalar("tag:yaml.org,2002:null", null))
    return yaml


def _keep_anchors(node) -> None:
    """ruamel drops anchors nothing refers to; keep every one the file wrote. Each node is
    visited once, however many aliases refer to it."""
    seen: set[int] = set()
    stack = [node]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        anchor = getattr(current, "anchor", None)
        if anchor is not None and getattr(anchor, "value", None):
            anchor.always_dump = True
        stack.extend(current.values() if isinstance(current, dict) else current if isinstance(current, list)
                     else ())


_KEY = re.compile(r"^( *)[^\s#-][^:#]*:(\s*(#.*)?)?$")  # a key that opens a block
_ITEM = re.compile(r"^( *)-( +)")


def guess_indent(text: str) -> tuple[int, int, int]:
    """(mapping indent, sequence indent, dash offset) as the file writes them."""
    mapping, sequence, offset = 0, 0, 0
    lines = [line.rstrip("\r") for line in text.splitlines() if line.strip() and
             not line.lstrip().startswith("#")]
    for line, following in zip(lines, lines[1:], strict=False):
        opener = _KEY.match(line)
        if opener is None:
            continue
        parent = len(opener.group(1))
        item = _ITEM.match(following)
        if item is not None and not sequence:
            offset = max(0, len(item.group(1)) - parent)
            sequence = offset + 1 + len(item.group(2))  # where the item's content starts
        elif item is None and not mapping:
            child = len(following) - len(following.lstrip(" "))
            if child > parent:
                mapping = child - parent
    return mapping or 2, sequence or mapping or 2, offset


def load(text: str, source: str = ""):
    """The YAML as ruamel's round-trip document, and the indentation to dump it with."""
    from ruamel.yaml.error import YAMLError

    try:
        document = _yaml().load(text)
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}:{mark.column + 1}: " if mark is not None else ""
        problem = str(getattr(exc, "problem", None) or exc).splitlines()[0][:120]
        raise OdprepError(source, f"{where}not valid YAML ({problem})", "Fix the file") from None
    except RecursionError:
        raise OdprepError(source, "the YAML nests too deeply", "Fix the file") from None
    except Exception as exc:  # noqa: BLE001 - ruamel raises TypeError etc. on odd keys
        raise OdprepError(source, f"not valid YAML ({type(exc).__name__}: {str(exc)[:100]})",
                          "Fix the file") from None
    refuse_alias_bombs(document, source)
    if not isinstance(document, dict) or not isinstance(document.get("task"), dict):
        raise OdprepError(source, "not a Model Garden experiment (no 'task:' mapping)",
                          "Start from `odprep templates` or an official/vision config")
    return (document, *guess_indent(text))


def family(task: dict, source: str = "") -> str:
    """retinanet, maskrcnn or segmentation, from the keys the task's config holds."""
    model = task.get("model") if isinstance(task.get("model"), dict) else {}
    train = task.get("train_data") if isinstance(task.get("train_data"), dict) else {}
    losses = task.get("losses") if isinstance(task.get("losses"), dict) else {}
    if any(k in model for k in ("mask_head", "include_mask", "rpn_head", "roi_sampler", "detection_head")):
        return "maskrcnn"
    if "ignore_label" in losses or "mask_scoring_head" in model or "output_size" in train \
            or "crop_size" in train:
        return "segmentation"
    return "retinanet"  # anchors, or nothing that tells: the detection keys are the common case


def _get(document: dict, dotted: str):
    node = document
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _set(document: dict, dotted: str, value) -> None:
    from ruamel.yaml.comments import CommentedMap
    from ruamel.yaml.scalarstring import DoubleQuotedScalarString, SingleQuotedScalarString

    *parents, last = dotted.split(".")
    node = document
    for part in parents:
        child = node.get(part)
        if not isinstance(child, dict):
            child = CommentedMap()
            node[part] = child
        node = child
    old = node.get(last)
    if isinstance(value, str) and isinstance(old, DoubleQuotedScalarString | SingleQuotedScalarString):
        value = type(old)(value)
    node[last] = value


def _paths_value(old, values: tuple[str, ...]):
    """Input paths in the form the file used: a list stays a list; a string holds one path
    or comma-separated patterns (Model Garden splits it on commas)."""
    from ruamel.yaml.comments import CommentedSeq
    from ruamel.yaml.scalarstring import DoubleQuotedScalarString, SingleQuotedScalarString

    quoted = (DoubleQuotedScalarString, SingleQuotedScalarString)
    if isinstance(old, list):
        style = type(old[0]) if old and isinstance(old[0], quoted) else str
        seq = CommentedSeq(style(v) for v in values)
        if old.fa.flow_style():
            seq.fa.set_flow_style()
        return seq
    return ",".join(values)


def _flow_like(old, value):
    """A list written as the file wrote the one it replaces (a new one as a flow list)."""
    from ruamel.yaml.comments import CommentedSeq

    if not isinstance(value, list | tuple):
        return value
    seq = CommentedSeq(value)
    if not isinstance(old, CommentedSeq) or old.fa.flow_style():
        seq.fa.set_flow_style()
    return seq


def patch_experiment(text: str, patch: ConfigPatch, source: str = "") -> str:
    """The YAML text with only the requested keys changed."""
    document, indent, sequence_indent, offset = load(text, source)
    kind = family(document["task"], source)
    allowed = set(COMMON_KEYS) | set(FAMILY_KEYS.get(kind or "", ()))
    changes: dict[str, object] = {}
    for option, patterns in (("--train-input", patch.train_inputs), ("--eval-input", patch.eval_inputs)):
        for pattern in patterns or ():
            if "," in pattern:
                raise OdprepError(option, f"{pattern!r} holds a comma, and Model Garden splits input_path "
                                  "at commas (it would read two patterns)",
                                  "Rename the file, or give each pattern as its own --train-input/--eval-input")
    if patch.train_inputs is not None:
        changes["task.train_data.input_path"] = _paths_value(
            _get(document, "task.train_data.input_path"), patch.train_inputs)
    if patch.eval_inputs is not None:
        changes["task.validation_data.input_path"] = _paths_value(
            _get(document, "task.validation_data.input_path"), patch.eval_inputs)
    if patch.num_classes is not None:
        changes["task.model.num_classes"] = patch.num_classes
    if patch.batch_size is not None:
        changes["task.train_data.global_batch_size"] = patch.batch_size
    if patch.num_steps is not None:
        changes["trainer.train_steps"] = patch.num_steps
    if patch.checkpoint is not None:
        changes["task.init_checkpoint"] = patch.checkpoint
    if patch.regenerate_source_id is not None:
        changes["task.validation_data.decoder.simple_decoder.regenerate_source_id"] = \
            patch.regenerate_source_id
    if patch.annotation_file is not None:
        changes["task.annotation_file"] = patch.annotation_file
    if patch.max_objects is not None:
        changes.update({key: patch.max_objects for key in _CAPS})
    for name, value in (patch.anchors or {}).items():
        changes[f"task.model.anchor.{name}"] = _flow_like(_get(document, f"task.model.anchor.{name}"), value)
    if (patch.num_steps is not None or patch.scale_lr) and kind in ("retinanet", "maskrcnn"):
        from odprep.checks.facts import template_rates

        batch = patch.batch_size or _int(_get(document, "task.train_data.global_batch_size"))
        if patch.scale_lr and not batch:
            raise OdprepError(source, "--scale-lr needs a batch size", "Pass --batch-size N")
        changes.update({key: _flow_like(_get(document, key), value) for key, value in gardenschedule.patch(
            document, kind, patch.num_steps, batch if patch.scale_lr else None, template_rates("garden", kind),
            source).items()})
    elif patch.scale_lr:
        raise OdprepError(source, f"--scale-lr: the {kind} experiment has no learning-rate schedule odprep knows",
                          "Set trainer.optimizer_config by hand")
    if patch.masks is not None:
        if kind != "maskrcnn" and patch.masks:
            raise OdprepError(source, f"--masks: this experiment ({kind or 'unknown family'}) has no mask "
                              "head", "Start from the Mask R-CNN template (odprep templates), or drop "
                              "--masks")
        if kind == "maskrcnn":
            changes["task.model.include_mask"] = patch.masks
    unknown = [key for key in changes if key not in allowed]
    if unknown:
        what = {"task.annotation_file": "--annotation-file"}.get(unknown[0], unknown[0])
        raise OdprepError(source, f"{what}: the {kind or 'unknown'} experiment has no {unknown[0]}; Model "
                          "Garden refuses unknown keys", "Leave it out for this experiment")
    if patch.label_map_path is not None or patch.eval_examples is not None:
        pass  # Model Garden reads class ids from the records; it has no label map path
    for key, value in changes.items():
        _set(document, key, value)
    if patch.no_checkpoint:  # '' rather than no key: the experiment's default is a real checkpoint
        _set(document, "task.init_checkpoint", "")
    _keep_anchors(document)
    yaml = _yaml(text)
    yaml.indent(mapping=indent, sequence=sequence_indent, offset=offset)
    out = io.StringIO()
    yaml.dump(document, out)
    patched = out.getvalue()
    if text.startswith("\ufeff"):
        patched = "\ufeff" + patched
    if "\r\n" in text:
        patched = patched.replace("\r\n", "\n").replace("\n", "\r\n")
    load(patched, source or "patched config")  # never hand back a broken file
    return patched


# --- reading (for check) ----------------------------------------------------------------------

@dataclass(frozen=True)
class Experiment:
    path: str
    family: str | None
    num_classes: int | None
    num_classes_text: str | None
    train_inputs: tuple[str, ...]
    eval_inputs: tuple[str, ...]
    regenerate_source_id: bool
    include_mask: bool
    init_checkpoint: str | None
    annotation_file: str | None
    has_annotation_file_key: bool
    batch_size: int | None


def _patterns(value) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(p.strip() for p in value.split(",") if p.strip())
    if isinstance(value, list):
        return tuple(str(v).strip() for v in value if str(v).strip())
    return ()


def _text(value, key: str, path: object) -> str | None:
    """A path-like setting: a string, or unset; anything else is named, not stringified."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        kind = "a list" if isinstance(value, list) else "a mapping" if isinstance(value, dict) \
            else "a boolean" if isinstance(value, bool) else "a number"
        raise OdprepError(path, f"{key} is {kind}, not a path", f"Write {key}: 'PATH' (or '')")
    return value


def _int(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def read_experiment(path: Path | str, text: str) -> Experiment:
    document = load(text, str(path))[0]
    task = document["task"]
    kind = family(task, str(path))
    raw = _get(document, "task.model.num_classes")
    include = _get(document, "task.model.include_mask")
    return Experiment(
        str(path), kind, _int(raw), None if raw is None or _int(raw) is not None else str(raw),
        _patterns(_get(document, "task.train_data.input_path")),
        _patterns(_get(document, "task.validation_data.input_path")),
        _get(document, "task.validation_data.decoder.simple_decoder.regenerate_source_id") is True,
        include is not False if kind == "maskrcnn" else False,
        _text(_get(document, "task.init_checkpoint"), "task.init_checkpoint", path),
        _text(_get(document, "task.annotation_file"), "task.annotation_file", path),
        isinstance(task, dict) and "annotation_file" in task,
        _int(_get(document, "task.train_data.global_batch_size")),
    )
