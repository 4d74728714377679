"""What `patch-config` moves with the training length, batch size and objects per image
(OD API pipeline.config): the learning-rate schedule follows --num-steps, the rate
follows --batch-size with --scale-lr, and every cap on objects follows --max-objects."""

from __future__ import annotations

from odprep.errors import OdprepError
from odprep.prototext import Message


def _value(block: Message, name: str) -> float | None:
    try:
        text = block.scalar(name)
        return float(text) if text is not None else None
    except ValueError:
        return None


def _rates(root: Message) -> list[Message]:
    """The learning_rate blocks of train_config's optimizer."""
    return [rate for train in root.messages("train_config")[:1] for optimizer in train.messages("optimizer")
            for kind in optimizer.fields if isinstance(kind.value, Message)
            for rate in kind.value.messages("learning_rate")]


def patch_schedule(editor, root: Message, num_steps: int, set_scalar) -> None:
    """Cosine decay over the new length (warmup kept below it); a manual schedule's steps
    scaled to it."""
    train = root.messages("train_config")[:1]
    old = _value(train[0], "num_steps") if train else None
    for rate in _rates(root):
        for cosine in rate.messages("cosine_decay_learning_rate"):
            set_scalar(editor, cosine, "total_steps", num_steps)
            warmup = _value(cosine, "warmup_steps")
            if warmup is not None and warmup >= num_steps:
                set_scalar(editor, cosine, "warmup_steps", max(num_steps // 10, 0))
        for manual in rate.messages("manual_step_learning_rate"):
            for step in manual.messages("schedule"):
                at = _value(step, "step")
                if at is not None and old:
                    set_scalar(editor, step, "step", max(1, min(num_steps - 1, round(at * num_steps / old))))


def patch_learning_rate(editor, root: Message, model: str | None, batch_size: int, source: str,
                        set_scalar) -> None:
    """Scale a zoo learning rate from the batch size it was tuned for to ``batch_size``
    (the linear scaling rule), warmup rate included."""
    from odprep.checks.facts import template_rates

    tuned = template_rates("od_api", model)
    for rate in _rates(root):
        for cosine in rate.messages("cosine_decay_learning_rate"):
            base = _value(cosine, "learning_rate_base")
            if base not in tuned:
                raise OdprepError(source, f"learning_rate_base {base} is not a zoo value, so the batch size "
                                  "it was tuned for is unknown", "Scale it by hand: rate x new batch / old batch")
            factor = batch_size / tuned[base]
            set_scalar(editor, cosine, "learning_rate_base", round(base * factor, 8))
            warm = _value(cosine, "warmup_learning_rate")
            if warm is not None:
                set_scalar(editor, cosine, "warmup_learning_rate", round(warm * factor, 8))
            return
    raise OdprepError(source, "no cosine_decay_learning_rate to scale", "Scale the learning rate by hand")


def patch_max_objects(editor, root: Message, count: int, arch: Message | None, set_scalar) -> None:
    """Every cap on objects per image: the input readers' and train_config's
    max_number_of_boxes, the detections kept after NMS, and Faster R-CNN's proposals (never
    lowered)."""
    for role in ("train_input_reader", "eval_input_reader"):
        for reader in root.messages(role):
            set_scalar(editor, reader, "max_number_of_boxes", count)
    for train in root.messages("train_config")[:1]:
        set_scalar(editor, train, "max_number_of_boxes", count)
    if arch is None:
        return
    for post in arch.messages("post_processing") + arch.messages("second_stage_post_processing"):
        for nms in post.messages("batch_non_max_suppression"):
            for name in ("max_total_detections", "max_detections_per_class"):
                if (_value(nms, name) or 100) < count:
                    set_scalar(editor, nms, name, count)
    if arch.first("first_stage_max_proposals") is not None and (_value(arch, "first_stage_max_proposals") or 300) < count:
        set_scalar(editor, arch, "first_stage_max_proposals", count)
