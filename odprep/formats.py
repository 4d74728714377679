"""The converters' registry: one entry per annotation format, and the options they share.

An entry says what its command is called, its own arguments, and how to open its records;
everything else (output, label map, shards, workers, the bad-input policy, limits, splits)
is shared, declared once in the CLI and carried by one ``ConvertOptions``. Adding a format
is one reader module and one entry here.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import click

from odprep.locations import Location

if TYPE_CHECKING:  # the registry is read at CLI start-up: readers load only when a command runs
    from odprep.example import EncodeOptions
    from odprep.labelmap import LabelMap
    from odprep.readers.common import OnInvalid


@dataclass(frozen=True)
class SplitOptions:
    """--split / --split-from-lists, and repeat-factor oversampling of the train split."""

    spec: str | None = None
    lists: Path | None = None
    seed: int = 0
    oversample: bool = False
    threshold: float = 0.001
    rounding: str = "stochastic"
    group_by: str | None = None  # a regular expression over file names: one group, one split
    near_duplicates: bool = False  # also keep pictures that look alike (perceptual hash) on one side


@dataclass(frozen=True)
class ConvertOptions:
    """Everything a conversion needs besides its records, as one object."""

    output: Path
    label_map: Path | None = None
    num_shards: int = 1
    workers: int | None = None
    encode: EncodeOptions | None = None  # None: the defaults
    split: SplitOptions | None = None
    quiet: bool = False
    numeric_source_ids: bool = False  # image/source_id 1..N: what COCO evaluators want, exact in float32


@dataclass(frozen=True)
class ReadContext:
    """What a reader is told: how many workers, and where skips go (None: raise)."""

    workers: int
    on_invalid: OnInvalid | None
    allow_outside: bool = False


@dataclass
class Opened:
    """A format's records, ready for the writer."""

    records: Sequence | object
    label_map: LabelMap | None = None  # the format's own ids (COCO); None: built from the classes
    origin: str = "ids from 1, sorted by name"
    total: int | None = None
    notes: list[str] = field(default_factory=list)  # warnings for the summary
    write_label_map: bool = True
    splits: dict[str, Sequence] | None = None  # splits the format itself defines (a YOLO data.yaml)


@dataclass(frozen=True)
class Format:
    command: str
    summary: str
    details: str
    examples: tuple[str, ...]
    params: Callable[[], list[click.Parameter]]  # the format's own arguments and options
    open: Callable[[dict, ReadContext], Opened]
    encode: Callable[[dict], dict] = lambda args: {}  # EncodeOptions fields the format's own args set
    box_options: bool = True  # --label-map, --clip-boxes, --skip-empty, --allow-outside-images-dir apply
    listed_by: str = "its image's file name without the extension"  # how --split-from-lists names a record

    def help(self) -> str:
        example = "\n".join(f"  {line}" for line in self.examples)
        return f"{self.summary}\n\n{self.details}\n\n\b\nExample:\n{example}"


def _existing(file_okay: bool = True, dir_okay: bool = True, role: str = "input") -> click.Path:
    return Location(role, exists=True, file_okay=file_okay, dir_okay=dir_okay)


def _images_dir(help_text: str) -> click.Option:
    return click.Option(["--images-dir"], required=True, type=_existing(file_okay=False, role="images"),
                        help=help_text)


# --- Pascal VOC --------------------------------------------------------------------------------

def _open_voc(args: dict, context: ReadContext) -> Opened:
    from odprep.labelmap import LabelMap
    from odprep.readers.voc import VocDataset

    dataset = VocDataset(args["annotations"], args["images_dir"], on_invalid=context.on_invalid,
                         allow_outside=context.allow_outside)
    if context.on_invalid is None:  # records stay lazy; the classes are read only if the label map is built
        records = dataset.as_sequence(context.workers)
        records.class_names = functools.partial(dataset.class_names, context.workers)
        return Opened(records, total=len(records))
    # one checking pass reports the skips and lists the classes kept; records stay lazy
    records, names = dataset.checked(context.workers)
    return Opened(records, LabelMap.build(names), total=len(records))


VOC = Format(
    command="voc2tfr", summary="Convert Pascal VOC XML annotations to OD API TFRecords.",
    details="ANNOTATIONS is a folder of XML files (often Annotations/) or one XML file.",
    examples=("odprep voc2tfr data/Annotations --images-dir data/JPEGImages -o out/train.record "
              "--num-shards 4",),
    params=lambda: [click.Argument(["annotations"], type=_existing()),
                    _images_dir("Folder holding the images named by <filename>.")],
    open=_open_voc,
    listed_by="its annotation's file name without .xml (VOC's ImageSets/Main lists)",
)


# --- CSV -------------------------------------------------------------------------------------

