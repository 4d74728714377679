"""The odprep command line: parse options, call the library, print a summary."""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import click

from odprep.errors import OdprepError

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class BadInput(click.ClickException):
    """Bad input: one line, no traceback, exit 2."""

    exit_code = 2


def library_errors(command):
    """Turn library errors into clean CLI errors at the boundary."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except OdprepError as error:
            raise BadInput(error.message) from None
        except KeyboardInterrupt:
            click.echo("interrupted: no output was written", err=True)
            sys.exit(130)

    return wrapper


@click.group(context_settings=CONTEXT)
@click.version_option(package_name="odprep")
def main() -> None:
    """Make TFRecords, label_map.pbtxt and pipeline.config agree, for the TensorFlow
    Object Detection API and Model Garden.

    \b
    Example:
      odprep voc2tfr sample_data/voc/Annotations --images-dir sample_data/voc/JPEGImages -o out/train.record
    """


def conversion_options(command):
    """Options every converter shares."""
    options = [
        click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
                     help="Output TFRecord path (shards: OUTPUT-00000-of-0000N)."),
        click.option("--label-map", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                     help="Use this label map; every class must be in it. Without it, "
                          "label_map.pbtxt is written beside OUTPUT."),
        click.option("--num-shards", default=1, show_default=True, type=click.IntRange(1),
                     help="Number of output shards."),
        click.option("--workers", type=click.IntRange(1), default=None,
                     help="Parallel worker processes (default: CPU count)."),
        click.option("--skip-invalid", is_flag=True,
                     help="Skip bad images/objects with one warning each, instead of stopping."),
        click.option("--clip-boxes", is_flag=True, help="Clip boxes that run outside the image."),
        click.option("--skip-empty", is_flag=True, help="Drop images without objects."),
        click.option("--reencode", is_flag=True,
                     help="Re-encode BMP/GIF/WebP/TIFF images to PNG instead of rejecting them."),
        click.option("-q", "--quiet", is_flag=True, help="No progress bar."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _run_conversion(records, output, label_map_path, num_shards, workers, options, quiet,
                    summary, built_map=None):
    from odprep.convert import convert
    from odprep.labelmap import LabelMap
    from odprep.report import format_summary
    from odprep.writer import tqdm_progress

    label_map = LabelMap.load(label_map_path) if label_map_path else None
    conversion = convert(records, output, label_map=label_map, built_map=built_map,
                         num_shards=num_shards, workers=workers, options=options,
                         progress=tqdm_progress(quiet), summary=summary)
    click.echo(format_summary(conversion))
    return conversion


def _encode_options(skip_invalid, clip_boxes, skip_empty, reencode, include_masks=False,
                    rounding_px=0.0):
    from odprep.example import EncodeOptions

    return EncodeOptions(clip_boxes=clip_boxes, skip_invalid=skip_invalid, skip_empty=skip_empty,
                         reencode=reencode, include_masks=include_masks, rounding_px=rounding_px)


@main.command("voc2tfr", context_settings=CONTEXT)
@click.argument("annotations", type=click.Path(exists=True, path_type=Path))
@click.option("--images-dir", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Folder holding the images named by <filename>.")
@conversion_options
@library_errors
def voc2tfr(annotations, images_dir, output, label_map, num_shards, workers, skip_invalid, clip_boxes,
            skip_empty, reencode, quiet):
    """Convert Pascal VOC XML annotations to OD API TFRecords.

    \b
    Example:
      odprep voc2tfr data/Annotations --images-dir data/JPEGImages -o out/train.record --num-shards 4
    """
    from odprep.readers.voc import read_voc
    from odprep.writer import Summary

    summary = Summary()
    records = read_voc(annotations, images_dir, on_invalid=summary.on_invalid if skip_invalid else None)
    options = _encode_options(skip_invalid, clip_boxes, skip_empty, reencode)
    _run_conversion(records, output, label_map, num_shards, workers, options, quiet, summary)


@main.command("make-labelmap", context_settings=CONTEXT)
@click.argument("sources", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write label_map.pbtxt.")
@click.option("--order", type=click.Choice(["sorted", "first-seen"]), default="sorted",
              show_default=True, help="Id order of the classes.")
@click.option("--merge", "merge_with", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Keep the ids of this existing map; new classes follow its highest id.")
@library_errors
def make_labelmap(sources, output, order, merge_with):
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
    coco_pairs: list[tuple[int, str]] = []
    for source in sources:
        found = class_names_from(source)
        if isinstance(found, LabelMap):
            coco_pairs += [(item.id, item.name) for item in found.items]
        else:
            names += found
    if coco_pairs and not names and merge_with is None:
        built = LabelMap.from_pairs(dict(coco_pairs).items())
    else:
        names = [name for _, name in sorted(coco_pairs)] + names
        if merge_with is not None:
            built = LabelMap.load(merge_with).merge(names, order=order)
        else:
            built = LabelMap.build(names, order=order)
    if not built.items:
        raise OdprepError(", ".join(map(str, sources)), "no class names found",
                          "Check that the annotations have objects")
    built.save(output)
    click.echo(f"label map written: {output} ({len(built)} classes, ids "
               f"{min(i.id for i in built.items)}..{built.max_id})")
