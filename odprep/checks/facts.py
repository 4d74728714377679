"""What a config says about training, the same facts for both trainers: the limits that
truncate ground truth or detections, and the schedule."""

from __future__ import annotations

from dataclasses import dataclass

from odprep.anchorconfig import garden_anchors, od_api_anchors
from odprep.experiment_config import _get, _int, _patterns
from odprep.pipeline_config import Resizer, proto_int
from odprep.prototext import Message

# The OD API's proto defaults where a config leaves a field out.
OD_API_DEFAULTS = {"max_number_of_boxes": 100, "max_total_detections": 100, "max_detections_per_class": 100,
                   "first_stage_max_proposals": 300}
GARDEN_DEFAULTS = {"max_num_instances": 100, "max_num_detections": 100}


@dataclass(frozen=True)
class Limit:
    """A cap on objects per image: ``value``, set by ``setting`` (how to change it)."""

    what: str  # "train ground truth", "eval ground truth", "detections", "proposals"
    value: int
    setting: str  # the field, as a user finds it in the config
    split: str  # whose images it applies to: "train" or "eval"
    effect: str


@dataclass(frozen=True)
class Schedule:
    num_steps: int | None  # train_config.num_steps / trainer.train_steps
    steps_field: str
    total_steps: int | None = None  # what the learning-rate schedule decays over
    total_field: str = ""
    warmup_steps: int | None = None
    warmup_field: str = ""
    last_boundary: int | None = None  # a step schedule's last step
    boundary_field: str = ""
    learning_rate: float | None = None
    batch_size: int | None = None


@dataclass(frozen=True)
class ConfigFacts:
    path: str
    trainer: str  # "od_api" or "garden"
    model: str | None  # ssd, faster_rcnn, ... or retinanet, maskrcnn, segmentation
    num_classes: int | None = None
    limits: tuple[Limit, ...] = ()
    schedule: Schedule | None = None
    resizer: object = None  # pipeline_config.Resizer: how images reach the model's input size
    anchors: object = None  # anchors.Anchors, for anchor-based models
    train_inputs: tuple[str, ...] = ()  # the train records' paths or globs, as written


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def od_api_facts(root: Message, path: str, model: str | None, arch: Message | None, resizer) -> ConfigFacts:
    limits: list[Limit] = []
    train = (root.messages("train_config") or [Message(open=-1)])[0]
    readers = {role: root.messages(role) for role in ("train_input_reader", "eval_input_reader")}
    truncated = "the boxes past it are dropped from the ground truth"
    for role, split in (("train_input_reader", "train"), ("eval_input_reader", "eval")):
        for block in readers[role][:1]:
            value = proto_int(block.scalar("max_number_of_boxes")) or OD_API_DEFAULTS["max_number_of_boxes"]
            limits.append(Limit(f"{split} ground truth", value, f"{role}.max_number_of_boxes", split, truncated))
    value = proto_int(train.scalar("max_number_of_boxes"))
    if value is not None:
        limits.append(Limit("train ground truth", value, "train_config.max_number_of_boxes", "train", truncated))
    if arch is not None:
        for post in arch.messages("post_processing") + arch.messages("second_stage_post_processing"):
            for nms in post.messages("batch_non_max_suppression"):
                for name in ("max_total_detections", "max_detections_per_class"):
                    value = proto_int(nms.scalar(name)) or OD_API_DEFAULTS[name]
                    limits.append(Limit("detections", value, f"post_processing.batch_non_max_suppression.{name}",
                                        "eval", "evaluation cannot reach full recall on those images"))
        if model == "faster_rcnn":
            value = proto_int(arch.scalar("first_stage_max_proposals")) or \
                OD_API_DEFAULTS["first_stage_max_proposals"]
            limits.append(Limit("proposals", value, "faster_rcnn.first_stage_max_proposals", "train",
                                "the second stage never sees some objects"))
    schedule = None
    for rate in (m for optimizer in train.messages("optimizer") for kind in optimizer.fields
                 if isinstance(kind.value, Message) for m in kind.value.messages("learning_rate")):
        cosine = rate.messages("cosine_decay_learning_rate")
        manual = rate.messages("manual_step_learning_rate")
        steps = [proto_int(s.scalar("step")) for m in manual for s in m.messages("schedule")]
        schedule = Schedule(
            proto_int(train.scalar("num_steps")), "train_config.num_steps",
            total_steps=proto_int(cosine[0].scalar("total_steps")) if cosine else None,
            total_field="cosine_decay_learning_rate.total_steps",
            warmup_steps=proto_int(cosine[0].scalar("warmup_steps")) if cosine else None,
            warmup_field="cosine_decay_learning_rate.warmup_steps",
            last_boundary=max((s for s in steps if s is not None), default=None),
            boundary_field="manual_step_learning_rate.schedule.step",
            learning_rate=_number(cosine[0].scalar("learning_rate_base")) if cosine else
            _number(manual[0].scalar("initial_learning_rate")) if manual else None,
            batch_size=proto_int(train.scalar("batch_size")))
        break
    if schedule is None:
        schedule = Schedule(proto_int(train.scalar("num_steps")), "train_config.num_steps",
                            batch_size=proto_int(train.scalar("batch_size")))
    return ConfigFacts(path, "od_api", model, proto_int(arch.scalar("num_classes")) if arch else None,
                       tuple(limits), schedule, resizer, od_api_anchors(arch, model),
                       tuple(s.text for reader in readers["train_input_reader"][:1]
                             for tf_reader in reader.messages("tf_record_input_reader")
                             for f in tf_reader.all("input_path")
                             for s in (f.value if isinstance(f.value, list) else [f.value])))


