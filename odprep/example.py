"""Where a record becomes a serialized tf.train.Example, ready for a TFRecord file.

This is the only place boxes are normalised: pixel / real image size, with no
1-pixel shift (the OD API convention). Bad boxes and images follow one policy:
raise OdprepError, or, when the options allow it, clip or skip and say so in an
Event that ends up in the summary.
"""

from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass, field

from odprep import images, keys, proto
from odprep.errors import MissingImage, OdprepError, UnknownClass, object_where
from odprep.fileio import inside, read_bytes
from odprep.labelmap import LabelMap
from odprep.model import ImageRecord, ObjectAnnotation
from odprep.tfrecord import frame_parts


@dataclass(frozen=True, slots=True)
class EncodeOptions:
    """How bad input is treated, and what optional content is written."""

    clip_boxes: bool = False
    skip_invalid: bool = False
    skip_empty: bool = False
    reencode: bool = False
    include_masks: bool = False
    rounding_px: float = 0.0  # overshoot past the image treated as rounding: clamped and counted
    colormap: tuple | None = None  # RGB colour -> class index, for segmentation masks
    max_pixels: int = images.DEFAULT_MAX_PIXELS  # larger images are refused (decompression bombs)
    allow_empty: bool = False  # a run that writes no image is an error unless this is set
    auto_orient: bool | None = None  # EXIF orientation: None decides by the declared size, True bakes it
    max_size: int | None = None  # longest side: larger images are downscaled and re-encoded
    jpeg_quality: int | None = None  # for re-encoded JPEGs; None: about the source's own


@dataclass(frozen=True, slots=True)
class Event:
    """Something the summary must report: kind is warning, clipped, rounded,
    skipped_object or skipped_image."""

    kind: str
    message: str


@dataclass(slots=True)
class EncodedImage:
    parts: list | None  # the TFRecord as buffers for os.writev; None when skipped or written
    source: str
    image: str = ""  # the image file read (absolute), "" for embedded image data
    skipped: bool = False
    record_size: int = 0  # bytes of the TFRecord (framing included)
    sha256: str = ""
    labels: tuple[str, ...] = ()
    image_bytes: int = 0
    resized_from: int = 0  # the image's bytes before --max-size shrank it (0: not resized)
    has_masks: bool = False
    segmentation: bool = False
    events: list[Event] = field(default_factory=list)


class _Skip(Exception):
    """Internal: the image is skipped (already recorded as an event)."""


def encode_record(record: ImageRecord, label_map: LabelMap, options: EncodeOptions) -> EncodedImage:
    """Read the image, check everything against it, and build the framed Example."""
    result = EncodedImage(None, record.annotation_path, image_identity(record),
                          events=[Event("warning", note) for note in record.notes])
    try:
        return _encode(record, label_map, options, result)
    except _Skip:
        result.parts = None
        result.skipped = True
        return result


def image_identity(record: ImageRecord) -> str:
    """The image file a record reads, as one absolute path ("" when the data is embedded)."""
    return "" if record.image_data is not None else os.path.abspath(record.image_path)


def claim_image(seen: dict[str, str], image: str, source: str) -> None:
    """Two annotation files that name one image would become two examples of one picture,
    each missing the other's objects: refused, naming both. ``seen`` maps each image read so
    far to its annotation file (a record repeated by oversampling is the same file)."""
    if not image:
        return
    first = seen.setdefault(image, source)
    if first != source:
        raise OdprepError(source, f"annotates the same image as {first} ({image}): they would become two "
                          "examples of one picture, each missing the other's objects",
                          "Merge the two annotation files into one, or remove one of them")


def _invalid(result: EncodedImage, options: EncodeOptions, error: OdprepError, kind: str) -> None:
    """Raise the error, or record it as a skip when --skip-invalid is on."""
    if not options.skip_invalid:
        raise error
    result.events.append(Event(kind, error.message))
    if kind == "skipped_image":
        raise _Skip


