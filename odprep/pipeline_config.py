"""Lossless pipeline.config patching: text in, text out.

The config is parsed with odprep.prototext, which keeps byte offsets; each change
is an edit at those offsets. Comments, order, quoting, spacing and one-line blocks
are left exactly as they were, so a diff shows only the fields asked for.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from odprep import prototext
from odprep.errors import OdprepError
from odprep.fileio import read_text
from odprep.prototext import Field, Message, Scalar

MODEL_TYPES = ("ssd", "faster_rcnn", "center_net", "rfcn", "experimental_model")
PLACEHOLDER = "PATH_TO_BE_CONFIGURED"
# fine_tune_checkpoint_type values each meta-architecture's restore_from_objects accepts.
CHECKPOINT_TYPES = {"ssd": ("classification", "detection", "full"),
                    "faster_rcnn": ("classification", "detection", "full"),
                    "center_net": ("classification", "detection", "full", "fine_tune")}
_PATH_FIELDS = ("input_path", "label_map_path", "fine_tune_checkpoint")


@dataclass(frozen=True)
class ConfigPatch:
    """What to change; None leaves a field alone."""

    train_inputs: tuple[str, ...] | None = None
    eval_inputs: tuple[str, ...] | None = None
    eval_reader: int | None = None  # patch only this eval_input_reader (0-based); None: all
    label_map_path: str | None = None
    num_classes: int | None = None
    masks: bool | None = None
    batch_size: int | None = None
    num_steps: int | None = None
    checkpoint: str | None = None
    checkpoint_type: str | None = None
    no_checkpoint: bool = False  # remove fine_tune_checkpoint(_type): train from scratch
    eval_examples: int | None = None
    annotation_file: str | None = None  # Model Garden: the COCO JSON its evaluator reads
    regenerate_source_id: bool | None = None  # Model Garden: when source ids are not numbers
    scale_lr: bool = False  # the zoo's learning rate, scaled to batch_size (linear scaling rule)
    max_objects: int | None = None  # every cap on objects per image
    anchors: dict | None = None  # anchor generator field -> value (from anchorfit, --fit-anchors)


class _Editor:
    """Edits at offsets of the original text, applied back to front."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.edits: list[tuple[int, int, str]] = []
        self.newline = "\r\n" if "\r\n" in text else "\n"  # inserted lines follow the file

    def replace(self, start: int, end: int, new: str) -> None:
        self.edits.append((start, end, new))

    def apply(self) -> str:
        out = self.text
        ordered = sorted(enumerate(self.edits), key=lambda e: (e[1][0], e[1][1], e[0]), reverse=True)
        for _, (start, end, new) in ordered:  # same offset: earlier edits end up first
            out = out[:start] + new + out[end:]
        return out

    # --- layout helpers -----------------------------------------------------------------------
    def line_start(self, offset: int) -> int:
        return self.text.rfind("\n", 0, offset) + 1

    def indent_at(self, offset: int) -> str:
        start = self.line_start(offset)
        line = self.text[start:offset]
        return line if not line.strip() else line[: len(line) - len(line.lstrip())]

    def starts_line(self, offset: int) -> bool:
        return not self.text[self.line_start(offset):offset].strip()

    def one_line(self, block: Message) -> bool:
        return block.open >= 0 and "\n" not in self.text[block.open:block.close]

    def child_indent(self, block: Message) -> str:
        for fld in block.fields:
            if self.starts_line(fld.start):
                return self.indent_at(fld.start)
        if block.open < 0:
            return ""
        unit = "  "
        return self.indent_at(block.close) + unit if self.starts_line(block.close) else \
            self.indent_at(block.open) + unit

    def line_end(self, offset: int) -> int:
        """End of the line holding offset, past a trailing comment, before the newline."""
        end = self.text.find("\n", offset)
        if end < 0:
            return len(self.text)
        return end - 1 if end > offset and self.text[end - 1] == "\r" else end

    def insert(self, block: Message, lines: list[str], after: Field | None = None) -> None:
        """Insert field lines into a block, after ``after`` or after its last field."""
        anchor = after or (block.fields[-1] if block.fields else None)
        if block.open >= 0 and self.one_line(block):
            at = anchor.end if anchor else block.open + 1
            self.replace(at, at, " " + " ".join(lines) + ("" if anchor else " "))
            return
        indent = self.child_indent(block)
        body = "".join(self.newline + indent + line for line in lines)
        if anchor is not None:
            at = self.line_end(anchor.end) if self._rest_is_comment(anchor.end) else anchor.end
            self.replace(at, at, body)
        elif block.open >= 0:
            at = block.open + 1
            self.replace(at, at, body + (self.newline + self.indent_at(block.close)
                                         if not self.starts_line(block.close) else ""))
        else:  # empty file
            self.replace(len(self.text), len(self.text), self.newline.join(lines) + self.newline)

    def _rest_is_comment(self, offset: int) -> bool:
        rest = self.text[offset:self.line_end(offset)].strip()
        return not rest or rest.startswith("#")

    def delete_field(self, fld: Field) -> None:
        """Remove a field; its whole line when nothing else is on it."""
        start, end = fld.start, fld.end
        if self.starts_line(start) and self._rest_is_comment(end):
            start = self.line_start(start)
            end = self.line_end(end)
            end = end + len(self.newline) if end < len(self.text) else end
            if start > 0 and end == len(self.text):
                start -= 1
        else:  # inline: take the spaces before it too, so no double space is left
            while start > 0 and self.text[start - 1] in " \t":
                start -= 1
        self.replace(start, end, "")


