"""The odprep command line: parse options, call the library, print a summary."""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

import click

from odprep import storage
from odprep.errors import OdprepError, printable, printable_lines
from odprep.extras import DISTRIBUTION, install_hint
from odprep.locations import Location
from odprep.termination import end_like_ctrl_c, exit_code, interrupted_message, quiet_exit, restore

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def echo(text: str, err: bool = False) -> None:
    """Everything odprep prints goes through here: whatever a name from data holds, no
    control character reaches the terminal (reports keep their line breaks)."""
    click.echo(printable_lines(text), err=err)


class BadInput(click.ClickException):
    """Bad input: one line, no traceback, exit 2."""

    exit_code = 2


def library_errors(command):
    """Turn library errors into clean CLI errors at the boundary."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        previous = end_like_ctrl_c()
        try:
            result = command(*args, **kwargs)
            storage.publish()  # outputs at URLs appear only now, all at once
            return result
        except OdprepError as error:
            raise BadInput(error.message) from None
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except KeyboardInterrupt as interrupt:
            echo(interrupted_message(), err=True)
            quiet_exit()
            sys.exit(exit_code(interrupt))
        except OSError as exc:  # a file operation no library path mapped; still one line
            from odprep.fileio import os_error

            raise BadInput(os_error(exc.filename or "odprep", exc, "continue").message) from None
        except MemoryError:
            raise BadInput("odprep: out of memory. Give it more memory, or split the input.") from None
        except RecursionError:
            raise BadInput("odprep: the input nests too deeply to read. Check the file.") from None
        except Exception as exc:
            if os.environ.get("ODPREP_DEBUG"):
                raise
            echo(f"odprep: internal error ({type(exc).__name__}: {printable(exc)}). This is a bug; please "
                       "report it (ODPREP_DEBUG=1 shows the traceback).", err=True)
            sys.exit(70)
        finally:
            from odprep.fileio import remove_leftover_temps

            remove_leftover_temps()  # whatever an interrupt or an error cut off before its own clean-up
            restore(previous)

    return wrapper


class OneLineErrors(click.Group):
    """Usage errors in one line too (click prints usage, a hint and the error on three);
    commands listed in groups, in the order of the work, each summary in full."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        ordered = [name for names in COMMAND_GROUPS.values() for name in names]
        return ordered + sorted(set(self.commands) - set(ordered))

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        listed: set[str] = set()
        for title, names in COMMAND_GROUPS.items():
            rows = [(name, self.commands[name].get_short_help_str(limit=200)) for name in names
                    if name in self.commands]
            listed.update(names)
            with formatter.section(title):
                formatter.write_dl(rows)
        rest = [(name, self.commands[name].get_short_help_str(limit=200)) for name in sorted(self.commands)
                if name not in listed]
        if rest:
            with formatter.section("Other commands"):
                formatter.write_dl(rest)

    def main(self, args=None, prog_name=None, **extra):
        extra.pop("standalone_mode", None)
        previous = end_like_ctrl_c()  # a signal while URLs are staged still cleans up
        try:
            super().main(args, prog_name or "odprep", standalone_mode=False, **extra)
        except KeyboardInterrupt as interrupt:
            echo(interrupted_message(), err=True)
            quiet_exit()
            sys.exit(exit_code(interrupt))
        except OdprepError as error:
            echo(f"Error: {error.message}", err=True)
            sys.exit(2)
        except click.exceptions.NoArgsIsHelpError as bare:  # plain `odprep`: the help, and success
            echo(bare.ctx.get_help())
            sys.exit(0)
        except click.UsageError as error:
            command = error.ctx.command_path if error.ctx is not None else "odprep"
            echo(f"Error: {error.format_message()} (see {command} -h)", err=True)
            sys.exit(error.exit_code)
        except click.ClickException as error:
            echo(f"Error: {error.format_message()}", err=True)
            sys.exit(error.exit_code)
        except click.Abort:
            echo(interrupted_message(), err=True)
            quiet_exit()
            sys.exit(130)
        except click.exceptions.Exit as done:
            sys.exit(done.exit_code)
        finally:
            storage.close()
            restore(previous)
        sys.exit(0)


@click.group(cls=OneLineErrors, context_settings=CONTEXT)
@click.version_option(package_name=DISTRIBUTION, message=f"%(prog)s %(version)s (the {DISTRIBUTION} distribution)")
@click.option("--storage-option", "storage_options", multiple=True, metavar="KEY=VALUE",
              help="A setting for the storage of URL paths (added to fsspec's configuration), "
                   "e.g. endpoint_url=http://localhost:9000.")
def main(storage_options: tuple[str, ...]) -> None:
    """Make TFRecords, label_map.pbtxt and pipeline.config agree, for the TensorFlow
    Object Detection API and Model Garden.

    \b
    Example:
      odprep voc2tfr sample_data/voc/Annotations --images-dir sample_data/images -o out/train.record
    """
    storage.set_options(storage_options)