def _read_image(record: ImageRecord, options: EncodeOptions, result: EncodedImage):
    source = record.annotation_path
    if record.ref:
        source = f"{source}: {record.ref}"
    if record.image_data is None and record.image_root is not None and \
            not inside(record.image_path, record.image_root):
        _invalid(result, options, OdprepError(
            source, f"image {record.image_path} lies outside the images folder {record.image_root} "
            "(a '..' or absolute file name)", "Fix the file name, or pass --allow-outside-images-dir"),
            "skipped_image")
    try:
        data = record.image_data if record.image_data is not None else read_bytes(record.image_path, "image")
    except OdprepError as error:
        missing = not os.path.lexists(record.image_path) if "\0" not in str(record.image_path) else True
        kind = MissingImage if missing else OdprepError
        problem = f"image {record.image_path} not found" if missing else \
            f"image {record.image_path}: {error.problem}"
        _invalid(result, options, kind(source, problem,
                                       "Check --images-dir and the file name" if missing else error.fix),
                 "skipped_image")
    fmt = images.sniff_format(data)
    if fmt is not None and images.looks_truncated(data, fmt):
        _invalid(result, options, OdprepError(
            source, f"{record.image_path} is truncated (the {fmt.upper()} has no end marker); the "
            "decoder fails on it mid-training", "Replace the image (or pass --skip-invalid)"),
            "skipped_image")
    if fmt is None:
        _invalid(result, options, OdprepError(source, f"{record.image_path} is not an image "
                                              "(no JPEG or PNG signature)",
                                              "Replace it with the real image"), "skipped_image")
    if fmt not in images.WRITABLE_FORMATS:
        if not options.reencode:
            _invalid(result, options, OdprepError(
                source, f"{record.image_path} is {fmt.upper()}; the OD API reads JPEG and PNG",
                "Convert it, or pass --reencode to store it as PNG"), "skipped_image")
        try:
            data = images.reencode_png(data, options.max_pixels)
        except (OSError, ValueError) as exc:
            _invalid(result, options, OdprepError(source, f"cannot re-encode {record.image_path}: {exc}",
                                                  "Replace the image"), "skipped_image")
        result.events.append(Event("warning", f"{source}: {record.image_path.name} re-encoded "
                                   f"from {fmt.upper()} to PNG"))
        fmt = "png"
    try:
        head = images.header(data)
    except ValueError as exc:
        _invalid(result, options, OdprepError(source, f"{record.image_path} is not a readable image "
                                              f"({exc})", "Replace the image"), "skipped_image")
    width, height = head.width, head.height
    if width * height > options.max_pixels:
        _invalid(result, options, OdprepError(
            source, f"{record.image_path} is {width}x{height} ({width * height / 1e6:.0f} megapixels), "
            f"over the limit of {options.max_pixels:,} pixels (a decompression bomb, or too large to "
            "train on)", "Resize or tile the image, or raise --max-pixels"), "skipped_image")
    declared = (record.width or 0, record.height or 0)
    if fmt == "png" and head.alpha:  # only such a PNG can hide colours under transparent pixels
        data = _opaque(record, data, source, options, result)
    if fmt in ("jpeg", "png") and head.exif:  # most images carry no EXIF block: nothing to orient
        data, width, height = _orient(record, data, fmt, (width, height), options, result)
    if declared != (0, 0) and declared != (width, height):
        _invalid(result, options, OdprepError(
            source, f"declared size {declared[0]}x{declared[1]} disagrees with the image "
            f"{record.image_path.name}, which is {width}x{height}",
            "Fix the annotation's width/height (or remove them so they are read from the image)"),
            "skipped_image")
    return data, fmt, width, height


def _opaque(record: ImageRecord, data: bytes, source: str, options: EncodeOptions,
            result: EncodedImage) -> bytes:
    """A PNG with transparent pixels: the trainer decodes the colours hidden under them."""
    try:
        hidden = images.transparent_pixels(data, options.max_pixels)
    except ValueError:
        return data  # reported as unreadable by the size check that follows
    if not hidden:
        return data
    if not options.reencode:
        _invalid(result, options, OdprepError(
            source, f"{record.image_path.name} has {hidden:,} transparent pixel(s); the trainer drops the "
            "alpha channel and sees the colours hidden under them, not what the annotator saw",
            "Pass --reencode to flatten it on white (as viewers show it)"), "skipped_image")
    result.events.append(Event("warning", f"{source}: {record.image_path.name}: {hidden:,} transparent "
                               "pixel(s) flattened on white (--reencode)"))
    return images.flattened(data, options.max_pixels)