def _format(value: object, like: Scalar | None = None) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return prototext.quote(value, like.quote if like is not None and like.is_string else '"')
    return str(value)


def _set_scalar(editor: _Editor, block: Message, name: str, value: object, enum: bool = False) -> None:
    existing = [f for f in block.all(name) if isinstance(f.value, Scalar)]
    for fld in existing:
        text = str(value) if enum else _format(value, fld.value)
        editor.replace(fld.value.start, fld.value.end, text)
    if not existing:
        editor.insert(block, [f"{name}: {value if enum else _format(value)}"])


def _set_repeated(editor: _Editor, block: Message, name: str, values: tuple[str, ...]) -> None:
    existing = block.all(name)
    if not existing:
        editor.insert(block, [f"{name}: {_format(v)}" for v in values])
        return
    first = existing[0]
    if isinstance(first.value, list):  # name: ["a", "b"] stays a list
        like = first.value[0] if first.value else None
        open_at = editor.text.index("[", first.start)
        close_at = editor.text.rindex("]", first.start, first.end) + 1
        editor.replace(open_at, close_at, "[" + ", ".join(_format(v, like) for v in values) + "]")
    elif isinstance(first.value, Scalar):
        editor.replace(first.value.start, first.value.end, _format(values[0], first.value))
        if len(values) > 1:
            editor.insert(block, [f"{name}: {_format(v, first.value)}" for v in values[1:]],
                          after=first)
    for fld in existing[1:]:
        editor.delete_field(fld)


def _sub_block(editor: _Editor, block: Message, name: str) -> Message | None:
    """The first sub-block called name; None after scheduling its insertion."""
    found = block.messages(name)
    if found:
        return found[0]
    return None


def _patch_reader(editor: _Editor, reader: Message, inputs: tuple[str, ...] | None,
                  patch: ConfigPatch) -> None:
    if inputs is not None:
        tf_reader = _sub_block(editor, reader, "tf_record_input_reader")
        if tf_reader is None:
            inner = " ".join(f"input_path: {_format(v)}" for v in inputs)
            editor.insert(reader, [f"tf_record_input_reader {{ {inner} }}"])
        else:
            _set_repeated(editor, tf_reader, "input_path", inputs)
    if patch.label_map_path is not None:
        _set_scalar(editor, reader, "label_map_path", patch.label_map_path)
    if patch.masks is not None:
        _set_scalar(editor, reader, "load_instance_masks", patch.masks)
        if patch.masks:
            _set_scalar(editor, reader, "mask_type", "PNG_MASKS", enum=True)


def model_block(root: Message, source: str = "") -> tuple[str, Message]:
    """(model type, its block), e.g. ("ssd", ...)."""
    models = root.messages("model")
    if not models or not models[0].fields or not isinstance(models[0].fields[0].value, Message):
        raise OdprepError(source, "no 'model { <type> { ... } }' block",
                          "Start from a model zoo config or `odprep templates`")
    arch = models[0].fields[0]
    return arch.name, arch.value