def _open_csv(args: dict, context: ReadContext) -> Opened:
    from odprep.readers.csv import parse_column_mapping, read_csv

    dataset = read_csv(args["csv_path"], args["images_dir"], columns=parse_column_mapping(args["columns"]),
                       normalized=args["normalized"], on_invalid=context.on_invalid,
                       allow_outside=context.allow_outside)
    return Opened(dataset, total=len(dataset))


CSV = Format(
    command="csv2tfr",
    summary="Convert a CSV of boxes to TFRecords (default columns: "
            "filename,width,height,class,xmin,ymin,xmax,ymax).",
    details="Columns are found by header name in any order; --columns maps other names.",
    examples=("odprep csv2tfr train_labels.csv --images-dir images -o out/train.record",
              "odprep csv2tfr test.csv --images-dir JPEGImages --columns class=cell_type -o out/test.record"),
    params=lambda: [
        click.Argument(["csv_path"], metavar="CSV", type=_existing(dir_okay=False)),
        _images_dir("Folder holding the images named in the filename column."),
        click.Option(["--columns"], default=None,
                     help="Map column names, e.g. class=cell_type,xmin=x1 (header names, any order)."),
        click.Option(["--normalized"], is_flag=True, help="Coordinates are already in [0, 1]."),
    ],
    open=_open_csv,
)


# --- COCO ------------------------------------------------------------------------------------

def _open_coco(args: dict, context: ReadContext) -> Opened:
    from odprep.readers.coco import read_coco

    dataset = read_coco(args["instances"], args["images_dir"], remap_ids=args["remap_ids"],
                        on_invalid=context.on_invalid, allow_outside=context.allow_outside,
                        include_keypoints=args["include_keypoints"])
    notes = list(dataset.notes)
    orphans = dataset.orphan_annotations()
    if orphans:
        notes.append(f"{args['instances']}: {len(orphans)} annotation(s) reference image ids that are not "
                     f"in images and are left out (annotation ids {orphans[:5]})")
    return Opened(dataset.as_sequence(), dataset.label_map,
                  "categories renumbered 1..N" if args["remap_ids"] else "COCO category ids",
                  total=len(dataset), notes=notes)


COCO = Format(
    command="coco2tfr",
    summary="Convert COCO instances JSON (boxes, and masks with --include-masks) to TFRecords.",
    details="class/label is the COCO category id, as the OD API and Model Garden converters write "
            "it, unless --remap-ids. Without --label-map, label_map.pbtxt with the same ids is written "
            "beside OUTPUT.",
    examples=("odprep coco2tfr annotations/instances_train2017.json --images-dir train2017 \\",
              "    -o out/train.record --num-shards 32 --include-masks"),
    params=lambda: [
        click.Argument(["instances"], type=_existing(dir_okay=False)),
        _images_dir("Folder the images' file_name is relative to."),
        click.Option(["--include-masks"], is_flag=True,
                     help="Write image/object/mask PNGs (0/1, image size)."),
        click.Option(["--remap-ids"], is_flag=True, help="Renumber categories 1..N (records and label map)."),
        click.Option(["--include-keypoints"], is_flag=True,
                     help="Write image/object/keypoint/{x,y,visibility,text,num} (COCO person_keypoints)."),
    ],
    open=_open_coco,
    encode=lambda args: {"rounding_px": 1.0, "include_masks": args["include_masks"]},
)


# --- semantic segmentation -------------------------------------------------------------------

def _open_segmentation(args: dict, context: ReadContext) -> Opened:
    from odprep.labelmap import LabelMap
    from odprep.readers.segmentation import read_segmentation

    records = list(read_segmentation(args["images_dir"], args["masks_dir"], args["list_file"],
                                     on_invalid=context.on_invalid))
    return Opened(records, LabelMap([]), write_label_map=False, total=len(records))


SEGMENTATION = Format(
    command="seg2tfr",
    summary="Convert images + class-index masks to DeepLab-style segmentation TFRecords.",
    details="Each image is paired with the mask of the same stem. Palette masks keep their indices "
            "(255 = void is kept); RGB masks need --colormap. --skip-invalid skips (and reports) "
            "images without masks and masks without images.",
    examples=("odprep seg2tfr VOC2012/JPEGImages VOC2012/SegmentationClass -o seg/train.record \\",
              "    --list VOC2012/ImageSets/Segmentation/train.txt --num-shards 4"),
    params=lambda: [
        click.Argument(["images_dir"], type=_existing(file_okay=False, role="images")),
        click.Argument(["masks_dir"], type=_existing(file_okay=False)),
        click.Option(["--list", "list_file"], type=_existing(dir_okay=False),
                     help="Only these stems, e.g. VOC ImageSets/Segmentation/train.txt."),
        click.Option(["--colormap"], default=None,
                     help="For RGB colour masks: 'voc' (Pascal VOC palette) or a JSON of colour -> index."),
        click.Option(["--skip-unpaired"], is_flag=True, help="The same as --skip-invalid."),
    ],
    open=_open_segmentation,
    encode=lambda args: {"colormap": _colormap(args["colormap"])},
    box_options=False,
)