def _orient(record: ImageRecord, data: bytes, fmt: str, stored: tuple[int, int], options: EncodeOptions,
            result: EncodedImage) -> tuple[bytes, int, int]:
    """The image's EXIF orientation, dealt with (odprep.orientation): an annotation made on
    the upright view is refused without --auto-orient, which bakes the rotation in."""
    from odprep import orientation

    tag = orientation.exif_orientation(data)
    if tag == 1:
        return data, *stored
    source = f"{record.annotation_path}: {record.ref}" if record.ref else record.annotation_path
    name = record.image_path.name
    declared = (record.width or 0, record.height or 0)
    seen = orientation.frame(tag, declared, stored)
    if options.auto_orient is False or seen == "stored":
        why = "--no-auto-orient" if options.auto_orient is False else "annotated as stored"
        result.events.append(Event("oriented", f"{source}: {name}: EXIF orientation {tag}, {why}: left as stored"))
        return data, *stored
    if seen == "upright" and options.auto_orient is None:
        _invalid(result, options, OdprepError(
            source, f"{name} is stored {stored[0]}x{stored[1]} with EXIF orientation {tag}, and the annotation "
            f"is {declared[0]}x{declared[1]}: it was made on the upright view, which the trainer never sees "
            "(TensorFlow ignores the tag), so every box would land on the wrong pixels",
            "Pass --auto-orient to turn the pixels upright"), "skipped_image")
    if seen == "unknown" and options.auto_orient is None:
        result.events.append(Event("warning", f"{source}: {name} has EXIF orientation {tag}, and its size does "
                                   "not tell whether it was annotated upright or as stored; written as stored "
                                   "(pass --auto-orient if it was annotated upright, as most tools show it, "
                                   "or --no-auto-orient)"))
        return data, *stored
    try:
        turned, width, height = orientation.upright(data, fmt, options.max_pixels)
    except (OSError, ValueError) as exc:
        _invalid(result, options, OdprepError(source, f"cannot turn {name} upright: {exc}", "Replace the image"),
                 "skipped_image")
    result.events.append(Event("oriented", f"{source}: {name}: EXIF orientation {tag}: re-oriented "
                               f"(--auto-orient), now {width}x{height}"))
    return turned, width, height


def _checked_box(obj: ObjectAnnotation, where: str, record: ImageRecord, width: int, height: int,
                 options: EncodeOptions, result: EncodedImage) -> tuple[float, float, float, float] | None:
    """The box in pixels after the bad-box policy, or None if the object is skipped."""
    source = record.annotation_path
    scale_x, scale_y = (width, height) if record.normalized_boxes else (1.0, 1.0)
    xmin, xmax = obj.xmin * scale_x, obj.xmax * scale_x
    ymin, ymax = obj.ymin * scale_y, obj.ymax * scale_y
    shown = (obj.xmin, obj.ymin, obj.xmax, obj.ymax)
    if not all(math.isfinite(v) for v in shown):
        _invalid(result, options, OdprepError(source, f"box {shown} has a NaN or infinite coordinate",
                                              "Fix the box", where), "skipped_object")
        return None
    if xmin >= xmax or ymin >= ymax:
        axis = (f"xmin {obj.xmin:g} >= xmax {obj.xmax:g}" if xmin >= xmax
                else f"ymin {obj.ymin:g} >= ymax {obj.ymax:g}")
        _invalid(result, options, OdprepError(source, f"empty or inverted box: {axis}",
                                              "Fix the box (or pass --skip-invalid)", where),
                 "skipped_object")
        return None
    limits = (("xmin", xmin, 0.0, "left edge 0"), ("ymin", ymin, 0.0, "top edge 0"),
              ("xmax", xmax, float(width), f"image width {width}"),
              ("ymax", ymax, float(height), f"image height {height}"))
    overshoot = [(name, value, bound, text) for name, value, bound, text in limits
                 if (value < bound if name.endswith("min") else value > bound)]
    if overshoot:
        worst = max(abs(value - bound) for _, value, bound, _ in overshoot)
        name, value, _, text = overshoot[0]
        if worst <= options.rounding_px:
            result.events.append(Event("rounded", f"{source}: {where}: {name} {value:g} is past the "
                                       f"{text} by {worst:.3g} px (rounding); clamped"))
        elif options.clip_boxes:
            result.events.append(Event("clipped", f"{source}: {where}: {name} {value:g} is outside the "
                                       f"{text}; clipped (--clip-boxes)"))
        else:
            _invalid(result, options, OdprepError(
                source, f"{name} {value:g} is outside the {text}",
                "Fix the box, or pass --clip-boxes", where), "skipped_object")
            return None
        xmin, xmax = min(max(xmin, 0.0), width), min(max(xmax, 0.0), width)
        ymin, ymax = min(max(ymin, 0.0), height), min(max(ymax, 0.0), height)
        if xmin >= xmax or ymin >= ymax:
            _invalid(result, options, OdprepError(source, "box lies entirely outside the image",
                                                  "Fix or remove the box", where), "skipped_object")
            return None
    return xmin, ymin, xmax, ymax