def mask_head(root: Message) -> str | None:
    """What predicts instance masks in this model, or None if nothing does."""
    models = root.messages("model")
    if not models:
        return None
    arch_type, arch = model_block(root)
    if arch_type == "faster_rcnn":
        for predictor in arch.messages("second_stage_box_predictor"):
            for mask_rcnn in predictor.messages("mask_rcnn_box_predictor"):
                if mask_rcnn.scalar("predict_instance_masks") == "true":
                    return "mask_rcnn_box_predictor"
    if arch_type == "center_net" and arch.messages("mask_estimation_task"):
        return "mask_estimation_task"
    return None


def _check_masks_possible(root: Message, source: str) -> tuple[str, Message]:
    arch_type, arch = model_block(root, source)
    if mask_head(root) is None:
        what = ("this faster_rcnn has no mask head (second_stage_box_predictor.mask_rcnn_box_predictor."
                "predict_instance_masks is not true)") if arch_type == "faster_rcnn" else \
            f"model {arch_type} has no instance-mask head"
        raise OdprepError(source, f"--masks: {what}, so the masks would never be trained",
                          "Start from a Mask R-CNN config (odprep new-config --template "
                          "mask_rcnn_resnet50_v1_640), or drop --masks")
    return arch_type, arch


def patch_config(text: str, patch: ConfigPatch, source: str = "") -> str:
    """The config text with only the requested fields changed."""
    root = prototext.parse(text, source)
    editor = _Editor(text)
    if patch.masks:
        arch_type, arch = _check_masks_possible(root, source)
        if arch_type == "faster_rcnn":
            # The resizer pads; re-resizing padded masks fails at the first training step.
            _set_scalar(editor, arch, "resize_masks", False)
    trains = root.messages("train_input_reader")
    evals = root.messages("eval_input_reader")
    if patch.train_inputs is not None and not trains:
        raise OdprepError(source, "no train_input_reader block", "Add one, or start from a template")
    if patch.eval_inputs is not None and not evals:
        raise OdprepError(source, "no eval_input_reader block", "Add one, or start from a template")
    if patch.eval_reader is not None and not 0 <= patch.eval_reader < len(evals):
        raise OdprepError(source, f"there is no eval_input_reader #{patch.eval_reader} "
                          f"(the config has {len(evals)})", "Pick an index from 0")
    for reader in trains:
        _patch_reader(editor, reader, patch.train_inputs, patch)
    for index, reader in enumerate(evals):
        chosen = patch.eval_reader is None or patch.eval_reader == index
        _patch_reader(editor, reader, patch.eval_inputs if chosen else None, patch)
    if patch.num_classes is not None:
        _, arch = model_block(root, source)
        _set_scalar(editor, arch, "num_classes", patch.num_classes)
    train_fields: dict[str, object] = {"batch_size": patch.batch_size, "num_steps": patch.num_steps,
                                       "fine_tune_checkpoint": patch.checkpoint}
    train_blocks = root.messages("train_config")
    has_type = bool(train_blocks) and train_blocks[0].first("fine_tune_checkpoint_type") is not None
    if patch.checkpoint_type is not None or (patch.checkpoint is not None and not has_type):
        train_fields["fine_tune_checkpoint_type"] = patch.checkpoint_type or "detection"
    if patch.no_checkpoint:
        if patch.checkpoint is not None or patch.checkpoint_type is not None:
            raise OdprepError(source, "--no-checkpoint with --checkpoint/--checkpoint-type",
                              "Pick one")
        for block in train_blocks:
            for name in ("fine_tune_checkpoint", "fine_tune_checkpoint_type",
                         "fine_tune_checkpoint_version"):
                for fld in block.all(name):
                    editor.delete_field(fld)
    _set_in_block(editor, root, "train_config", train_fields)
    _set_in_block(editor, root, "eval_config", {"num_examples": patch.eval_examples})
    _patch_training(editor, root, patch, source)
    patched = editor.apply()
    prototext.parse(patched, source or "patched config")  # never hand back a broken file
    return patched


def _patch_training(editor: _Editor, root: Message, patch: ConfigPatch, source: str) -> None:
    from odprep import trainpatch

    model, arch = model_block(root, source) if root.messages("model") else (None, None)
    if patch.num_steps is not None:
        trainpatch.patch_schedule(editor, root, patch.num_steps, _set_scalar)
    if patch.scale_lr:
        batch = patch.batch_size or proto_int((root.messages("train_config") or [Message()])[0]
                                              .scalar("batch_size"))
        if not batch:
            raise OdprepError(source, "--scale-lr needs a batch size", "Pass --batch-size N")
        trainpatch.patch_learning_rate(editor, root, model, batch, source, _set_scalar)
    if patch.max_objects is not None:
        trainpatch.patch_max_objects(editor, root, patch.max_objects, arch, _set_scalar)
    if patch.anchors:
        from odprep import anchorconfig

        if arch is None or anchorconfig.generator_block(arch, model) is None:
            raise OdprepError(source, f"--fit-anchors: this model ({model or 'none'}) has no anchor generator",
                              "Anchors apply to ssd and faster_rcnn models; leave the option out")
        anchorconfig.patch_od_api(editor, arch, model, patch.anchors, _set_scalar, _set_repeated)


