"""Encoding on Apache Beam: the reader lists the records here, Beam's workers encode them.

``--runner DirectRunner`` runs locally (``--beam-option direct_num_workers=2
--beam-option direct_running_mode=multi_processing`` for processes); DataflowRunner,
FlinkRunner and SparkRunner take their usual pipeline options. Shards get the OD API
names (``OUTPUT-00000-of-00010``); they are written under a temporary name and only
renamed into place (``Summary.pending``) once the pipeline has succeeded, so a failed
run leaves nothing at the output path. Skips and clips are Beam metrics, summed into
the usual summary; their messages go to the workers' logs.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import multiprocessing
import os
import re
import secrets
import signal
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from odprep import storage
from odprep.errors import OdprepError
from odprep.example import EncodeOptions, encode_record
from odprep.extras import install_hint
from odprep.fileio import TEMP_SUFFIX, missing_folders, os_error, remove_empty_folders
from odprep.labelmap import LabelMap
from odprep.model import ImageRecord
from odprep.termination import held, worker_setup

NAMESPACE = "odprep"
_OPEN, _CLOSE = "<odprep-error>", "</odprep-error>"
_MARK = re.compile(f"{_OPEN}(.*?){_CLOSE}", re.S)
_EVENTS = ("skipped_image", "skipped_object", "clipped", "rounded", "oriented", "warning")
_SUMS = ("images", "negatives", "objects", "image_bytes", "output_bytes", "segmentation_masks",
         "has_masks", "resized", "resized_bytes_before", "resized_bytes_after")


@dataclass(frozen=True)
class BeamRunner:
    """Where the encoding runs instead of local worker processes."""

    name: str
    options: tuple[str, ...] = ()  # KEY=VALUE pipeline options
    token: str = field(default_factory=lambda: secrets.token_hex(4))  # names this run's temporaries

    def pipeline_args(self) -> list[str]:
        args = [f"--runner={self.name}"]
        for pair in self.options:
            key, sep, value = pair.partition("=")
            if not sep or not key.strip("-"):
                raise OdprepError("--beam-option", f"{pair!r} is not KEY=VALUE",
                                  "Write e.g. --beam-option direct_num_workers=2")
            args.append(f"--{key.strip('-')}={value}")
        return args

    @property
    def local(self) -> bool:
        return self.name in ("DirectRunner", "direct", "PrismRunner", "prism")


def _encode_examples(beam):
    """The DoFn class (defined once Beam is imported): one record in, its serialized
    Example out; what a local run would count goes to Beam metrics."""
    from apache_beam.metrics import Metrics

    class EncodeExamples(beam.DoFn):
        def __init__(self, label_map: LabelMap, options: EncodeOptions, mirrors: dict[str, str]) -> None:
            self.label_map, self.options, self.mirrors = label_map, options, mirrors

        def setup(self) -> None:
            storage.use_mirrors(self.mirrors)

        def process(self, record: ImageRecord):
            try:
                encoded = encode_record(storage.fetched([record])[0], self.label_map, self.options)
            except OdprepError as error:  # the driver prints this message alone, as locally
                raise RuntimeError(_OPEN + error.message + _CLOSE) from None
            for event in encoded.events:
                Metrics.counter(NAMESPACE, event.kind).inc()
                logging.warning("%s", event.message)
            if encoded.skipped:
                return
            count = {"images": 1, "negatives": int(not encoded.labels and not encoded.segmentation),
                     "objects": len(encoded.labels), "image_bytes": encoded.image_bytes,
                     "output_bytes": encoded.record_size, "segmentation_masks": int(encoded.segmentation),
                     "has_masks": int(encoded.has_masks), "resized": int(bool(encoded.resized_from)),
                     "resized_bytes_before": encoded.resized_from,
                     "resized_bytes_after": encoded.image_bytes if encoded.resized_from else 0}
            for name, value in count.items():
                if value:
                    Metrics.counter(NAMESPACE, name).inc(value)
            for label in encoded.labels:
                Metrics.counter(NAMESPACE, f"class:{label}").inc()
            for label in set(encoded.labels):
                Metrics.counter(NAMESPACE, f"class_images:{label}").inc()
            yield b"".join(bytes(part) for part in encoded.parts[1:-1])  # the Example, unframed

    return EncodeExamples


def write(runner: BeamRunner, records: Iterable[ImageRecord], paths: list[Path], label_map: LabelMap,
          options: EncodeOptions, summary) -> None:
    """Run the pipeline; on success ``summary.pending`` holds (temporary, final) shard pairs.
    On failure or a signal nothing is left: the temporary shards and Beam's temp folder are
    removed.

    The pipeline runs in a child process that leads its own process group, with its stderr
    (Beam's logs, and its workers') in a log file: a signal to odprep kills that whole
    group at once, however far Beam has got, and the clean-up then runs here."""
    if not runner.local and not storage.is_url(_target(runner, paths)):
        raise OdprepError(paths[0], f"{runner.name} workers cannot write to this machine's disk",
                          "Write to a bucket: -o gs://BUCKET/PATH (and images there too)")
    records = list(records)
    if importlib.util.find_spec("apache_beam") is None:  # imported in the child: its noise goes to the log
        raise OdprepError("--runner", "Apache Beam is not installed", install_hint("beam"))
    fd, log = tempfile.mkstemp(prefix="odprep-beam-", suffix=".log")
    os.close(fd)
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    lifeline = os.pipe()  # odprep holds the write end until the pipeline is over; see _watchdog
    child = context.Process(target=_pipeline_process, daemon=False,
                            args=(send, log, lambda: _run(runner, records, paths, label_map, options),
                                  lifeline))
    parent, _, name = _target(runner, paths).rpartition("/")
    made = missing_folders(parent) if runner.local else []  # removed again if the pipeline fails
    try:
        with held():  # a signal during the fork would leave the child unknown
            child.start()
        send.close()
        os.close(lifeline[0])
        try:
            kind, value = receive.recv()
        except EOFError:
            kind, value = "failed", f"the pipeline process ended with code {child.exitcode}"
        child.join()
    except BaseException:
        with held():
            _kill_group(child)
            with contextlib.suppress(Exception):
                _remove(parent, f".{name}.{runner.token}")
            remove_empty_folders(made)
            os.unlink(log)
        raise
    finally:
        with contextlib.suppress(OSError):
            os.close(lifeline[1])  # the watchdog ends whatever of the group is left
    if kind != "ok":
        with contextlib.suppress(Exception):
            _remove(parent, f".{name}.{runner.token}")
        remove_empty_folders(made)
        if kind == "error":
            os.unlink(log)
            raise OdprepError("", value.removesuffix("."))
        system = _ERRNO.search(value)
        if system:  # a file operation failed in a worker: said as a local run says it
            error = os_error(paths[0], OSError(int(system.group(1)), system.group(2)), "write the records")
            raise OdprepError(error.source, f"{error.problem} (in the Beam workers; their log: {log})", error.fix)
        raise OdprepError("--runner", f"the Beam pipeline failed: {' '.join(value.split())[:300]}",
                          f"See the runner's log: {log}")
    if not any(value.get(event) for event in _EVENTS):
        os.unlink(log)
    _fill(summary, value, log)
    summary.pending = [(Path(t) if runner.local else t, Path(p) if runner.local else storage.url_for(p))
                       for t, p in zip(_temps(runner, paths), paths, strict=True)]


_ERRNO = re.compile(r"\[Errno (\d+)\] ([^\[\]'\n]+?)(?: \[while running|['\n]|$)")


def _watchdog(lifeline: tuple[int, int]) -> None:
    """A process in the pipeline's group that waits on a pipe whose only write end odprep
    holds. However odprep ends, even by SIGKILL, the kernel closes that end; the read then
    returns, and the watchdog kills the whole group: the runner and every SDK worker it
    started (they are grandchildren, so the parent-death signal does not reach them)."""
    os.close(lifeline[1])  # never held in the group: the read ends only with odprep
    if os.fork() != 0:
        os.close(lifeline[0])
        return
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        while os.read(lifeline[0], 4096):
            pass
    except OSError:
        pass
    os.killpg(0, signal.SIGKILL)
    os._exit(0)


def _pipeline_process(send, log: str, job, lifeline: tuple[int, int]) -> None:
    """The child: its own process group (watched by _watchdog), INT/TERM/HUP left to the
    parent, stderr to the log."""
    os.setsid()
    _watchdog(lifeline)
    worker_setup(os.getppid())
    fd = os.open(log, os.O_WRONLY | os.O_APPEND)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    try:
        send.send(("ok", job()))
    except BaseException as error:  # noqa: BLE001 - everything goes back to the parent
        found = _MARK.search(str(error))
        send.send(("error", found.group(1).strip()) if found else ("failed", f"{type(error).__name__}: {error}"))
    finally:
        os._exit(0)


def _kill_group(child) -> None:
    if child.pid is None:
        return
    for kill in (lambda: os.killpg(child.pid, signal.SIGKILL), child.kill):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            kill()
    child.join()


def _target(runner: BeamRunner, paths: list[Path]) -> str:
    output = paths[0] if len(paths) == 1 else paths[0].with_name(paths[0].name.rsplit("-", 3)[0])
    return str(output) if runner.local else storage.url_for(output)


def _temps(runner: BeamRunner, paths: list[Path]) -> list[str]:
    parent, _, name = _target(runner, paths).rpartition("/")
    prefix = f"{parent}/.{name}.{runner.token}{TEMP_SUFFIX}"
    shards = len(paths)
    return [prefix] if shards == 1 else [f"{prefix}-{i:05d}-of-{shards:05d}" for i in range(shards)]


def _run(runner: BeamRunner, records: list[ImageRecord], paths: list[Path], label_map: LabelMap,
         options: EncodeOptions) -> dict[str, int]:
    import apache_beam as beam
    from apache_beam.metrics.metric import MetricsFilter
    from apache_beam.options.pipeline_options import PipelineOptions

    temps = _temps(runner, paths)
    prefix = temps[0] if len(paths) == 1 else temps[0].rsplit("-", 3)[0]
    pipeline = beam.Pipeline(options=PipelineOptions(runner.pipeline_args()))
    _ = (pipeline
         | "Records" >> beam.Create(records, reshuffle=True)
         | "Encode" >> beam.ParDo(_encode_examples(beam)(label_map, options, storage.mirrors()))
         | "Write" >> beam.io.WriteToTFRecord(
             prefix, num_shards=len(paths), shard_name_template="" if len(paths) == 1 else "-SSSSS-of-NNNNN"))
    result = pipeline.run()
    result.wait_until_finish()
    return {c.key.metric.name: c.committed if c.committed is not None else c.attempted
            for c in result.metrics().query(MetricsFilter().with_namespace(NAMESPACE))["counters"]}


def _fill(summary, counters: dict[str, int], log: str) -> None:
    for name in _SUMS:
        value = counters.get(name, 0)
        if name == "has_masks":
            summary.has_masks = bool(value)
        else:
            setattr(summary, name, getattr(summary, name) + value)
    for name, value in counters.items():
        if name.startswith("class:"):
            summary.class_counts[name[6:]] += value
        elif name.startswith("class_images:"):
            summary.class_images[name[13:]] += value
    lists = {"skipped_image": summary.skipped_images, "skipped_object": summary.skipped_objects,
             "clipped": summary.clipped, "rounded": summary.rounded, "oriented": summary.oriented,
             "warning": summary.warnings}
    for kind in _EVENTS:
        if counters.get(kind):
            lists[kind].append(f"{counters[kind]} counted by the Beam workers (messages: {log})")


def _remove(parent: str, stem: str) -> None:
    """Remove temporary shards and Beam's temp folders for them."""
    if storage.is_url(parent):
        fs, base = storage.filesystem(parent)
        leftovers = [p for p in fs.ls(base, detail=False) if p.rsplit("/", 1)[-1].startswith(stem)
                     or ("beam-temp-" in p and stem in p)]
        for path in leftovers:
            with contextlib.suppress(FileNotFoundError):
                fs.rm(path, recursive=True)
        return
    import shutil

    folder = Path(parent)
    for path in folder.glob("*"):
        if path.name.startswith(stem) or (path.name.startswith("beam-temp-") and stem in path.name):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