def _encode(record: ImageRecord, label_map: LabelMap, options: EncodeOptions,
            result: EncodedImage) -> EncodedImage:
    source = record.annotation_path
    if not record.objects and options.skip_empty and record.class_mask_path is None:
        result.events.append(Event("skipped_image", f"{source}: no objects (--skip-empty)"))
        raise _Skip
    data, fmt, width, height = _read_image(record, options, result)

    kept: list[tuple[ObjectAnnotation, tuple[float, float, float, float], int, bytes | None]] = []
    for index, obj in enumerate(record.objects, start=1):
        where = obj.ref or object_where(index, obj.label)
        label_id = label_map.id_of(obj.label)
        if label_id is None:
            _invalid(result, options, UnknownClass(
                source, f"class {obj.label!r} is not in the label map {label_map.source}".rstrip(),
                "Add it to the label map, or fix the class name", where), "skipped_object")
            continue
        box = _checked_box(obj, where, record, width, height, options, result)
        if box is None:
            continue
        mask = None
        if options.include_masks:
            mask = _mask(obj, where, record, width, height, options, result)
            if mask is None:
                continue
        kept.append((obj, box, label_id, mask))
    if record.objects and not kept:
        # Writing it as a negative would teach "background" where objects are.
        named = f"{source}: {record.ref}" if record.ref else source
        result.events.append(Event("skipped_image", f"{named}: every object was skipped; the image "
                                   "is left out rather than written as a negative"))
        raise _Skip

    masks = [mask for *_, mask in kept] if options.include_masks else None
    stored_width, stored_height = width, height
    if options.max_size and max(width, height) > options.max_size and record.class_mask_path is None:
        before = len(data)
        try:
            data, stored_width, stored_height = images.downscaled(data, fmt, options.max_size,
                                                                  options.jpeg_quality, options.max_pixels)
            masks = [images.resized_mask(m, stored_width, stored_height) for m in masks] if masks else masks
        except (OSError, ValueError) as exc:
            _invalid(result, options, OdprepError(source, f"cannot resize {record.image_path.name}: {exc}",
                                                  "Replace the image, or convert without --max-size"),
                     "skipped_image")
        result.resized_from = before
    sha256 = hashlib.sha256(data).hexdigest()
    features = proto.Features()
    feature = features.feature
    feature[keys.IMAGE_FORMAT].bytes_list.value.append(fmt.encode())
    feature[keys.IMAGE_HEIGHT].int64_list.value.append(stored_height)  # the bytes' own size
    feature[keys.IMAGE_WIDTH].int64_list.value.append(stored_width)
    feature[keys.IMAGE_FILENAME].bytes_list.value.append(record.filename.encode("utf-8"))
    feature[keys.IMAGE_SOURCE_ID].bytes_list.value.append(record.source_id.encode("utf-8"))
    feature[keys.IMAGE_SHA256].bytes_list.value.append(sha256.encode())
    if record.class_mask_path is not None:
        from odprep.segmask import add_class_mask  # only seg2tfr needs it

        try:
            notes = add_class_mask(feature, record, width, height, options.colormap, options.max_pixels)
        except OdprepError as error:
            _invalid(result, options, error, "skipped_image")
        result.events += [Event("warning", note) for note in notes]
    else:
        _add_objects(feature, record, kept, width, height, masks)
    if record.image_classes:
        ids = [label_map.id_of(name) for name in record.image_classes]
        feature[keys.IMAGE_CLASS_TEXT].bytes_list.value.extend(
            name.encode("utf-8") for name, i in zip(record.image_classes, ids, strict=True) if i is not None)
        feature[keys.IMAGE_CLASS_LABEL].int64_list.value.extend(i for i in ids if i is not None)
        unmapped = [name for name, i in zip(record.image_classes, ids, strict=True) if i is None]
        if unmapped:  # never dropped silently: counted in the summary
            result.events.append(Event("warning", f"{record.annotation_path}: {record.ref}: image-level "
                                       f"label(s) {', '.join(map(repr, unmapped))} not in the label map (no "
                                       "box has them); left out of image/class (pass a --label-map with them)"))

    result.parts = frame_parts(proto.example_parts(features, keys.IMAGE_ENCODED, data))
    result.record_size = sum(len(part) for part in result.parts)
    result.sha256 = sha256
    result.labels = tuple(obj.label for obj, *_ in kept)
    result.image_bytes = len(data)
    result.has_masks = masks is not None and bool(kept)
    result.segmentation = record.class_mask_path is not None
    return result