def _set_in_block(editor: _Editor, root: Message, name: str, fields: dict[str, object]) -> None:
    """Set fields in the first top-level block ``name``, appending the block if absent."""
    fields = {k: v for k, v in fields.items() if v is not None}
    if not fields:
        return
    blocks = root.messages(name)
    if blocks:
        for field_name, value in fields.items():
            _set_scalar(editor, blocks[0], field_name, value)
        return
    nl = editor.newline
    body = "".join(f"{nl}  {k}: {_format(v)}" for k, v in fields.items())
    lead = "" if editor.text.endswith("\n") or not editor.text else nl
    editor.replace(len(editor.text), len(editor.text), f"{lead}{name} {{{body}{nl}}}{nl}")


# --- templates -------------------------------------------------------------------------------

TEMPLATE_SUFFIXES = (".config", ".yaml")


def template_names() -> list[str]:
    folder = resources.files("odprep.templates")
    return sorted(p.name.rsplit(".", 1)[0] for p in folder.iterdir() if p.name.endswith(TEMPLATE_SUFFIXES))


def template_file(name: str) -> str:
    """The template's file name (NAME.config for the OD API, NAME.yaml for Model Garden)."""
    for suffix in TEMPLATE_SUFFIXES:
        if (resources.files("odprep.templates") / f"{name}{suffix}").is_file():
            return f"{name}{suffix}"
    raise OdprepError(name, "no such template", f"Pick one of: {', '.join(template_names())}")


def template_text(name: str) -> str:
    return (resources.files("odprep.templates") / template_file(name)).read_text(encoding="utf-8")


def template_summary(name: str) -> str:
    """The first comment line of a template: what model it is."""
    for line in template_text(name).splitlines():
        if line.startswith("#"):
            return line.lstrip("# ").strip()
    return ""


# --- reading a config (for check) ------------------------------------------------------------

def unset_paths(root: Message, text: str) -> list[tuple[int, str]]:
    """(line, dotted field) of every path field left as PATH_TO_BE_CONFIGURED or empty."""
    found: list[tuple[int, str]] = []

    def walk(block: Message, prefix: str) -> None:
        for fld in block.fields:
            name = f"{prefix}{fld.name}"
            values = fld.value if isinstance(fld.value, list) else [fld.value]
            for value in values:
                if isinstance(value, Message):
                    walk(value, f"{name}.")
                elif fld.name in _PATH_FIELDS and (PLACEHOLDER in value.text or not value.text.strip()):
                    found.append((prototext.line_col(text, fld.start)[0], name))

    walk(root, "")
    return found

@dataclass(frozen=True)
class InputReader:
    role: str  # "train_input_reader" or "eval_input_reader #0"
    input_paths: tuple[str, ...]
    label_map_path: str | None
    load_instance_masks: bool
    mask_type: str | None


@dataclass(frozen=True)
class Resizer:
    """How the trainer resizes an image: 'fixed' (height, width: stretched), 'keep_aspect'
    (the OD API's: shorter side to min, unless the longer passes max; padded to max x max when
    ``pads``) or 'fit' (Model Garden's: scaled to fit height x width, padded to it)."""

    kind: str
    first: int
    second: int
    pads: bool = False

    def scales(self, width, height):
        """(x, y) factors for images of these sizes (numbers or numpy arrays)."""
        import numpy as np

        width, height = np.maximum(np.asarray(width, dtype=np.float64), 1), \
            np.maximum(np.asarray(height, dtype=np.float64), 1)
        if self.kind == "fixed":
            return self.second / width, self.first / height
        if self.kind == "fit":
            factor = np.minimum(self.first / height, self.second / width)
        else:
            factor = np.minimum(self.first / np.minimum(width, height), self.second / np.maximum(width, height))
        return factor, factor

    def canvas(self, width, height):
        """(width, height) of what the network sees: the resized image, or the padded size."""
        import numpy as np

        if self.kind == "fixed":
            return np.full(np.shape(width), self.second), np.full(np.shape(height), self.first)
        if self.kind == "fit" or self.pads:
            size = (self.second, self.first) if self.kind == "fit" else (self.second, self.second)
            return np.full(np.shape(width), size[0]), np.full(np.shape(height), size[1])
        scale_x, scale_y = self.scales(width, height)
        return np.rint(np.asarray(width) * scale_x), np.rint(np.asarray(height) * scale_y)

    def describe(self) -> str:
        if self.kind == "fixed":
            return f"fixed {self.second}x{self.first}"
        if self.kind == "fit":
            return f"fit into {self.second}x{self.first}, padded"
        return f"keep aspect, min {self.first}, max {self.second}" + (", padded" if self.pads else "")


