"""Feature keys of the OD API / Model Garden tf.train.Example, defined once."""

IMAGE_ENCODED = "image/encoded"
IMAGE_FORMAT = "image/format"
IMAGE_HEIGHT = "image/height"
IMAGE_WIDTH = "image/width"
IMAGE_CHANNELS = "image/channels"
IMAGE_FILENAME = "image/filename"
IMAGE_SOURCE_ID = "image/source_id"
IMAGE_SHA256 = "image/key/sha256"

BBOX_XMIN = "image/object/bbox/xmin"
BBOX_XMAX = "image/object/bbox/xmax"
BBOX_YMIN = "image/object/bbox/ymin"
BBOX_YMAX = "image/object/bbox/ymax"
CLASS_TEXT = "image/object/class/text"
CLASS_LABEL = "image/object/class/label"
DIFFICULT = "image/object/difficult"
TRUNCATED = "image/object/truncated"
VIEW = "image/object/view"
IS_CROWD = "image/object/is_crowd"
OCCLUDED = "image/object/occluded"
GROUP_OF = "image/object/group_of"
DEPICTION = "image/object/depiction"
AREA = "image/object/area"
MASK = "image/object/mask"

KEYPOINT_X = "image/object/keypoint/x"  # per keypoint, K per object, normalised
KEYPOINT_Y = "image/object/keypoint/y"
KEYPOINT_VISIBILITY = "image/object/keypoint/visibility"  # COCO's v: 0 unlabeled, 1 hidden, 2 visible
KEYPOINT_TEXT = "image/object/keypoint/text"
KEYPOINT_NUM = "image/object/keypoint/num"  # per object: how many are labeled

IMAGE_CLASS_TEXT = "image/class/text"
IMAGE_CLASS_LABEL = "image/class/label"

SEG_CLASS_ENCODED = "image/segmentation/class/encoded"
SEG_CLASS_FORMAT = "image/segmentation/class/format"

BBOX_KEYS = (BBOX_XMIN, BBOX_XMAX, BBOX_YMIN, BBOX_YMAX)

# Kind of each canonical key ("bytes", "float" or "int64") and whether it holds
# one value per image (scalar) or one per object (list).
SCALAR_KEYS: dict[str, str] = {
    IMAGE_ENCODED: "bytes",
    IMAGE_FORMAT: "bytes",
    IMAGE_HEIGHT: "int64",
    IMAGE_WIDTH: "int64",
    IMAGE_CHANNELS: "int64",
    IMAGE_FILENAME: "bytes",
    IMAGE_SOURCE_ID: "bytes",
    IMAGE_SHA256: "bytes",
    SEG_CLASS_ENCODED: "bytes",
    SEG_CLASS_FORMAT: "bytes",
}
PER_OBJECT_KEYS: dict[str, str] = {
    BBOX_XMIN: "float",
    BBOX_XMAX: "float",
    BBOX_YMIN: "float",
    BBOX_YMAX: "float",
    CLASS_TEXT: "bytes",
    CLASS_LABEL: "int64",
    DIFFICULT: "int64",
    TRUNCATED: "int64",
    VIEW: "bytes",
    IS_CROWD: "int64",
    OCCLUDED: "int64",
    GROUP_OF: "int64",
    DEPICTION: "int64",
    AREA: "float",
    MASK: "bytes",
}
CANONICAL_KEYS: dict[str, str] = {**SCALAR_KEYS, **PER_OBJECT_KEYS}
