"""Evaluations that flatter: the same picture on both sides of a split, as the same bytes,
as a re-encoded, resized, cropped or mirrored copy (perceptual hash), or as copies that
their file names say come from one source (Roboflow's NAME_ext.rf.HASH.ext)."""

from __future__ import annotations

import numpy as np

from odprep.checks.facts import ConfigFacts
from odprep.datasummary import DataSummary, SplitData, hamming
from odprep.findings import Report

NEAR = 10  # of 64 bits: a re-encode, resize or small crop stays within; different pictures are ~32 apart


def near_duplicates(first: SplitData, second: SplitData, limit: int = 1000) -> list[tuple[int, int, int]]:
    """(image in first, image in second, bits apart) for pictures that look alike, mirrored
    copies included; at most ``limit`` pairs."""
    if not len(first.hashes) or not len(second.hashes):
        return []
    hashes = np.frombuffer(first.hashes, dtype=np.uint64)
    mirrored = np.frombuffer(first.mirrored, dtype=np.uint64)
    valid = np.frombuffer(first.hashed, dtype=np.uint8).astype(bool)  # a flat picture hashes to 0
    pairs = []
    for j, value in enumerate(second.hashes):
        if not second.hashed[j]:
            continue
        distance = np.minimum(hamming(hashes, value), hamming(mirrored, value))
        for i in np.flatnonzero(valid & (distance <= NEAR)):
            pairs.append((int(i), j, int(distance[i])))
            if len(pairs) >= limit:
                return pairs
    return pairs


def findings(facts: ConfigFacts, summary: DataSummary, report: Report) -> None:
    train, evaluation = summary.splits.get("train"), summary.splits.get("eval")
    if train is None or evaluation is None or not train.images or not evaluation.images:
        return
    exact = set(train.sha256) & set(evaluation.sha256)
    if exact:
        digest = next(iter(exact))
        report.warning("train-eval-overlap", f"{facts.path}: {len(exact)} image(s) are in both the train and "
                       f"eval records (same image/key/sha256; e.g. {train.names[train.sha256[digest]]} and "
                       f"{evaluation.names[evaluation.sha256[digest]]})",
                       "Split by image (odprep --split) so evaluation is on unseen images")
    groups: dict[str, int] = {}
    for image in range(train.images):
        groups.setdefault(train.group_of(image), image)
    shared = [(groups[g], j) for j in range(evaluation.images) if (g := evaluation.group_of(j)) in groups
              and train.filenames[groups[g]] != evaluation.filenames[j]]
    if shared:
        i, j = shared[0]
        report.warning("train-eval-same-source", f"{facts.path}: {len(shared)} eval image(s) share a source "
                       f"with train images by their file names (Roboflow's copies of one photo; e.g. "
                       f"{train.names[i]} and {evaluation.names[j]})",
                       "Split by source (odprep --split keeps such copies together)")
    if summary.hashed:
        same_bytes = {evaluation.sha256[digest] for digest in exact}  # reported above already
        near = [(i, j, d) for i, j, d in near_duplicates(train, evaluation) if j not in same_bytes]
        if near:
            i, j, d = near[0]
            report.warning("train-eval-near-duplicate", f"{facts.path}: {len(near)} eval image(s) look like "
                           f"train images (perceptual hash within {NEAR} of 64 bits: a re-encoded, resized, "
                           f"cropped or mirrored copy; e.g. {train.names[i]} and {evaluation.names[j]}, "
                           f"{d} bits apart)", "Split keeping look-alikes together (odprep --split ... "
                           "--group-near-duplicates, or --group-by REGEX for a source in the file names)")