# How `odprep -h` lists the commands: in the order of the work.
COMMAND_GROUPS = {
    "Convert annotations to TFRecords": ("voc2tfr", "coco2tfr", "csv2tfr", "yolo2tfr", "labelme2tfr",
                                         "cvat2tfr", "kitti2tfr", "oid2tfr", "seg2tfr", "make-labelmap"),
    "Configure training": ("templates", "new-config", "patch-config"),
    "Check before training": ("check", "validate", "inspect"),
    "Export back": ("tfr2coco", "tfr2voc"),
}
# How a converter's -h groups its options; the rest come first, under "Options".
OPTION_GROUPS = {
    "Splits and sampling": ("split_spec", "split_from_lists", "group_by", "group_near_duplicates", "seed",
                            "oversample", "threshold", "oversample_rounding"),
    "When input is bad": ("skip_invalid", "clip_boxes", "skip_empty", "allow_outside", "allow_empty"),
    "Images": ("auto_orient", "reencode", "max_size", "max_size_from_config", "jpeg_quality", "max_pixels"),
    "Scale": ("num_shards", "workers", "runner", "beam_options", "storage_options"),
}


class ConverterCommand(click.Command):
    """A converter: its basic options first, then the groups of OPTION_GROUPS."""

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        grouped = {name for names in OPTION_GROUPS.values() for name in names}
        rows = {param.name: param.get_help_record(ctx) for param in self.get_params(ctx)
                if isinstance(param, click.Option)}
        basics = [row for name, row in rows.items() if row and name not in grouped]
        with formatter.section("Options"):
            formatter.write_dl(basics)
        for title, names in OPTION_GROUPS.items():
            found = [rows[name] for name in names if rows.get(name)]
            if found:
                with formatter.section(title):
                    formatter.write_dl(found)


def _shared_params(fmt) -> list[click.Parameter]:
    """The options every converter shares, declared once. Format-specific ones come from
    the registry (odprep.formats)."""
    from odprep.images import DEFAULT_MAX_PIXELS

    box_options = fmt.box_options
    boxes = [
        click.Option(["--label-map"], type=Location(exists=True, dir_okay=False),
                     help="Use this label map; every class must be in it. Without it, label_map.pbtxt "
                          "is written beside OUTPUT."),
    ] if box_options else []
    params = [
        click.Option(["-o", "--output"], required=True, type=Location("output"),
                     help="Output TFRecord path (shards: OUTPUT-00000-of-0000N)."),
        *boxes,
        click.Option(["--num-shards"], default=1, show_default=True, type=click.IntRange(1),
                     help="Number of output shards."),
        click.Option(["--workers"], type=click.IntRange(1), default=None,
                     help="Parallel worker processes (default: CPU count)."),
        click.Option(["--runner"], default=None, metavar="NAME",
                     help="Encode on Apache Beam instead of local processes: DirectRunner, "
                          f"DataflowRunner, FlinkRunner, SparkRunner ({install_hint('beam')})."),
        click.Option(["--beam-option", "beam_options"], multiple=True, metavar="KEY=VALUE",
                     help="A Beam pipeline option (repeatable), e.g. direct_num_workers=2, project=P."),
        click.Option(["--skip-invalid"], is_flag=True,
                     help="Skip bad images/objects with one warning each, instead of stopping."),
    ]
    if box_options:
        params += [
            click.Option(["--clip-boxes"], is_flag=True, help="Clip boxes that run outside the image."),
            click.Option(["--skip-empty"], is_flag=True, help="Drop images without objects."),
            click.Option(["--allow-outside-images-dir", "allow_outside"], is_flag=True,
                         help="Read images named with '..' or absolute paths outside --images-dir."),
        ]
    return params + [
        click.Option(["--auto-orient/--no-auto-orient"], default=None,
                     help="Images with an EXIF orientation: --auto-orient turns the pixels upright (the "
                          "annotation was made on the upright view, as most tools show it); "
                          "--no-auto-orient writes them as stored. Default: decided by the size the "
                          "annotation declares, and refused when it says upright."),
        click.Option(["--max-size"], type=click.IntRange(16), default=None, metavar="PIXELS",
                     help="Downscale images whose longest side is larger, and re-encode them (boxes "
                          "and keypoints are normalised: unchanged; masks resized nearest-neighbour)."),
        click.Option(["--max-size-from-config"], type=Location(exists=True, dir_okay=False), default=None,
                     metavar="CONFIG", help="--max-size from the config's image_resizer (or Model "
                                            "Garden's input_size), with a quarter more for random crops."),
        click.Option(["--jpeg-quality"], type=click.IntRange(1, 100), default=None,
                     help="Quality of re-encoded JPEGs (default: about the source's own)."),
        click.Option(["--reencode"], is_flag=True,
                     help="Re-encode BMP/GIF/WebP/TIFF images to PNG instead of rejecting them."),
        click.Option(["--max-pixels"], type=click.IntRange(1), default=DEFAULT_MAX_PIXELS, show_default=True,
                     help="Refuse images with more pixels than this (decompression bombs)."),
        click.Option(["--numeric-source-ids"], is_flag=True,
                     help="image/source_id 1..N instead of the file name: unique, numeric and exact in "
                          "float32, as COCO evaluators and Model Garden want them."),
        click.Option(["--allow-empty"], is_flag=True,
                     help="Write an empty file when no image is written, instead of failing."),
        click.Option(["-q", "--quiet"], is_flag=True, help="No progress bar."),
        click.Option(["--split", "split_spec"], default=None,
                     help="Split by image, e.g. train=0.8,val=0.2 (-o must contain {split})."),
        click.Option(["--split-from-lists"], type=Location(exists=True, file_okay=False),
                     help="A folder of train.txt, val.txt and test.txt (-o must contain {split}); each "
                          f"line names a record by {fmt.listed_by}."),
        click.Option(["--group-by"], default=None, metavar="REGEX",
                     help="--split keeps images whose file names give the same match (its first group) "
                          "on one side, e.g. a video id; by default Roboflow's copies of one photo."),
        click.Option(["--group-near-duplicates"], is_flag=True,
                     help="--split also keeps pictures that look alike on one side (re-encoded, resized or "
                          "mirrored copies, found by perceptual hash: each image is read and decoded once "
                          "more)."),
        click.Option(["--seed"], default=0, show_default=True, type=int,
                     help="Seed for splitting and oversampling."),
        click.Option(["--oversample"], type=click.Choice(["repeat-factor"]), default=None,
                     help="Repeat-factor sampling (LVIS) of the train split."),
        click.Option(["--threshold"], default=0.001, show_default=True, type=click.FloatRange(0, 1),
                     help="Repeat-factor threshold t: images of classes in fewer than t of the images "
                          "are repeated sqrt(t/f) times."),
        click.Option(["--oversample-rounding"], type=click.Choice(["stochastic", "ceil"]),
                     default="stochastic", show_default=True, help="How repeat factors are rounded."),
    ]