# --- YOLO ------------------------------------------------------------------------------------

def _open_yolo(args: dict, context: ReadContext) -> Opened:
    from odprep.errors import OdprepError
    from odprep.fileio import is_regular_file
    from odprep.labelmap import LabelMap
    from odprep.readers.yolo import read_names, read_yolo, read_yolo_yaml

    source = Path(args["source"])
    if source.suffix.lower() in (".yaml", ".yml"):
        splits, names = read_yolo_yaml(source, context.on_invalid)
        records = {name: dataset.as_sequence() for name, dataset in splits.items()}
        return Opened([], LabelMap.build(names, order="first-seen"), "YOLO class ids + 1, in names order",
                      splits={name: list(r) for name, r in records.items()})
    if args["images_dir"] is None:
        raise OdprepError(source, "--images-dir is needed with a labels folder", "Pass --images-dir DIR")
    beside = [folder / name for folder in (source, source.parent) for name in ("classes.txt", "obj.names", "_darknet.labels")]
    names_file = args["names"] or next((path for path in beside if is_regular_file(path)), None)
    if names_file is None:
        raise OdprepError(source, "no class names: no classes.txt, obj.names or _darknet.labels beside "
                          "the labels",
                          "Pass --names data.yaml (or a text file with one name per line)")
    names = read_names(names_file)
    dataset = read_yolo(source, args["images_dir"], names, context.on_invalid, context.allow_outside)
    return Opened(dataset.as_sequence(), LabelMap.build(names, order="first-seen"),
                  "YOLO class ids + 1, in names order", total=len(dataset))


YOLO = Format(
    command="yolo2tfr",
    summary="Convert YOLO labels (Ultralytics, Roboflow, Darknet) to TFRecords.",
    details="SOURCE is a folder of label .txt files (with --images-dir and --names), or an Ultralytics "
            "data.yaml whose train/val/test entries become the splits (-o with {split}). Label ids are "
            "the YOLO class ids + 1, in the order of the names. Segment lines give the polygon's extent, "
            "and its mask with --include-masks.",
    examples=("odprep yolo2tfr labels/train --images-dir images/train --names data.yaml -o out/train.record",
              "odprep yolo2tfr data.yaml -o 'out/{split}.record'"),
    params=lambda: [
        click.Argument(["source"], type=_existing()),
        click.Option(["--images-dir"], type=_existing(file_okay=False), default=None,
                     help="Folder of the images (with a labels folder as SOURCE)."),
        click.Option(["--names"], type=_existing(dir_okay=False), default=None,
                     help="data.yaml, or a text file with one class name per line (classes.txt, obj.names)."),
        click.Option(["--include-masks"], is_flag=True, help="Write the masks of segment lines."),
    ],
    open=_open_yolo,
    encode=lambda args: {"rounding_px": 1.0, "include_masks": args["include_masks"]},
)


# --- KITTI -----------------------------------------------------------------------------------

def _open_kitti(args: dict, context: ReadContext) -> Opened:
    from odprep.readers.kitti import KittiDataset

    dataset = KittiDataset(args["label_dir"], args["images_dir"], context.on_invalid, context.allow_outside)
    records = dataset.records()  # small text files: read here, so DontCare regions are counted
    notes = [f"{args['label_dir']}: {dataset.dont_care} DontCare region(s) left out (they are not objects)"] \
        if dataset.dont_care else []
    return Opened(records, total=len(records), notes=notes)


KITTI = Format(
    command="kitti2tfr",
    summary="Convert KITTI object labels (label_2) to TFRecords.",
    details="Pixel boxes; truncated (a float) is written as 1 when above 0; occluded (0-3) goes to "
            "image/object/occluded. DontCare regions are left out and counted in the summary.",
    examples=("odprep kitti2tfr training/label_2 --images-dir training/image_2 -o out/train.record",),
    params=lambda: [click.Argument(["label_dir"], type=_existing(file_okay=False)),
                    _images_dir("Folder holding the images (image_2), named by the labels' stems.")],
    open=_open_kitti,
)


# --- LabelMe ---------------------------------------------------------------------------------

def _open_labelme(args: dict, context: ReadContext) -> Opened:
    from odprep.readers.labelme import LabelMeDataset

    dataset = LabelMeDataset(args["json_dir"], args["images_dir"], context.on_invalid)
    if context.on_invalid is not None:
        records = dataset.records()
        return Opened(records, total=len(records))
    return Opened(dataset.lazy(), total=len(dataset))