@dataclass(frozen=True)
class PipelineConfig:
    path: str
    model_type: str | None
    num_classes: int | None
    readers: tuple[InputReader, ...]
    num_classes_text: str | None = None  # as written, when it is not an integer
    mask_head: str | None = None
    resize_masks: bool = True
    resizer: Resizer | None = None
    batch_size: int | None = None
    eval_examples: int | None = None
    checkpoint: str | None = None
    checkpoint_type: str | None = None
    unset: tuple[tuple[int, str], ...] = ()


def proto_int(text: str | None) -> int | None:
    """An integer field as protobuf's text parser reads it (decimal, 0x hex, C-style 0 octal),
    or None when it is not one (e.g. 90.0, which protobuf refuses for an integer field)."""
    if text is None:
        return None
    octal = re.fullmatch(r"([-+]?)0(\d+)", text)
    try:
        value = int(f"{octal.group(1)}0o{octal.group(2)}" if octal else text, 0)
    except ValueError:
        return None
    return value if -(2**63) <= value < 2**64 else None


def _resizer(arch: Message) -> Resizer | None:
    for block in arch.messages("image_resizer"):
        for fixed in block.messages("fixed_shape_resizer"):
            return Resizer("fixed", proto_int(fixed.scalar("height")) or 300,
                           proto_int(fixed.scalar("width")) or 300)
        for keep in block.messages("keep_aspect_ratio_resizer"):
            return Resizer("keep_aspect", proto_int(keep.scalar("min_dimension")) or 600,
                           proto_int(keep.scalar("max_dimension")) or 1024,
                           keep.scalar("pad_to_max_dimension") == "true")
    return None


def read_pipeline_config(path: Path | str) -> PipelineConfig:
    text = read_text(path, "config")
    root = prototext.parse(text, str(path))
    model_type, num_classes, raw, resizer, resize_masks = None, None, None, None, True
    if root.messages("model"):
        model_type, arch = model_block(root, str(path))
        raw = arch.scalar("num_classes")
        num_classes = proto_int(raw)
        resizer = _resizer(arch)
        resize_masks = arch.scalar("resize_masks") != "false"
    readers = []
    for role in ("train_input_reader", "eval_input_reader"):
        blocks = root.messages(role)
        for index, block in enumerate(blocks):
            name = role if role == "train_input_reader" and len(blocks) == 1 else f"{role} #{index}"
            tf_reader = block.messages("tf_record_input_reader")
            inputs = tuple(f.value.text for r in tf_reader for f in r.all("input_path")
                           if isinstance(f.value, Scalar))
            inputs += tuple(s.text for r in tf_reader for f in r.all("input_path")
                            if isinstance(f.value, list) for s in f.value)
            readers.append(InputReader(name, inputs, block.scalar("label_map_path"),
                                       (block.scalar("load_instance_masks") or "false") == "true",
                                       block.scalar("mask_type")))
    train = root.messages("train_config")[:1]
    evaluation = root.messages("eval_config")[:1]
    return PipelineConfig(
        str(path), model_type, num_classes, tuple(readers),
        num_classes_text=raw if raw is not None and num_classes is None else None,
        mask_head=mask_head(root), resize_masks=resize_masks, resizer=resizer,
        batch_size=proto_int(train[0].scalar("batch_size")) if train else None,
        eval_examples=proto_int(evaluation[0].scalar("num_examples")) if evaluation else None,
        checkpoint=train[0].scalar("fine_tune_checkpoint") if train else None,
        checkpoint_type=train[0].scalar("fine_tune_checkpoint_type") if train else None,
        unset=tuple(unset_paths(root, text)))