def _convert(fmt, args: dict) -> None:
    """One converter command: open the format's records, convert, print the summary."""
    from odprep.conversion import run
    from odprep.example import EncodeOptions
    from odprep.formats import ConvertOptions, ReadContext, SplitOptions
    from odprep.parallel import default_workers
    from odprep.report import format_result
    from odprep.writer import Summary, tqdm_progress

    summary = Summary()
    skip = args["skip_invalid"] or args.get("skip_unpaired", False)
    workers = args["workers"] or default_workers()
    context = ReadContext(workers, summary.on_invalid if skip else None, args.get("allow_outside", False))
    encode = EncodeOptions(clip_boxes=args.get("clip_boxes", False), skip_invalid=skip,
                           skip_empty=args.get("skip_empty", False), reencode=args["reencode"],
                           max_pixels=args["max_pixels"], allow_empty=args["allow_empty"],
                           auto_orient=args["auto_orient"], max_size=_max_size(args),
                           jpeg_quality=args["jpeg_quality"], **fmt.encode(args))
    split = SplitOptions(args["split_spec"], args["split_from_lists"], args["seed"],
                         args["oversample"] is not None, args["threshold"], args["oversample_rounding"],
                         args["group_by"], args["group_near_duplicates"])
    if args["runner"]:
        from odprep.beam import BeamRunner

        workers = BeamRunner(args["runner"], args["beam_options"])
    elif args["beam_options"]:
        raise OdprepError("--beam-option", "given without --runner", "Add --runner DirectRunner (or another)")
    options = ConvertOptions(args["output"], args.get("label_map"), args["num_shards"], workers, encode,
                             split, args["quiet"], args["numeric_source_ids"])
    opened = fmt.open(args, context)
    result = run(opened, options, summary, tqdm_progress(args["quiet"]))
    try:  # the output is committed: from here on nothing may turn the run into a failure
        text = format_result(result)
    except (Exception, MemoryError) as error:
        text = f"the output is written; its summary could not be shown ({type(error).__name__})"
    echo(text)


