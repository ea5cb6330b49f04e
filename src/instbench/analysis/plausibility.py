"""Plausibility rules applied on ingest, after the schema: numbers a machine could produce.

The schema already guarantees types, positivity and finiteness. These rules catch what a
schema cannot: a result that claims more bandwidth than the machine could move, figures
that do not follow from the recorded trial times (invented or edited numbers), a failed
STREAM verification, a document stored under another type's key. Each rule raises
`InvalidResult` with a one-line reason that ends up in the quarantine `.reason` file.

The bandwidth ceiling (docs/statistics.md, "Plausibility"): a STREAM figure may not exceed
    min(threads x PER_THREAD_CEILING_GBPS, sockets x PER_SOCKET_CEILING_GBPS).
Both constants are deliberately generous (about twice the best hardware on sale), so that
a rejected result is impossible rather than merely surprising.
"""

from __future__ import annotations

import functools
import math

from instbench.errors import InvalidInstanceType, InvalidResult
from instbench.instance_types import parse_instance_type
from instbench.results.schema import (
    STREAM_BYTES_PER_ELEMENT,
    STREAM_KERNELS,
    Metadata,
    ResultDocument,
)
from instbench.storage.layout import raw_key

PER_THREAD_CEILING_GBPS = 150.0
"""One thread's STREAM bandwidth ceiling. The best single cores sustain 20-40 GB/s on
servers and ~120 GB/s on Apple M-series laptops; a thread cannot drain more than its
outstanding-miss buffers allow."""

PER_SOCKET_CEILING_GBPS = 1200.0
"""One socket's ceiling: 12 channels of DDR5-8800 MRDIMM peak at ~845 GB/s; HBM parts at
~1 TB/s. No EC2 socket reaches either in STREAM."""

RATE_TOLERANCE = 1e-6
"""Relative tolerance between a stored bandwidth and bytes / time recomputed from it."""


def bandwidth_ceiling(threads: int, sockets: int) -> float:
    """Highest STREAM bandwidth (GB/s) credible for `threads` threads on `sockets` sockets."""
    return min(threads * PER_THREAD_CEILING_GBPS, max(1, sockets) * PER_SOCKET_CEILING_GBPS)


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= RATE_TOLERANCE * max(abs(a), abs(b))


def check_stream(doc: ResultDocument) -> None:
    """STREAM's own rules: verification passed, byte counting, rates from times, ceiling."""
    stream = doc.performance_data.stream
    if stream is None:
        return
    cpu = doc.system_info.cpu
    modes = [run.thread_mode for run in stream.runs]
    if len(set(modes)) != len(modes):
        raise InvalidResult("stream: a thread mode appears twice")
    for run in stream.runs:
        where = f"stream {run.thread_mode}-threads run"
        if not run.validation_passed:
            raise InvalidResult(f"{where}: STREAM validation failed ({run.validation_detail})")
        if run.thread_mode == "single" and run.threads != 1:
            raise InvalidResult(f"{where}: single mode used {run.threads} threads")
        if run.threads > cpu.logical_cpus:
            raise InvalidResult(
                f"{where}: {run.threads} threads on a machine with {cpu.logical_cpus} CPUs"
            )
        if run.array_bytes != run.array_elements * 8:
            raise InvalidResult(f"{where}: array_bytes is not array_elements x 8")
        ceiling = bandwidth_ceiling(run.threads, cpu.sockets)
        for name in STREAM_KERNELS:
            k = run.kernels[name]  # type: ignore[index]
            expected_bytes = STREAM_BYTES_PER_ELEMENT[name] * run.array_elements
            if k.bytes_per_trial != expected_bytes:
                raise InvalidResult(
                    f"{where} {name}: bytes_per_trial {k.bytes_per_trial} is not STREAM's "
                    f"{STREAM_BYTES_PER_ELEMENT[name]} x {run.array_elements} elements"
                )
            if len(k.trial_times_s) != run.trials_counted:
                raise InvalidResult(
                    f"{where} {name}: {len(k.trial_times_s)} trial times for "
                    f"{run.trials_counted} counted trials"
                )
            if not _close(k.best_gbps, k.bytes_per_trial / k.min_time_s / 1e9):
                raise InvalidResult(
                    f"{where} {name}: best_gbps {k.best_gbps:g} does not follow from "
                    f"bytes_per_trial / min_time_s"
                )
            if not _close(k.min_time_s, min(k.trial_times_s)) or not _close(
                k.max_time_s, max(k.trial_times_s)
            ):
                raise InvalidResult(f"{where} {name}: min/max time disagree with trial times")
            if not math.isfinite(k.best_gbps) or k.best_gbps > ceiling:
                raise InvalidResult(
                    f"{where} {name}: {k.best_gbps:.1f} GB/s is above the ceiling "
                    f"{ceiling:.0f} GB/s for {run.threads} threads on {cpu.sockets} socket(s)"
                )


def check_identity(doc: ResultDocument, key: str) -> None:
    """The document belongs where it is stored, and its machine matches its type name."""
    meta = doc.metadata
    ec2 = doc.system_info.ec2
    if ec2 is not None and ec2.instance_type != meta.instance_type:
        raise InvalidResult(
            f"metadata says {meta.instance_type} but the instance reported {ec2.instance_type}"
        )
    if key.startswith("raw/"):
        candidates = {*meta.benchmark_suite, "-".join(meta.benchmark_suite)}
        expected = {_raw_key_or_none(b, meta) for b in candidates}
        if key not in expected:
            raise InvalidResult(
                f"document ({meta.instance_type}, {meta.region}, run {meta.run_id} sample "
                f"{meta.sample}, {meta.timestamp:%Y-%m-%d}) is stored under a key that does "
                "not match it"
            )
    if meta.collection_method == "aws":
        architecture = _architecture(meta.instance_type)
        if architecture != doc.system_info.architecture:
            raise InvalidResult(
                f"{meta.instance_type} is {architecture} but the machine reported "
                f"{doc.system_info.architecture}"
            )


@functools.lru_cache(maxsize=1024)
def _architecture(instance_type: str) -> str:
    """Architecture the type's name implies (cached: a dataset has few distinct types)."""
    try:
        return parse_instance_type(instance_type).architecture
    except InvalidInstanceType as exc:
        raise InvalidResult(f"not an EC2 instance type: {exc}") from exc


def _raw_key_or_none(benchmark: str, meta: Metadata) -> str | None:
    try:
        return raw_key(
            benchmark, meta.instance_type, meta.region, meta.timestamp, meta.run_id, meta.sample
        )
    except ValueError:
        return None


def check_document(doc: ResultDocument, key: str) -> None:
    """Every plausibility rule for an instbench document stored under `key`."""
    check_identity(doc, key)
    check_stream(doc)
