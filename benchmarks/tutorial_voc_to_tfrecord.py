"""Baseline (a): a single-process VOC -> TFRecord script of the shape the tutorials use.

XML to a pandas table, group by image, read each image with tf.io.gfile and PIL,
build tf.train.Example with the usual helpers, write with tf.io.TFRecordWriter.
Kept only to benchmark odprep against it.

    python benchmarks/tutorial_voc_to_tfrecord.py ANNOTATIONS_DIR IMAGES_DIR OUTPUT
"""

import glob
import io
import os
import sys
import xml.etree.ElementTree as ET

import pandas as pd
import tensorflow as tf
from PIL import Image


def xml_to_dataframe(path):
    rows = []
    for xml_file in sorted(glob.glob(path + "/*.xml")):
        root = ET.parse(xml_file).getroot()
        for member in root.findall("object"):
            box = member.find("bndbox")
            rows.append((root.find("filename").text, int(root.find("size").find("width").text),
                         int(root.find("size").find("height").text), member.find("name").text,
                         int(float(box.find("xmin").text)), int(float(box.find("ymin").text)),
                         int(float(box.find("xmax").text)), int(float(box.find("ymax").text))))
    return pd.DataFrame(rows, columns=["filename", "width", "height", "class", "xmin", "ymin", "xmax",
                                       "ymax"])


def bytes_feature(value):
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def bytes_list_feature(value):
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=value))


def int64_feature(value):
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))


def int64_list_feature(value):
    return tf.train.Feature(int64_list=tf.train.Int64List(value=value))


def float_list_feature(value):
    return tf.train.Feature(float_list=tf.train.FloatList(value=value))


def create_tf_example(group, path, class_ids):
    with tf.io.gfile.GFile(os.path.join(path, group.filename), "rb") as fid:
        encoded_jpg = fid.read()
    width, height = Image.open(io.BytesIO(encoded_jpg)).size
    rows = group.object
    return tf.train.Example(features=tf.train.Features(feature={
        "image/height": int64_feature(height),
        "image/width": int64_feature(width),
        "image/filename": bytes_feature(group.filename.encode("utf8")),
        "image/source_id": bytes_feature(group.filename.encode("utf8")),
        "image/encoded": bytes_feature(encoded_jpg),
        "image/format": bytes_feature(b"jpg"),
        "image/object/bbox/xmin": float_list_feature(list(rows.xmin / width)),
        "image/object/bbox/xmax": float_list_feature(list(rows.xmax / width)),
        "image/object/bbox/ymin": float_list_feature(list(rows.ymin / height)),
        "image/object/bbox/ymax": float_list_feature(list(rows.ymax / height)),
        "image/object/class/text": bytes_list_feature([c.encode("utf8") for c in rows["class"]]),
        "image/object/class/label": int64_list_feature([class_ids[c] for c in rows["class"]]),
    }))


def main(annotations, images, output):
    table = xml_to_dataframe(annotations)
    class_ids = {name: i for i, name in enumerate(sorted(table["class"].unique()), start=1)}
    os.makedirs(os.path.dirname(output) or ".", exist_ok=True)
    with tf.io.TFRecordWriter(output) as writer:
        for filename, rows in table.groupby("filename"):
            group = type("Group", (), {"filename": filename, "object": rows})
            writer.write(create_tf_example(group, images, class_ids).SerializeToString())


if __name__ == "__main__":
    main(*sys.argv[1:4])