def _max_size(args: dict) -> int | None:
    """--max-size, or the size the config's resizer keeps, with a margin for random crops."""
    if args["max_size_from_config"] is None:
        return args["max_size"]
    if args["max_size"] is not None:
        raise OdprepError("--max-size", "given with --max-size-from-config", "Pick one")
    from odprep.checks.facts import load_facts

    resizer = load_facts(args["max_size_from_config"]).resizer
    if resizer is None:
        raise OdprepError(args["max_size_from_config"], "the config has no image_resizer (or input_size)",
                          "Pass --max-size PIXELS")
    return -(-max(resizer.first, resizer.second) * 5 // 4)


def _add_converters() -> None:
    """One command per registry entry."""
    from odprep.formats import FORMATS

    for fmt in FORMATS.values():
        callback = library_errors(functools.partial(_convert, fmt))
        main.add_command(ConverterCommand(
            fmt.command, callback=lambda _callback=callback, **args: _callback(args),
            params=[*fmt.params(), *_shared_params(fmt)], help=fmt.help(),
            short_help=fmt.summary, context_settings=CONTEXT))


@main.command("make-labelmap", context_settings=CONTEXT)
@click.argument("sources", nargs=-1, required=True, type=Location(exists=True))
@click.option("-o", "--output", required=True, type=Location("output-file", dir_okay=False),
              help="Where to write label_map.pbtxt.")
@click.option("--order", type=click.Choice(["sorted", "first-seen"]), default="sorted",
              show_default=True, help="Id order of the classes.")
@click.option("--merge", "merge_with", type=Location(exists=True, dir_okay=False),
              help="Keep the ids of this existing map; new classes follow its highest id.")
@click.option("--remap-ids", is_flag=True, help="COCO: renumber categories 1..N (in id order).")
@library_errors
def make_labelmap(sources, output, order, merge_with, remap_ids):
    """Build label_map.pbtxt from annotations (ids from 1; 0 is background).

    SOURCE is a VOC annotations folder, a CSV, a COCO instances JSON, or a text
    file of class names (one per line).

    \b
    Example:
      odprep make-labelmap data/Annotations -o label_map.pbtxt
      odprep make-labelmap classes.txt --merge old_label_map.pbtxt -o label_map.pbtxt
    """
    from odprep.labelmap import LabelMap
    from odprep.sources import class_names_from

    names: list[str] = []
    coco_items: dict[int, object] = {}
    for source in sources:
        found = class_names_from(source, remap_ids=remap_ids)
        if isinstance(found, LabelMap):
            coco_items.update({item.id: item for item in found.items})
        else:
            names += found
    if coco_items and not names and merge_with is None:
        built = LabelMap(coco_items[i] for i in sorted(coco_items))  # ids and keypoints as given
    else:
        names = [coco_items[i].name for i in sorted(coco_items)] + names
        if merge_with is not None:
            built = LabelMap.load(merge_with).merge(names, order=order)
        else:
            built = LabelMap.build(names, order=order)
    if not built.items:
        raise OdprepError(", ".join(map(str, sources)), "no class names found",
                          "Check that the annotations have objects")
    built.save(output)
    echo(f"label map written: {output} ({len(built)} classes, ids "
               f"{min(i.id for i in built.items)}..{built.max_id})")


def _utf8(ctx: click.Context, param: click.Parameter, value):
    """A path written into a config must be text a config can hold: UTF-8."""
    for item in value if isinstance(value, tuple) else (value,):
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise OdprepError(param.opts[-1], f"{printable(item)!r} is not valid UTF-8, which a config "
                                  "cannot hold", "Rename the file (or its folder) to a UTF-8 name") from None
    return value


def _config_options(command):
    options = [
        click.option("--train-input", "train_inputs", multiple=True, callback=_utf8,
                     help="TFRecord path or glob for train_input_reader (repeatable; replaces the list)."),
        click.option("--eval-input", "eval_inputs", multiple=True, callback=_utf8,
                     help="TFRecord path or glob for eval_input_reader (repeatable; replaces the list)."),
        click.option("--eval-index", type=click.IntRange(0), default=None,
                     help="Patch only this eval_input_reader (0-based); default: all of them."),
        click.option("--label-map", type=click.Path(dir_okay=False), callback=_utf8,
                     help="label_map_path for every input reader; also sets num_classes."),
        click.option("--num-classes", type=click.IntRange(1), default=None,
                     help="num_classes (default: from the label map)."),
        click.option("--masks/--no-masks", default=None,
                     help="load_instance_masks + mask_type PNG_MASKS (default: on if the train "
                          "records carry image/object/mask)."),
        click.option("--batch-size", type=click.IntRange(1), default=None, help="train_config.batch_size"),
        click.option("--num-steps", type=click.IntRange(1), default=None,
                     help="train_config.num_steps (Model Garden: trainer.train_steps); a cosine schedule's "
                          "total_steps follows, its warmup kept below, a manual schedule's steps scaled."),
        click.option("--checkpoint", default=None, callback=_utf8, help="train_config.fine_tune_checkpoint"),
        click.option("--checkpoint-type", default=None,
                     help="fine_tune_checkpoint_type (kept if present, else 'detection')."),
        click.option("--no-checkpoint", is_flag=True,
                     help="Remove fine_tune_checkpoint: train from scratch."),
        click.option("--eval-examples", type=click.IntRange(1), default=None,
                     help="eval_config.num_examples"),
        click.option("--max-objects", type=click.IntRange(1), default=None,
                     help="Every cap on objects per image: max_number_of_boxes (input readers and "
                          "train_config), detections kept, proposals; Model Garden: max_num_instances and "
                          "max_num_detections."),
        click.option("--scale-lr", is_flag=True,
                     help="Scale the zoo's learning rate (and warmup rate) to --batch-size: the linear "
                          "scaling rule."),
        click.option("--annotation-file", default=None, callback=_utf8,
                     help="Model Garden: task.annotation_file, the validation set's COCO JSON."),
        click.option("--fit-anchors", is_flag=True,
                     help="Fit the anchor generator's size and aspect ratios to the train records' boxes "
                          "(as the model sees them), keeping the anchors per location; prints the best "
                          "possible recall before and after."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _patch(text: str, source: str, fields: dict) -> str:
    """The config with the options of `patch-config` / `new-config` (``fields``) applied."""
    from odprep import experiment_config, prototext
    from odprep.consistency import records_have_masks, source_ids_are_numeric
    from odprep.labelmap import LabelMap
    from odprep.pipeline_config import ConfigPatch, mask_head, patch_config

    experiment = experiment_config.is_experiment(source, text)
    label_map, num_classes, masks = fields["label_map"], fields["num_classes"], fields["masks"]
    train_inputs, eval_inputs = fields["train_inputs"], fields["eval_inputs"]
    if label_map is not None and num_classes is None:
        loaded = LabelMap.load(label_map)
        gaps = loaded.id_gaps()
        highest = experiment_config.num_classes_for(loaded.max_id) if experiment else loaded.max_id
        if gaps:
            echo(f"warning: {label_map}: ids are not 1..N ({', '.join(map(str, gaps))} missing); "
                       f"num_classes is set to {highest} to cover the highest id, {loaded.max_id} "
                       "(the missing ids are never predicted)", err=True)
        num_classes = highest
    if masks is None and train_inputs and records_have_masks(train_inputs):
        if experiment:
            document = experiment_config.load(text, source)[0]
            can = experiment_config.family(document["task"]) == "maskrcnn"
        else:
            can = mask_head(prototext.parse(text, source)) is not None
        if can:
            masks = True
        else:
            echo(f"note: the train records carry instance masks, but {source} has no mask head; "
                       "masks stay off (start from a Mask R-CNN template to train them)", err=True)
    regenerate = None
    if experiment and eval_inputs and source_ids_are_numeric(eval_inputs) is False:
        regenerate = True
        echo("note: the eval records' image/source_id are not numbers (Model Garden's evaluator "
                   "needs numbers): regenerate_source_id is set", err=True)
    patch = ConfigPatch(
        train_inputs=tuple(train_inputs) or None, eval_inputs=tuple(eval_inputs) or None,
        eval_reader=fields["eval_index"], label_map_path=str(label_map) if label_map else None,
        num_classes=num_classes, masks=masks, batch_size=fields["batch_size"], num_steps=fields["num_steps"],
        checkpoint=fields["checkpoint"], checkpoint_type=fields["checkpoint_type"],
        no_checkpoint=fields["no_checkpoint"], eval_examples=fields["eval_examples"],
        annotation_file=fields["annotation_file"], regenerate_source_id=regenerate,
        max_objects=fields["max_objects"], scale_lr=fields["scale_lr"])
    if not experiment and fields["annotation_file"] is not None:
        raise OdprepError(source, "--annotation-file is for Model Garden experiment YAML",
                          "The OD API reads the ground truth from the eval records")
    patcher = experiment_config.patch_experiment if experiment else patch_config
    patched = patcher(text, patch, source)
    if fields["fit_anchors"]:
        from odprep.anchorfit import fit_config

        fitted, said = fit_config(patched, source)
        echo(said, err=True)
        if fitted.changes:
            patched = patcher(patched, ConfigPatch(anchors=fitted.changes), source)
    return patched


def _check_written(config: Path, fields: dict) -> None:
    """What `odprep check` would say about the written config and the records it was given,
    said at once (the config is written either way: this is advice, not a refusal)."""
    if not (fields.get("train_inputs") or fields.get("eval_inputs")):
        return
    if storage.is_url(storage.url_for(config)):
        return  # published only when the command ends; `odprep check URL` reads it then
    from odprep.consistency import check

    report = check(config, label_map_path=None, perceptual=False)  # advice: no decode pass
    found = [g for g in report.groups.values() if g.kind not in ("path-not-set",)]
    if found:
        echo(f"odprep check {config} would report:", err=True)
        for group in sorted(found, key=lambda g: g.severity != "error"):
            echo(f"  {group.severity.upper()} {group.kind} ({group.count}): {group.examples[0]}", err=True)


def _write_config(original: str, patched: str, output: Path | None, in_place: Path | None) -> None:
    import difflib

    from odprep.fileio import replace_in_place, write_text_atomic

    backup = ""
    if in_place is not None:
        backup = f" (backup: {replace_in_place(in_place, original, patched)})"
        output = in_place
    else:
        write_text_atomic(output, patched)
    diff = [line for line in difflib.unified_diff(original.splitlines(), patched.splitlines(), lineterm="", n=0)
            if line[:1] in "+-@" and not line.startswith(("+++", "---"))]
    changed = sum(1 for line in diff if line[:1] in "+-")
    echo(f"config written: {output}{backup}; {changed} line(s) changed")
    number = 0
    for line in diff:  # each change, as the new file has it
        if line.startswith("@@"):
            number = int(line.split("+", 1)[1].split(",")[0].split()[0]) - 1
        elif line.startswith("+"):
            number += 1
            echo(f"  line {number}: {line[1:].strip()[:120]}")
    _report_unset(patched, str(output))


def _report_unset(text: str, source: str) -> None:
    """Name every path still left as PATH_TO_BE_CONFIGURED (or empty), and how to set it."""
    from odprep import prototext
    from odprep.experiment_config import is_experiment
    from odprep.pipeline_config import unset_paths

    if is_experiment(source, text):
        unset = [(number, line.split(":", 1)[0].strip()) for number, line in
                 enumerate(text.splitlines(), start=1) if "PATH_TO_BE_CONFIGURED" in line]
    else:
        unset = unset_paths(prototext.parse(text, source), text)
    unset += [(line, f"{name} {value!r} (does not exist)") for line, name, value in missing_paths(text)]
    if unset:
        echo(f"still to set in {source} (training fails until they are):", err=True)
        for line, name in sorted(unset):
            key = name.split(" ", 1)[0].rsplit(".", 1)[-1]
            how = {"fine_tune_checkpoint": "--checkpoint PREFIX or --no-checkpoint",
                   "init_checkpoint": "--checkpoint PREFIX or --no-checkpoint",
                   "annotation_file": "--annotation-file, a COCO JSON that odprep tfr2coco writes, or null",
                   "label_map_path": "--label-map"}.get(key, "--train-input / --eval-input")
            echo(f"  line {line}: {name} ({how})", err=True)


_PATH_KEYS = ("input_path", "label_map_path", "fine_tune_checkpoint", "annotation_file", "init_checkpoint")


def _path_setting(line: str) -> tuple[str, str] | None:
    """(key, value) of a one-line path setting in either config syntax, split by hand (one
    scan of the line, whatever it holds)."""
    key, colon, rest = line.partition(":")
    key = key.strip()
    if not colon or key not in _PATH_KEYS:
        return None
    value = rest.strip()
    if value[:1] in ("'", '"'):
        end = value.find(value[0], 1)
        return (key, value[1:end]) if end > 0 else None
    return key, value.partition("#")[0].strip()


def missing_paths(text: str) -> list[tuple[int, str, str]]:
    """(line, key, value) of every local path a config names that does not exist (a
    template's '/path/to/...' left as it was); URLs are `check`'s to look up."""
    import glob as globbing

    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        setting = _path_setting(line)
        if setting is None:
            continue
        key, value = setting[0], setting[1].strip()
        if not value or "PATH_TO_BE_CONFIGURED" in value or "://" in value or value == "null":
            continue
        if key == "input_path":
            exists = any(globbing.glob(part.strip()) for part in value.split(",") if part.strip())
        elif key.endswith("checkpoint"):
            exists = os.path.exists(value + ".index") or os.path.isdir(value)
        else:
            exists = os.path.exists(value)
        if not exists:
            found.append((number, key, value))
    return found


@main.command("patch-config", context_settings=CONTEXT)
@click.argument("config", required=False, type=Location(exists=True, dir_okay=False))
@click.option("--template", default=None, help="Start from a bundled template instead of CONFIG.")
@_config_options
@click.option("-o", "--output", type=Location("output-file", dir_okay=False), help="Write here.")
@click.option("--in-place", is_flag=True, help="Overwrite CONFIG, keeping CONFIG.bak.")
@library_errors
def patch_config_cmd(config, template, output, in_place, **fields):
    """Patch input paths, label map, num_classes and masks into an OD API pipeline.config
    or a Model Garden experiment YAML, changing nothing else (comments, order, quoting and
    spacing stay). For Model Garden, num_classes is the highest id + 1.

    \b
    Example:
      odprep patch-config pipeline.config --train-input 'data/train.record-*' \\
          --eval-input data/val.record --label-map data/label_map.pbtxt -o pipeline.patched.config
    """
    from odprep.pipeline_config import template_text

    if (config is None) == (template is None):
        raise OdprepError("patch-config", "give either CONFIG or --template NAME", "See odprep templates")
    if output is None and not in_place:
        raise OdprepError(config or template, "no output chosen", "Pass -o OUT or --in-place")
    if in_place and (config is None or output is not None):
        raise OdprepError(config or template, "--in-place needs CONFIG and no -o", "Pick one")
    if in_place and storage.is_url(storage.url_for(config)):
        raise OdprepError(storage.url_for(config), "--in-place works on a local CONFIG",
                          "Write the patched config with -o URL (objects cannot be edited in place)")
    from odprep.fileio import read_text

    text = read_text(config, "config") if config else template_text(template)
    patched = _patch(text, str(config or template), fields)
    _write_config(text, patched, output, config if in_place else None)
    _check_written(output or config, fields)


@main.command("new-config", context_settings=CONTEXT)
@click.option("--template", required=True, help="Template name (see odprep templates).")
@_config_options
@click.option("-o", "--output", required=True, type=Location("output-file", dir_okay=False),
              help="Where to write the config: pipeline.config for an OD API template, a YAML file "
                   "for a Model Garden one.")
@library_errors
def new_config(template, output, **fields):
    """Write a training config from a bundled template, patched to your data: an OD API
    pipeline.config or a Model Garden experiment YAML (odprep templates lists both).

    \b
    Example:
      odprep new-config --template ssd_mobilenet_v2_fpnlite_320 --label-map data/label_map.pbtxt \\
          --train-input data/train.record --eval-input data/val.record -o pipeline.config
      odprep new-config --template retinanet_resnet18_fpn_256 --label-map data/label_map.pbtxt \\
          --train-input data/train.record --eval-input data/val.record -o experiment.yaml
    """
    from odprep.pipeline_config import template_text

    text = template_text(template)
    _write_config(text, _patch(text, template, fields), output, None)
    _check_written(output, fields)


@main.command("templates", context_settings=CONTEXT)
def templates():
    """List the bundled templates: OD API pipeline.config and Model Garden experiment YAML.

    \b
    Example:
      odprep templates
    """
    from odprep.pipeline_config import template_file, template_names, template_summary

    for name in template_names():
        trainer = "Model Garden" if template_file(name).endswith(".yaml") else "OD API"
        echo(f"{name:<34} {trainer:<13} {template_summary(name)}")


@main.command("check", context_settings=CONTEXT)
@click.argument("config", type=Location(dir_okay=False))
@click.option("--max-examples", default=5, show_default=True, type=click.IntRange(1),
              help="Occurrences shown per kind of finding.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--label-map", type=Location(dir_okay=False), default=None,
              help="Model Garden: the label map the records were made with (num_classes = its highest "
                   "id + 1).")
@click.option("--no-perceptual-hash", "fast", is_flag=True,
              help="Skip the near-duplicate leak check (it decodes every image at 1/8 scale: about 3 "
                   "minutes for COCO train2017 on 2 cores).")
@library_errors
def check_cmd(config, max_examples, as_json, label_map, fast):
    """Check that a pipeline.config (or Model Garden experiment YAML), its label map and its
    records agree.

    Exit 0 when consistent, 1 with findings, 2 when the config can't be read.

    \b
    Example:
      odprep check pipeline.config
    """
    from odprep.consistency import check

    report = check(config, max_examples=max_examples, label_map_path=label_map, perceptual=not fast)
    echo(report.to_json(config=str(config)) if as_json else report.render())
    sys.exit(report.exit_code())


@main.command("tfr2coco", context_settings=CONTEXT)
@click.argument("records", nargs=-1, required=True, type=Location())
@click.option("-o", "--output", required=True, type=Location("output-file", dir_okay=False),
              help="Where to write the COCO instances JSON.")
@click.option("--label-map", type=Location(exists=True, dir_okay=False),
              help="Categories from this map (default: the records' class/label and class/text).")
@click.option("--image-ids", type=click.Choice(["auto", "source", "regenerated", "sequential"]),
              default="auto", show_default=True,
              help="auto: the numeric image/source_id, or else the id Model Garden regenerates "
                   "(regenerate_source_id: true: a 22-bit hash of the image).")
@library_errors
def tfr2coco(records, output, label_map, image_ids):
    """Write a COCO instances JSON from TFRecords (odprep's or any OD API records): pixel
    boxes, categories, iscrowd, area, and masks as RLE. Model Garden's evaluator takes it
    as task.annotation_file.

    \b
    Example:
      odprep tfr2coco data/val.record -o data/val.json
      odprep patch-config exp.yaml --eval-input data/val.record --annotation-file data/val.json -o exp.yaml
    """
    from odprep.coco_export import write_coco
    from odprep.labelmap import LabelMap

    coco, mode = write_coco(records, output, LabelMap.load(label_map) if label_map else None, image_ids)
    echo(f"COCO JSON written: {output} ({len(coco['images'])} images, {len(coco['annotations'])} "
               f"annotations, {len(coco['categories'])} categories; image ids: {mode})")


@main.command("tfr2voc", context_settings=CONTEXT)
@click.argument("records", nargs=-1, required=True, type=Location())
@click.option("-o", "--output", required=True, type=Location("output-folder", file_okay=False),
              help="Folder for JPEGImages/ and Annotations/.")
@library_errors
def tfr2voc(records, output):
    """Write the images and Pascal VOC XML back from TFRecords (odprep's or any OD API records).

    \b
    Example:
      odprep tfr2voc data/train.record -o voc/
    """
    from odprep.voc_export import write_voc

    count = write_voc(records, output)
    echo(f"VOC written: {output / 'JPEGImages'} and {output / 'Annotations'} ({count} images)")


@main.command("validate", context_settings=CONTEXT)
@click.argument("records", nargs=-1, required=True, type=Location())
@click.option("--label-map", type=Location(exists=True, dir_okay=False),
              help="Also check every label and text against this map.")
@click.option("--strict", is_flag=True, help="Warnings fail too.")
@click.option("--decode", is_flag=True, help="Fully decode every image and check its sha256.")
@click.option("--max-examples", default=5, show_default=True, type=click.IntRange(1),
              help="Occurrences shown per kind of finding.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--max-pixels", type=click.IntRange(1), default=None,
              help="Images over this many pixels are findings (default: 178956970).")
@library_errors
def validate_cmd(records, label_map, strict, decode, max_examples, as_json, max_pixels):
    """Find what would break training in TFRecord files: framing and CRCs, keys,
    types, list lengths, boxes, labels, images and masks. No TensorFlow needed.

    Exit 0 when clean, 1 on errors (or warnings with --strict), 2 if a file can't be opened.

    \b
    Example:
      odprep validate data/train.record-* --label-map data/label_map.pbtxt
    """
    from odprep.labelmap import LabelMap
    from odprep.validation import validate

    loaded = LabelMap.load(label_map) if label_map else None
    from odprep.images import DEFAULT_MAX_PIXELS

    report = validate(records, label_map=loaded, decode=decode, max_examples=max_examples,
                      max_pixels=max_pixels or DEFAULT_MAX_PIXELS)
    echo(report.to_json(files=[str(r) for r in records]) if as_json else report.render())
    sys.exit(report.exit_code(strict))


@main.command("inspect", context_settings=CONTEXT)
@click.argument("records", nargs=-1, required=True)
@click.option("--label-map", type=Location(exists=True, dir_okay=False),
              help="Names for records that carry only class/label.")
@click.option("--report", type=Location("output-folder", file_okay=False),
              help="Write a page here: index.html (plots, findings, previews) and stats.json.")
@click.option("--config", type=Location(exists=True, dir_okay=False),
              help="With --report: box sizes in the model's input pixels (its image_resizer), and the "
                   "config's limits among the findings.")
@click.option("--preview", type=Location("output-folder", file_okay=False),
              help="Draw images with boxes/masks here, with an index.html contact sheet.")
@click.option("--num", default=16, show_default=True, type=click.IntRange(1),
              help="Images to draw (--report: those behind findings first, then a seeded sample).")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the --report sample.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--max-pixels", type=click.IntRange(1), default=None,
              help="Refuse to draw images over this many pixels (default: 178956970).")
@library_errors
def inspect_cmd(records, label_map, report, config, preview, num, seed, as_json, max_pixels):
    """Show what is in TFRecord files: classes, imbalance, boxes, sizes, duplicates. Each
    RECORDS argument (a file or a glob, or NAME=GLOB) is a split, shown side by side. A
    label map given as RECORDS is shown as the map.

    \b
    Example:
      odprep inspect data/train.record-* --preview preview/ --num 24
      odprep inspect train=data/train.record-* val=data/val.record --report report/ --config pipeline.config
    """
    from odprep.images import DEFAULT_MAX_PIXELS
    from odprep.inspection import inspect_records, label_map_text, named_inputs, render, to_json
    from odprep.labelmap import LabelMap

    splits = named_inputs(records)
    maps = label_map_text(splits)
    if maps is not None:
        echo(maps)
        return
    loaded = LabelMap.load(label_map) if label_map else None
    limit = max_pixels or DEFAULT_MAX_PIXELS
    if report is not None:
        from odprep.checks.facts import ConfigFacts, load_facts
        from odprep.datasummary import summarize
        from odprep.reportpage import write_report
        from odprep.reportstats import compute
        from odprep.writer import tqdm_progress

        facts = load_facts(config) if config is not None else ConfigFacts("records", "none", None)
        factory = tqdm_progress(as_json)
        bar = factory(None) if factory is not None else None
        try:
            summary = summarize(splits, loaded, hashes=True, progress=bar.update if bar is not None else None)
        finally:
            if bar is not None:
                bar.close()
        data = compute(summary, facts, num, seed)
        index = write_report(summary, data, report, limit)
        echo(to_json(data.stats) if as_json else render_splits(summary))
        echo(f"report: {index} ({len(data.previews)} preview(s)) and {index.parent / 'stats.json'}", err=as_json)
        return
    outputs = {name: inspect_records(paths, loaded) for name, paths in splits.items()}
    if len(outputs) == 1:
        stats = next(iter(outputs.values()))
        echo(to_json(stats) if as_json else render(stats))
    else:
        echo(to_json(outputs) if as_json else "\n\n".join(f"== {name} ==\n{render(stats)}"
                                                           for name, stats in outputs.items()))
    if preview is not None:
        from odprep.preview import write_preview

        stats = next(iter(outputs.values())) if len(outputs) == 1 else inspect_records(
            [p for paths in splits.values() for p in paths], loaded)
        pictures = write_preview(stats, preview, num, limit)
        echo(f"preview: {len(pictures)} image(s) and {preview / 'index.html'}", err=as_json)


def render_splits(summary) -> str:
    from odprep.inspection import render, stats_of

    return "\n\n".join(f"== {name} ==\n{render(stats_of(split, summary.classes))}"
                        for name, split in summary.splits.items())


def _storage_option_everywhere() -> None:
    """--storage-option after the command name too: eager, so it is set before any URL
    parameter of the command is staged."""
    for command in main.commands.values():
        command.params.insert(0, click.Option(
            ["--storage-option", "storage_options"], multiple=True, metavar="KEY=VALUE", is_eager=True,
            expose_value=False, callback=lambda _ctx, _param, pairs: storage.set_options(pairs),
            help="A setting for the storage of URL paths (fsspec), e.g. endpoint_url=http://host:9000."))


_add_converters()
_storage_option_everywhere()