LABELME = Format(
    command="labelme2tfr",
    summary="Convert LabelMe JSON files to TFRecords.",
    details="As labelme reads them: embedded imageData wins; else imagePath, relative to each JSON (or "
            "found by name in --images-dir). Rectangles give boxes; polygons and circles their extent (and "
            "masks with --include-masks); shapes with one label and group_id form one object; __ignore__ "
            "regions become no object (counted); lines and points are reported as skipped. An overshoot "
            "of at most 1 px past the image is rounding: clamped and counted.",
    examples=("odprep labelme2tfr annotations/ -o out/train.record --include-masks",),
    params=lambda: [
        click.Argument(["json_dir"], type=_existing()),
        click.Option(["--images-dir"], type=_existing(file_okay=False), default=None,
                     help="Look the images up here by name (default: imagePath, relative to the JSON)."),
        click.Option(["--include-masks"], is_flag=True, help="Write polygon (and rectangle) masks."),
    ],
    open=_open_labelme,
    encode=lambda args: {"rounding_px": 1.0, "include_masks": args["include_masks"]},
)


# --- CVAT ------------------------------------------------------------------------------------

def _open_cvat(args: dict, context: ReadContext) -> Opened:
    from odprep.labelmap import LabelMap
    from odprep.readers.cvat import CvatDataset

    dataset = CvatDataset(args["annotations"], args["images_dir"], context.on_invalid, args["rotated_as_extent"],
                          context.allow_outside)
    return Opened(dataset, LabelMap.build(dataset.class_names()), total=len(dataset))


CVAT = Format(
    command="cvat2tfr",
    summary="Convert CVAT for images 1.1 XML to TFRecords.",
    details="<box> gives a box (occluded goes to image/object/occluded), <polygon> its extent (and "
            "mask with --include-masks), <ellipse> centre +/- radii. A rotated shape is bad input unless "
            "--rotated-as-extent. Polylines, points and tags are reported as skipped.",
    examples=("odprep cvat2tfr annotations.xml --images-dir images -o out/train.record",),
    params=lambda: [
        click.Argument(["annotations"], type=_existing(dir_okay=False)),
        _images_dir("Folder holding the images named by <image name>."),
        click.Option(["--include-masks"], is_flag=True, help="Write polygon masks."),
        click.Option(["--rotated-as-extent"], is_flag=True,
                     help="Write a rotated box or ellipse as its axis-aligned extent (counted)."),
    ],
    open=_open_cvat,
    encode=lambda args: {"include_masks": args["include_masks"]},
)


# --- Open Images -------------------------------------------------------------------------------

def _open_oid(args: dict, context: ReadContext) -> Opened:
    from odprep.extras import require

    require("pandas", "oid", "oid2tfr")  # pandas (and pyarrow's fast parser) come with the oid extra
    from odprep.readers.oid import OpenImagesDataset, read_class_descriptions

    dataset = OpenImagesDataset(args["boxes_csv"], args["images_dir"],
                                read_class_descriptions(args["class_descriptions"]), args["image_labels"],
                                context.allow_outside)
    return Opened(dataset, total=len(dataset))


OPEN_IMAGES = Format(
    command="oid2tfr",
    summary="Convert Open Images (V6/V7) box CSVs to TFRecords.",
    details="Boxes are normalised; IsGroupOf, IsOccluded, IsTruncated and IsDepiction go to "
            "image/object/{group_of,occluded,truncated,depiction}. class/text and the label map's names are "
            "the display names from --class-descriptions. Only images with rows are written. With "
            "--image-labels, the positive verified labels go to image/class/{label,text}.",
    examples=("odprep oid2tfr oidv7-train-annotations-bbox.csv --images-dir train \\",
              "    --class-descriptions oidv7-class-descriptions-boxable.csv -o out/train.record --num-shards 64"),
    params=lambda: [
        click.Argument(["boxes_csv"], type=_existing(dir_okay=False)),
        _images_dir("Folder holding IMAGEID.jpg files."),
        click.Option(["--class-descriptions"], required=True, type=_existing(dir_okay=False),
                     help="The LabelName (MID) -> DisplayName CSV, with or without its header."),
        click.Option(["--image-labels"], type=_existing(dir_okay=False), default=None,
                     help="Human-verified image-level labels CSV (ImageID,Source,LabelName,Confidence)."),
    ],
    open=_open_oid,
)


def _colormap(spec: str | None):
    from odprep.segmask import load_colormap

    return load_colormap(spec) if spec else None


FORMATS: dict[str, Format] = {entry.command: entry for entry in (VOC, CSV, COCO, SEGMENTATION, YOLO, KITTI,
                                                                  LABELME, CVAT, OPEN_IMAGES)}