def _add_objects(feature, record: ImageRecord, kept, width: int, height: int, masks) -> None:
    columns: dict[str, list] = {key: [] for key in (*keys.BBOX_KEYS, keys.CLASS_TEXT, keys.CLASS_LABEL,
                                                    *record.object_keys)}
    for obj, (xmin, ymin, xmax, ymax), label_id, _ in kept:
        columns[keys.BBOX_XMIN].append(xmin / width)
        columns[keys.BBOX_XMAX].append(xmax / width)
        columns[keys.BBOX_YMIN].append(ymin / height)
        columns[keys.BBOX_YMAX].append(ymax / height)
        columns[keys.CLASS_TEXT].append(obj.label.encode("utf-8"))
        columns[keys.CLASS_LABEL].append(label_id)
        for key in record.object_keys:
            columns[key].append(_object_value(obj, key, xmin, ymin, xmax, ymax))
    if masks is not None:
        columns[keys.MASK] = masks
    if any(obj.keypoint_names for obj, *_ in kept):
        _add_keypoints(feature, [obj for obj, *_ in kept], width, height)
    for key, values in columns.items():
        kind = keys.PER_OBJECT_KEYS[key]
        value_list = getattr(feature[key], f"{kind}_list")
        value_list.SetInParent()  # an empty list keeps its type for negatives
        value_list.value.extend(values)


def _add_keypoints(feature, objects: list[ObjectAnnotation], width: int, height: int) -> None:
    """As the OD API's COCO converter writes them: K keypoints for every object (zeros with
    visibility 0 where an object has none), normalised, COCO's visibility, names, and the
    number labeled per object. Its decoder turns visibility 0 into NaN."""
    names = next(obj.keypoint_names for obj in objects if obj.keypoint_names)
    xs, ys, visibility, texts, counts = [], [], [], [], []
    for obj in objects:
        values = obj.keypoints if obj.keypoints is not None else (0.0, 0.0, 0) * len(names)
        xs += [x / width for x in values[0::3]]
        ys += [y / height for y in values[1::3]]
        visibility += [int(v) for v in values[2::3]]
        texts += [name.encode("utf-8") for name in names]
        counts.append(sum(1 for v in values[2::3] if v > 0))
    feature[keys.KEYPOINT_X].float_list.value.extend(xs)
    feature[keys.KEYPOINT_Y].float_list.value.extend(ys)
    feature[keys.KEYPOINT_VISIBILITY].int64_list.value.extend(visibility)
    feature[keys.KEYPOINT_TEXT].bytes_list.value.extend(texts)
    feature[keys.KEYPOINT_NUM].int64_list.value.extend(counts)


def _object_value(obj: ObjectAnnotation, key: str, xmin, ymin, xmax, ymax):
    if key == keys.DIFFICULT:
        return obj.difficult
    if key == keys.TRUNCATED:
        return obj.truncated
    if key == keys.VIEW:
        return obj.view.encode("utf-8")
    if key == keys.IS_CROWD:
        return obj.is_crowd
    if key in (keys.OCCLUDED, keys.GROUP_OF, keys.DEPICTION):
        return getattr(obj, key.rsplit("/", 1)[-1])
    if key == keys.AREA:
        return obj.area if obj.area is not None else (xmax - xmin) * (ymax - ymin)
    raise KeyError(key)


def _mask(obj: ObjectAnnotation, where: str, record: ImageRecord, width: int, height: int,
          options: EncodeOptions, result: EncodedImage) -> bytes | None:
    """The object's PNG mask, or None when the object is skipped (--skip-invalid)."""
    from odprep.masks import segmentation_to_png

    notes: list[str] = []
    segmentation = obj.segmentation
    if record.normalized_boxes and isinstance(segmentation, list):  # polygons in [0, 1]
        segmentation = [[v * (width if i % 2 == 0 else height) for i, v in enumerate(part)]
                        if isinstance(part, list) else part for part in segmentation]
    try:
        png = segmentation_to_png(segmentation, height, width, notes)
    except ValueError as exc:
        _invalid(result, options, OdprepError(record.annotation_path, f"cannot rasterise the mask: {exc}",
                                              "Fix the segmentation, or convert without --include-masks",
                                              where), "skipped_object")
        return None
    result.events += [Event("warning", f"{record.annotation_path}: {where}: {note}") for note in notes]
    return png
