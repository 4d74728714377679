"""A tf.data reader for what odprep writes, for training code outside the OD API."""

from __future__ import annotations

import glob as globlib

from odprep import keys
from odprep.errors import OdprepError
from odprep.extras import require


def tf_dataset(pattern: str, masks: bool = False):
    """A ``tf.data.Dataset`` of decoded dicts from TFRecord files matching ``pattern``.

    Each element has: image (uint8 [H, W, 3]), height, width, filename,
    source_id, boxes (float32 [N, 4] as [ymin, xmin, ymax, xmax] in [0, 1]),
    classes (int64 [N]), texts (string [N]) and, with ``masks=True``,
    masks (uint8 [N, H, W]). TensorFlow is imported only here.
    """
    tf = require("tensorflow", "tf", "tf_dataset")
    files = sorted(globlib.glob(pattern))
    if not files:
        raise OdprepError(pattern, "no TFRecord files match", "Check the path or glob pattern")
    spec = {
        keys.IMAGE_ENCODED: tf.io.FixedLenFeature((), tf.string),
        keys.IMAGE_HEIGHT: tf.io.FixedLenFeature((), tf.int64),
        keys.IMAGE_WIDTH: tf.io.FixedLenFeature((), tf.int64),
        keys.IMAGE_FILENAME: tf.io.FixedLenFeature((), tf.string, default_value=""),
        keys.IMAGE_SOURCE_ID: tf.io.FixedLenFeature((), tf.string, default_value=""),
        keys.CLASS_LABEL: tf.io.VarLenFeature(tf.int64),
        keys.CLASS_TEXT: tf.io.VarLenFeature(tf.string),
        **{key: tf.io.VarLenFeature(tf.float32) for key in keys.BBOX_KEYS},
    }
    if masks:
        spec[keys.MASK] = tf.io.VarLenFeature(tf.string)

    def decode(serialized):
        parsed = tf.io.parse_single_example(serialized, spec)
        dense = {k: tf.sparse.to_dense(v) if isinstance(v, tf.SparseTensor) else v
                 for k, v in parsed.items()}
        height, width = dense[keys.IMAGE_HEIGHT], dense[keys.IMAGE_WIDTH]
        image = tf.io.decode_image(dense[keys.IMAGE_ENCODED], channels=3, expand_animations=False)
        element = {
            "image": image,
            "height": height,
            "width": width,
            "filename": dense[keys.IMAGE_FILENAME],
            "source_id": dense[keys.IMAGE_SOURCE_ID],
            "boxes": tf.stack([dense[keys.BBOX_YMIN], dense[keys.BBOX_XMIN],
                               dense[keys.BBOX_YMAX], dense[keys.BBOX_XMAX]], axis=-1),
            "classes": dense[keys.CLASS_LABEL],
            "texts": dense[keys.CLASS_TEXT],
        }
        if masks:
            pngs = dense[keys.MASK]
            element["masks"] = tf.cond(
                tf.size(pngs) > 0,
                lambda: tf.map_fn(lambda png: tf.io.decode_png(png, channels=1)[..., 0], pngs,
                                  fn_output_signature=tf.TensorSpec([None, None], tf.uint8)),
                lambda: tf.zeros([0, height, width], tf.uint8))
        return element

    return tf.data.TFRecordDataset(files).map(decode, num_parallel_calls=tf.data.AUTOTUNE)
