"""Images per second from a local S3-compatible server (moto's server mode), with one
request in flight and with the default concurrency. Every request gets an added
latency (--latency-ms, default 20), as a cloud store has; moto alone answers in
microseconds from memory, where concurrency could not show.

    python benchmarks/s3_fetch.py --images 1000

It uploads the benchmark dataset (benchmarks/make_dataset.py) to a bucket and runs
``odprep coco2tfr s3://... --images-dir s3://... -o s3://...`` with
ODPREP_FETCH_CONCURRENCY=1 and without it, workers 1 and the default, and prints
images/s and peak memory.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from run import ensure_dataset, measure  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--workdir", type=Path, default=HERE / "_work")
    parser.add_argument("--latency-ms", type=float, default=20.0,
                        help="added to every request, as a cloud object store's first-byte latency")
    args = parser.parse_args()
    import s3fs
    from moto.server import ThreadedMotoServer

    data = ensure_dataset(args.workdir, args.images)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    inner = server._server.app

    def with_latency(environ, start_response):
        time.sleep(args.latency_ms / 1000)
        return inner(environ, start_response)

    server._server.app = with_latency
    endpoint = f"http://127.0.0.1:{port}"
    credentials = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
                   "AWS_DEFAULT_REGION": "us-east-1"}
    os.environ.update(credentials)
    fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": endpoint})
    fs.mkdir("bench")
    fs.put(str(data / "images"), "bench/images", recursive=True)
    fs.put(str(data / "instances.json"), "bench/instances.json")
    count = len(json.loads((data / "instances.json").read_text())["images"])
    odprep = shutil.which("odprep") or "odprep"
    rows = []
    for concurrency in ("1", ""):
        for workers in ("1", str(len(os.sched_getaffinity(0)))):
            out = tempfile.mkdtemp()
            env = {**os.environ, "FSSPEC_S3_ENDPOINT_URL": endpoint, "ODPREP_FETCH_CONCURRENCY": concurrency}
            command = [odprep, "coco2tfr", "s3://bench/instances.json", "--images-dir", "s3://bench/images",
                       "-o", "s3://bench/out/train.record", "--workers", workers, "-q"]
            os.environ.update(env)
            started = time.perf_counter()
            wall, peak = measure(command, sample=True)
            rows.append((concurrency or "default", workers, count / wall, peak / 2**20))
            print(f"  concurrency {concurrency or 'default'}, workers {workers}: {wall:.1f} s "
                  f"({time.perf_counter() - started:.1f})", file=sys.stderr)
            fs.rm("bench/out", recursive=True)
            shutil.rmtree(out, ignore_errors=True)
    server.stop()
    print(f"\n### {count} images from a local S3 server (moto, {args.latency_ms:g} ms per request), "
          "coco2tfr bucket to bucket\n")
    print("| requests in flight | workers | images/s | peak memory (MiB) |\n|---|---:|---:|---:|")
    for concurrency, workers, rate, peak in rows:
        print(f"| {concurrency} | {workers} | {rate:.0f} | {peak:.0f} |")


if __name__ == "__main__":
    main()
