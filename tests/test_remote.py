"""URLs as paths, against a real S3-compatible HTTP server (moto's server mode) through s3fs,
as s3fs's own tests do. odprep runs as a subprocess and finds the server the standard way,
through fsspec's configuration (FSSPEC_S3_ENDPOINT_URL)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest

from tests.conftest import SAMPLE

s3fs = pytest.importorskip("s3fs")
moto_server = pytest.importorskip("moto.server")

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
               "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture(scope="module")
def endpoint():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture()
def s3(endpoint, monkeypatch):
    for key, value in CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": endpoint}, skip_instance_cache=True)
    for bucket in ("src", "dst"):
        if fs.exists(bucket):
            fs.rm(bucket, recursive=True)
        fs.mkdir(bucket)
    fs.put(str(SAMPLE / "images"), "src/images", recursive=True)
    fs.put(str(SAMPLE / "voc" / "Annotations"), "src/voc/Annotations", recursive=True)
    fs.put(str(SAMPLE / "coco" / "instances.json"), "src/coco/instances.json")
    fs.invalidate_cache()
    return fs


def odprep(endpoint: str, *args: object, env: dict | None = None, **popen) -> subprocess.CompletedProcess:
    env = {**os.environ, **CREDENTIALS, "FSSPEC_S3_ENDPOINT_URL": endpoint, "TF_CPP_MIN_LOG_LEVEL": "3",
           **(env or {})}
    return subprocess.run([sys.executable, "-m", "odprep", *map(str, args)], capture_output=True,
                          text=True, env=env, timeout=300, **popen)


def objects(fs, bucket: str = "dst") -> list[str]:
    fs.invalidate_cache()
    return sorted(fs.find(bucket))


def test_conversion_from_a_bucket_to_a_bucket_equals_the_local_one(s3, endpoint, tmp_path):
    done = odprep(endpoint, "voc2tfr", "s3://src/voc/Annotations", "--images-dir", "s3://src/images",
                  "-o", "s3://dst/out/train.record", "--num-shards", "2", "--workers", "2")
    assert done.returncode == 0, done.stderr
    assert objects(s3) == ["dst/out/label_map.pbtxt", "dst/out/train.record-00000-of-00002",
                           "dst/out/train.record-00001-of-00002"]
    assert "s3://dst/out/train.record-00000-of-00002" in done.stdout  # URLs named, not temp folders
    assert "odprep-remote-" not in done.stdout + done.stderr
    local = odprep(endpoint, "voc2tfr", SAMPLE / "voc" / "Annotations", "--images-dir", SAMPLE / "images",
                   "-o", tmp_path / "train.record", "--num-shards", "2")
    assert local.returncode == 0, local.stderr
    for shard in ("train.record-00000-of-00002", "train.record-00001-of-00002"):
        assert s3.cat(f"dst/out/{shard}") == (tmp_path / shard).read_bytes()
    assert s3.cat("dst/out/label_map.pbtxt") == (tmp_path / "label_map.pbtxt").read_bytes()


def test_coco_masks_with_workers_fetch_images_in_the_workers(s3, endpoint, tmp_path, tf):
    done = odprep(endpoint, "coco2tfr", "s3://src/coco/instances.json", "--images-dir", "s3://src/images",
                  "-o", "s3://dst/coco/train.record", "--include-masks", "--workers", "2")
    assert done.returncode == 0, done.stderr
    local = odprep(endpoint, "coco2tfr", SAMPLE / "coco" / "instances.json", "--images-dir",
                   SAMPLE / "images", "-o", tmp_path / "train.record", "--include-masks")
    assert local.returncode == 0, local.stderr
    assert s3.cat("dst/coco/train.record") == (tmp_path / "train.record").read_bytes()
    (tmp_path / "back.record").write_bytes(s3.cat("dst/coco/train.record"))
    assert sum(1 for _ in tf.data.TFRecordDataset([str(tmp_path / "back.record")])) > 0


def test_validate_inspect_and_check_read_records_in_the_bucket(s3, endpoint, tmp_path):
    assert odprep(endpoint, "voc2tfr", "s3://src/voc/Annotations", "--images-dir", "s3://src/images",
                  "-o", "s3://dst/out/train.record", "--num-shards", "2").returncode == 0
    validated = odprep(endpoint, "validate", "s3://dst/out/train.record-*",
                       "--label-map", "s3://dst/out/label_map.pbtxt")
    assert validated.returncode == 0, validated.stdout + validated.stderr
    inspected = odprep(endpoint, "inspect", "s3://dst/out/train.record-00000-of-00002")
    assert inspected.returncode == 0 and "images: " in inspected.stdout, inspected.stderr
    config = odprep(endpoint, "new-config", "--template", "ssd_mobilenet_v2_fpnlite_320", "-o", "s3://dst/pipeline.config",
                    "--train-input", "s3://dst/out/train.record-*", "--eval-input",
                    "s3://dst/out/train.record-*", "--label-map", "s3://dst/out/label_map.pbtxt",
                    "--no-checkpoint")
    assert config.returncode == 0, config.stderr
    assert 'input_path: "s3://dst/out/train.record-*"' in s3.cat("dst/pipeline.config").decode()
    checked = odprep(endpoint, "check", "s3://dst/pipeline.config")
    assert "2 file(s)" in checked.stdout, checked.stdout + checked.stderr
    assert checked.returncode in (0, 1) and "input-path-unmatched" not in checked.stdout
    missing = odprep(endpoint, "validate", "s3://dst/none-*.record")
    assert missing.returncode != 0


def test_an_error_mid_run_leaves_no_object(s3, endpoint):
    s3.pipe("src/images/zz_broken.jpg", b"\xff\xd8\xff\xe0 not really a jpeg")
    s3.pipe("src/voc/Annotations/zz_broken.xml",
            b"<annotation><filename>zz_broken.jpg</filename><size><width>8</width><height>8</height>"
            b"<depth>3</depth></size><object><name>cat</name><bndbox><xmin>1</xmin><ymin>1</ymin>"
            b"<xmax>4</xmax><ymax>4</ymax></bndbox></object></annotation>")
    done = odprep(endpoint, "voc2tfr", "s3://src/voc/Annotations", "--images-dir", "s3://src/images",
                  "-o", "s3://dst/out/train.record", "--num-shards", "3")
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "s3://src/images/zz_broken.jpg" in done.stderr
    assert objects(s3) == []


def test_ctrl_c_leaves_no_object(s3, endpoint, tmp_path):
    many = tmp_path / "many"
    shutil.copytree(SAMPLE / "images", many / "images")
    annotations = many / "Annotations"
    annotations.mkdir()
    for xml in (SAMPLE / "voc" / "Annotations").glob("*.xml"):
        for copy in range(150):
            (annotations / f"{copy}_{xml.name}").write_bytes(xml.read_bytes())
    s3.put(str(annotations), "src/many", recursive=True)
    env = {**os.environ, **CREDENTIALS, "FSSPEC_S3_ENDPOINT_URL": endpoint, "TF_CPP_MIN_LOG_LEVEL": "3",
           "TMPDIR": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, "-m", "odprep", "voc2tfr", "s3://src/many", "--images-dir",
                             "s3://src/images", "-o", "s3://dst/out/train.record", "--workers", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    time.sleep(4)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode in (130, 0), err
    if proc.returncode == 130:
        assert objects(s3) == []
        assert err.strip() == "interrupted: no output was written"  # no asyncio noise after it
    assert list(tmp_path.glob("odprep-remote-*")) == []


def test_bad_urls_are_one_line_errors(s3, endpoint):
    missing = odprep(endpoint, "voc2tfr", "s3://src/nothing", "--images-dir", "s3://src/images", "-o",
                     "s3://dst/x.record")
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1, missing.stderr
    assert "s3://src/nothing" in missing.stderr
    protocol = odprep(endpoint, "voc2tfr", "nosuchproto://a/b", "--images-dir", "s3://src/images", "-o",
                      "s3://dst/x.record")
    assert protocol.returncode == 2 and protocol.stderr.count("\n") == 1, protocol.stderr
    assert objects(s3) == []


def test_storage_option_names_the_server_without_fsspec_configuration(s3, endpoint, tmp_path):
    env = {**os.environ, **CREDENTIALS, "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("FSSPEC_S3_ENDPOINT_URL", None)
    done = subprocess.run([sys.executable, "-m", "odprep", "coco2tfr", "s3://src/coco/instances.json",
                           "--images-dir", "s3://src/images", "-o", "s3://dst/c/x.record",
                           "--storage-option", f"endpoint_url={endpoint}"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert objects(s3) == ["dst/c/label_map.pbtxt", "dst/c/x.record"]
    bad = subprocess.run([sys.executable, "-m", "odprep", "--storage-option", "novalue", "validate",
                          "s3://dst/c/x.record"], capture_output=True, text=True, env=env, timeout=300)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "KEY=VALUE" in bad.stderr


def test_in_place_on_a_url_is_refused(s3, endpoint):
    s3.put(str(SAMPLE / "configs" / "pipeline.config"), "src/pipeline.config")
    done = odprep(endpoint, "patch-config", "s3://src/pipeline.config", "--num-classes", "3", "--in-place")
    assert done.returncode == 2 and "s3://src/pipeline.config" in done.stderr, done.stderr
    assert s3.cat("src/pipeline.config") == (SAMPLE / "configs" / "pipeline.config").read_bytes()


def _escape_key(prefix: str, target) -> str:
    """A key that, mapped naively below a staging folder, lands on ``target``."""
    return prefix + "../" * 40 + str(target).lstrip("/")


@pytest.mark.parametrize("where", ["annotations", "images", "labelmap"])
@pytest.mark.parametrize("shape", ["dots", "backslash", "absolute"])
def test_an_object_key_never_writes_outside_the_staging_folder(s3, endpoint, tmp_path, where, shape):
    target = tmp_path / "outside" / "evil.xml"
    folder = {"annotations": "src/voc/Annotations/", "images": "src/images/",
              "labelmap": "src/voc/Annotations/"}[where]
    key = {"dots": _escape_key(folder, target),
           "backslash": folder + "..\\..\\..\\" + "evil.xml",
           "absolute": folder + "/" + str(target).lstrip("/")}[shape]
    s3.pipe(key, (SAMPLE / "voc" / "Annotations").glob("*.xml").__next__().read_bytes())
    s3.invalidate_cache()
    env_tmp = tmp_path / "tmp"
    env_tmp.mkdir()
    if where == "labelmap":
        args = ["make-labelmap", "s3://src/voc/Annotations", "-o", "s3://dst/label_map.pbtxt"]
    else:
        args = ["voc2tfr", "s3://src/voc/Annotations", "--images-dir", "s3://src/images",
                "-o", "s3://dst/out/train.record"]
    done = odprep(endpoint, *args, env={"TMPDIR": str(env_tmp)})
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.count("\n") == 1 and "leads outside its folder" in done.stderr, done.stderr
    assert "s3://" in done.stderr
    assert not (tmp_path / "outside").exists()
    assert list(env_tmp.iterdir()) == []  # the staging folder is gone too
    assert objects(s3) == []


def test_odd_but_harmless_keys_stay_usable(s3, endpoint):
    xml = next((SAMPLE / "voc" / "Annotations").glob("*.xml"))
    s3.pipe("src/voc/Annotations/sub dir/#odd ..name é.xml", xml.read_bytes())
    s3.invalidate_cache()
    done = odprep(endpoint, "make-labelmap", "s3://src/voc/Annotations", "-o", "s3://dst/label_map.pbtxt")
    assert done.returncode == 0, done.stderr
    assert objects(s3) == ["dst/label_map.pbtxt"]


def test_ctrl_c_during_a_multipart_upload_is_one_line(s3, endpoint, tmp_path):
    """Shards stream to the bucket in 5 MiB parts; a SIGINT while one is open aborts it and
    prints one line, with no asyncio noise from the interpreter's shutdown."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.effect_noise((1400, 1000), 90).convert("RGB").save(buffer, format="JPEG", quality=98)
    images = tmp_path / "images"
    images.mkdir()
    annotations = tmp_path / "ann"
    annotations.mkdir()
    for i in range(120):
        (images / f"{i}.jpg").write_bytes(buffer.getvalue())
        (annotations / f"{i}.xml").write_text(
            f"<annotation><filename>{i}.jpg</filename><size><width>1400</width><height>1000</height>"
            "<depth>3</depth></size><object><name>cat</name><bndbox><xmin>1</xmin><ymin>1</ymin>"
            "<xmax>40</xmax><ymax>40</ymax></bndbox></object></annotation>")
    env = {**os.environ, **CREDENTIALS, "FSSPEC_S3_ENDPOINT_URL": endpoint, "TMPDIR": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, "-m", "odprep", "voc2tfr", str(annotations), "--images-dir",
                             str(images), "-o", "s3://dst/big/train.record", "--workers", "1", "-q"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        uploads = s3.call_s3("list_multipart_uploads", Bucket="dst").get("Uploads", [])
        if uploads:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    if proc.returncode == 0:
        pytest.skip("the run finished before an upload was seen")
    assert proc.returncode == 130, err
    assert err.strip() == "interrupted: no output was written", err
    assert objects(s3) == []


def test_check_looks_up_a_checkpoint_in_the_bucket_and_never_skips_one(s3, endpoint, tmp_path):
    assert odprep(endpoint, "voc2tfr", SAMPLE / "voc" / "Annotations", "--images-dir", SAMPLE / "images",
                  "-o", tmp_path / "train.record", "-q").returncode == 0
    made = odprep(endpoint, "new-config", "--template", "ssd_mobilenet_v2_fpnlite_320", "--train-input",
                  tmp_path / "train.record", "--eval-input", tmp_path / "train.record", "--label-map",
                  tmp_path / "label_map.pbtxt", "--checkpoint", "s3://src/ckpt/ckpt-0", "-o",
                  tmp_path / "p.config")
    assert made.returncode == 0, made.stderr
    missing = odprep(endpoint, "check", tmp_path / "p.config")
    assert missing.returncode == 1 and "path-missing" in missing.stdout
    assert "s3://src/ckpt/ckpt-0.index does not exist" in missing.stdout
    s3.pipe("src/ckpt/ckpt-0.index", b"index")
    s3.invalidate_cache()
    found = odprep(endpoint, "check", tmp_path / "p.config")
    assert "path-missing" not in found.stdout and "path-not-checked" not in found.stdout, found.stdout
    config = tmp_path / "p.config"
    config.write_text(config.read_text().replace("s3://src/ckpt/ckpt-0", "gs://made-up/ckpt-0"))
    unchecked = odprep(endpoint, "check", config)
    assert unchecked.returncode == 1 and "path-not-checked" in unchecked.stdout
    assert ("tf-odprep[gcs]" in unchecked.stdout) or "gcsfs" not in unchecked.stdout


def test_near_duplicates_are_compared_on_the_bucket_images(s3, endpoint, tmp_path):
    """--group-near-duplicates reads each image from the bucket (not the empty local
    placeholders): every image is compared, and the split is the local run's."""
    args = ["--split", "train=0.5,val=0.5", "--group-near-duplicates", "--workers", "2"]
    done = odprep(endpoint, "voc2tfr", "s3://src/voc/Annotations", "--images-dir", "s3://src/images",
                  "-o", "s3://dst/out/{split}.record", *args)
    assert done.returncode == 0, done.stderr
    assert "could not be read" not in done.stdout + done.stderr
    local = odprep(endpoint, "voc2tfr", SAMPLE / "voc" / "Annotations", "--images-dir", SAMPLE / "images",
                   "-o", tmp_path / "{split}.record", *args)
    assert local.returncode == 0 and "could not be read" not in local.stdout + local.stderr
    for split in ("train", "val"):
        assert s3.cat(f"dst/out/{split}.record") == (tmp_path / f"{split}.record").read_bytes()