def garden_facts(document, path: str, family: str | None) -> ConfigFacts:
    limits: list[Limit] = []
    if family in ("retinanet", "maskrcnn"):
        for key, split in (("train_data", "train"), ("validation_data", "eval")):
            value = _int(_get(document, f"task.{key}.parser.max_num_instances")) or \
                GARDEN_DEFAULTS["max_num_instances"]
            limits.append(Limit(f"{split} ground truth", value, f"task.{key}.parser.max_num_instances", split,
                                "the groundtruths past it are cut"))
        value = _int(_get(document, "task.model.detection_generator.max_num_detections")) or \
            GARDEN_DEFAULTS["max_num_detections"]
        limits.append(Limit("detections", value, "task.model.detection_generator.max_num_detections", "eval",
                            "evaluation cannot reach full recall on those images"))
    schedule = _garden_schedule(document, family)
    size = _get(document, "task.model.input_size")
    resizer = None  # Model Garden's parsers scale an image to fit input_size and pad it
    if isinstance(size, list) and len(size) >= 2 and all(_int(v) for v in size[:2]):
        resizer = Resizer("fit", _int(size[0]), _int(size[1]))
    return ConfigFacts(path, "garden", family, _int(_get(document, "task.model.num_classes")), tuple(limits),
                       schedule, resizer, garden_anchors(document, family),
                       _patterns(_get(document, "task.train_data.input_path")))


def _garden_schedule(document, family: str | None) -> Schedule:
    from odprep import gardenschedule

    steps = _int(_get(document, "trainer.train_steps"))
    batch = _int(_get(document, "task.train_data.global_batch_size"))
    plan = gardenschedule.stepwise(document, family)
    if plan is None:
        return Schedule(steps, "trainer.train_steps", batch_size=batch)
    whose = f" (the {plan.experiment} default: the YAML sets no trainer.optimizer_config)" if plan.experiment else ""
    rate, warmup = gardenschedule.RATE, gardenschedule.WARMUP
    return Schedule(steps, "trainer.train_steps", warmup_steps=plan.warmup_steps,
                    warmup_field=f"{warmup}.linear.warmup_steps{whose}", last_boundary=max(plan.boundaries),
                    boundary_field=f"{rate}.stepwise.boundaries{whose}", learning_rate=plan.values[0],
                    batch_size=batch)


def template_rates(trainer: str, model: str | None) -> dict[float, int]:
    """The learning rates the bundled templates (the zoo's configs) were tuned with, and the
    batch size each was tuned for: a config that still has one of these rates with another
    batch size has a rate set for another batch."""
    from odprep import prototext
    from odprep.pipeline_config import model_block, template_file, template_names, template_text

    rates: dict[float, int] = {}
    if trainer != "od_api":
        from odprep import experiment_config, gardenschedule
        from odprep.pipeline_config import template_file, template_names, template_text

        default = gardenschedule.DEFAULTS.get(model or "")
        if default is None:
            return rates
        rates[default.values[0]] = default.batch_size
        for name in template_names():
            if template_file(name).endswith(".yaml"):
                document = experiment_config.load(template_text(name), name)[0]
                plan = gardenschedule.stepwise(document, experiment_config.family(document["task"]))
                if experiment_config.family(document["task"]) == model and plan and not plan.experiment:
                    rates[plan.values[0]] = plan.batch_size
        return rates
    for name in template_names():
        if not template_file(name).endswith(".config"):
            continue
        root = prototext.parse(template_text(name), name)
        if model_block(root)[0] != model:
            continue
        facts = od_api_facts(root, name, model, None, None)
        if facts and facts.schedule and facts.schedule.learning_rate and facts.schedule.batch_size:
            rates[facts.schedule.learning_rate] = facts.schedule.batch_size
    return rates


def load_facts(config_path) -> ConfigFacts:
    """The facts of a config file of either trainer (for `inspect --report --config`)."""
    from odprep.fileio import read_text

    return facts_from_text(read_text(config_path, "config"), str(config_path))


def facts_from_text(text: str, source: str) -> ConfigFacts:
    from odprep import experiment_config, prototext
    from odprep.pipeline_config import _resizer, model_block

    if experiment_config.is_experiment(source, text):
        document = experiment_config.load(text, source)[0]
        return garden_facts(document, source, experiment_config.family(document["task"]))
    root = prototext.parse(text, source)
    model, arch = model_block(root, source) if root.messages("model") else (None, None)
    return od_api_facts(root, source, model, arch, _resizer(arch) if arch is not None else None)
