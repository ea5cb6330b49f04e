"""Storage: fio on the data volume and every instance-store disk, honestly.

What makes a storage figure honest, and what this module does about it:

* The page cache hides the device: every job runs with ``--direct=1`` (O_DIRECT), and the
  result records, per job, what fio itself says in its JSON ``job options``, so a run
  where direct I/O was not in effect is visible (`direct: false`), never silently good.
* A never-written NVMe block or a fresh EBS volume reads back as zeros at impossible
  speed: each target's test area is written once, sequentially in 1 MiB blocks, before
  any read job (preconditioning). If that pass wrote less than the whole area, the
  target's read jobs are not run and the target reports why.
* Someone else's data: the agent writes only to files it created itself (O_EXCL, deleted
  afterwards) and to whole disks that `blockdev.check_device` clears: not the root
  volume, not mounted, no swap, no partitions or holders, no filesystem signature.
  Refusals are recorded with their reason.

Jobs, in this order per target: precondition; 4 KiB random read at queue depth 1 and 32;
1 MiB sequential read (QD 8); 4 KiB random write QD 1 and 32; 1 MiB sequential write.
Each reports IOPS, MB/s (10^6 bytes/s) and completion latency p50/p99/p99.9 (µs).

Burst and baseline (EBS only, when `burst_s` > 0): types whose EBS-optimized baseline
throughput is below their maximum run at the maximum only while their burst allowance
lasts (AWS documents 30 minutes at least once every 24 hours), then fall to the baseline.
After the jobs above, one sequential 1 MiB write runs for `burst_s` seconds over the
test area with fio's bandwidth log sampled every `interval`; `analyse_burst` reads the
series: the burst rate, the sustained rate after it fell, and when it fell (or that it
did not within the duration). The jobs before it spent part of the allowance; the
section records how many seconds of I/O ran on the target before it
(`io_seconds_before`). The default (`default_burst_s`, used by the controller for the
cost too): `BURST_S` on EC2 for a type that bursts, 0 otherwise; --quick runs it for a
few seconds so the path is exercised, marked `publishable: false` (never a burst figure).

Targets: on EC2 (`collection_method` aws) every data disk beside the root volume (the
gp3 data volume attached at launch and the instance-store NVMe disks); elsewhere (local,
sandbox) one file per expected disk in a temporary directory, labelled as a stand-in.
The controller passes what AWS advertises (`advertised`: the volume's provisioned IOPS
and throughput, the type's EBS-optimized baseline/maximum, instance-store disks), and
each target records measured/limit ratios beside it.

Stdlib-only, Python 3.9 (shipped inside agent.pyz).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from instbench.benchmarks import blockdev
from instbench.benchmarks.errors import BenchmarkError, BenchmarkInputError, ToolchainMissing

VERSION = "1.1.0"
MIB = 1024**2

DEFAULT_SIZE_MIB = 4096
QUICK_SIZE_MIB = 64
MIN_SIZE_MIB = 16
MAX_SIZE_MIB = 1024 * 1024
DEFAULT_RUNTIME_S = 30
QUICK_RUNTIME_S = 1
MAX_RUNTIME_S = 3600
SEQ_BLOCK = MIB
SEQ_DEPTH = 8
BURST_S = 2400
"""Default burst run on a type that bursts: AWS's documented 30 minutes of burst per 24 h,
plus 10 minutes to measure the sustained rate after the fall."""
QUICK_BURST_S = 3
"""--quick runs the burst job for seconds, so that its path is exercised (not published)."""
MAX_BURST_S = 4 * 3600
BURST_INTERVAL_S = 1.0
QUICK_BURST_INTERVAL_S = 0.5
MIN_BURST_SAMPLES = 4
FELL_RATIO = 0.8
"""A burst run 'fell' when its sustained rate is below this share of its burst rate."""
MAX_STANDINS = 4
"""Most stand-in files per role off EC2 (a type with 8 instance-store disks gets 4)."""

JOBS: Tuple[Tuple[str, str, int, int], ...] = (
    ("randread_4k_qd1", "randread", 4096, 1),
    ("randread_4k_qd32", "randread", 4096, 32),
    ("read_1m_seq", "read", SEQ_BLOCK, SEQ_DEPTH),
    ("randwrite_4k_qd1", "randwrite", 4096, 1),
    ("randwrite_4k_qd32", "randwrite", 4096, 32),
    ("write_1m_seq", "write", SEQ_BLOCK, SEQ_DEPTH),
)
"""(name, fio rw, block size, queue depth), run in this order after preconditioning."""

ADVERTISED_KEYS = (
    "volume_size_gib",
    "volume_iops",
    "volume_throughput_mibps",
    "ebs_baseline_iops",
    "ebs_maximum_iops",
    "ebs_baseline_mbps",
    "ebs_maximum_mbps",
    "instance_store_disks",
    "instance_store_disk_gb",
    "instance_store_total_gb",
)
"""What the controller may tell the agent about the type and volume (`advertised`).
Throughputs: the volume's in MiB/s (as gp3 is provisioned), EBS-optimized in MB/s (as
DescribeInstanceTypes reports BaselineThroughputInMBps / MaximumThroughputInMBps)."""

_ADVERTISED = re.compile(r"^[a-z_]{1,40}=[0-9]{1,12}(\.[0-9]{1,6})?$")
_ENGINES = ("libaio", "io_uring", "psync")


@dataclass
class StorageOptions:
    """What the user asked for; None means "choose"."""

    quick: bool = False
    size_mib: Optional[int] = None
    runtime_s: Optional[int] = None
    targets: str = "auto"
    """'auto', 'file', or comma-separated block device paths."""
    directory: Optional[str] = None
    advertised: Optional[str] = None
    collection_method: str = "local"
    burst_s: Optional[int] = None

    def size_bytes(self) -> int:
        mib = self.size_mib or (QUICK_SIZE_MIB if self.quick else DEFAULT_SIZE_MIB)
        return int(mib) * MIB

    def runtime(self) -> int:
        return int(self.runtime_s or (QUICK_RUNTIME_S if self.quick else DEFAULT_RUNTIME_S))

    def burst(self, advertised: Mapping[str, float]) -> int:
        if self.burst_s is not None:
            return int(self.burst_s)
        return default_burst_s(advertised, self.quick, self.collection_method)


def ebs_bursts(advertised: Mapping[str, float]) -> bool:
    """True when the type's EBS-optimized baseline throughput is below its maximum."""
    base = advertised.get("ebs_baseline_mbps")
    peak = advertised.get("ebs_maximum_mbps")
    return base is not None and peak is not None and 0 < base < peak


def default_burst_s(advertised: Mapping[str, float], quick: bool, collection_method: str) -> int:
    """Seconds of the burst job when `burst_s` is not given (the controller prices the same).

    --quick: QUICK_BURST_S wherever an EBS target (or its stand-in) is measured, so the path
    runs in tests; on EC2 for a type whose EBS bandwidth bursts: BURST_S; else 0 (a file
    off EC2 or a type that does not burst has no burst to measure).
    """
    if quick:
        return QUICK_BURST_S
    if collection_method == "aws" and ebs_bursts(advertised):
        return BURST_S
    return 0


def parse_advertised(text: Optional[str]) -> Dict[str, float]:
    """'volume_iops=3000,ebs_maximum_mbps=1250' -> dict; BenchmarkInputError otherwise."""
    if not text:
        return {}
    out: Dict[str, float] = {}
    for item in text.split(","):
        if not _ADVERTISED.match(item):
            raise BenchmarkInputError(f"storage: bad advertised item {item!r}: use key=number")
        key, value = item.split("=", 1)
        if key not in ADVERTISED_KEYS:
            raise BenchmarkInputError(
                f"storage: unknown advertised key {key!r}; known: {', '.join(ADVERTISED_KEYS)}"
            )
        out[key] = float(value)
    return out


# ------------------------------------------------------------------------ fio


def fio_version(fio: str) -> str:
    """'fio-3.33' as fio prints it."""
    proc = subprocess.run([fio, "--version"], capture_output=True, text=True, timeout=30)
    return proc.stdout.strip() or proc.stderr.strip()


def choose_engine(fio: str) -> str:
    """libaio where fio has it (queue depth needs an async engine), else io_uring, else psync."""
    proc = subprocess.run([fio, "--enghelp"], capture_output=True, text=True, timeout=30)
    have = {line.strip() for line in proc.stdout.splitlines()}
    for engine in _ENGINES:
        if engine in have:
            return engine
    return "psync"


def fio_command(
    fio: str,
    name: str,
    path: str,
    rw: str,
    block: int,
    depth: int,
    size: int,
    engine: str,
    runtime_s: Optional[int],
) -> List[str]:
    """One fio job on `path`, JSON on stdout. runtime_s None: run once over the area."""
    cmd = [
        fio,
        f"--name={name}",
        f"--filename={path}",
        f"--rw={rw}",
        f"--bs={block}",
        f"--iodepth={depth}",
        f"--ioengine={engine}",
        "--direct=1",
        f"--size={size}",
        "--offset=0",
        "--numjobs=1",
        "--randrepeat=0",
        "--norandommap=1",
        "--percentile_list=50:99:99.9",
        "--output-format=json",
    ]
    if runtime_s is not None:
        cmd += [f"--runtime={runtime_s}", "--time_based=1"]
    else:
        cmd += ["--end_fsync=1"]
    return cmd


def _percentile(clat: Mapping[str, Any], which: str) -> Optional[float]:
    pct = clat.get("percentile") or {}
    for key, value in pct.items():
        if abs(float(key) - float(which)) < 1e-9:
            return float(value) / 1000.0
    return None


def parse_job(doc: Mapping[str, Any], rw: str) -> Dict[str, Any]:
    """The figures of the one job in fio's JSON `doc` (rw says which direction counts)."""
    jobs = doc.get("jobs") or []
    if len(jobs) != 1:
        raise BenchmarkError(f"fio reported {len(jobs)} jobs, expected 1")
    job = jobs[0]
    if int(job.get("error", 0)):
        raise BenchmarkError(f"fio job {job.get('jobname')} failed with error {job['error']}")
    options = job.get("job options") or {}
    side = job["write" if "write" in rw else "read"]
    clat = side.get("clat_ns") or {}
    return {
        "iops": float(side.get("iops", 0.0)),
        "bw_mb_s": float(side.get("bw_bytes", 0)) / 1e6,
        "io_bytes": int(side.get("io_bytes", 0)),
        "runtime_ms": int(side.get("runtime", 0)),
        "clat_us": {
            "p50": _percentile(clat, "50"),
            "p99": _percentile(clat, "99"),
            "p99_9": _percentile(clat, "99.9"),
            "mean": float(clat["mean"]) / 1000.0 if "mean" in clat else None,
        },
        "direct": str(options.get("direct", "0")) == "1",
        "ioengine": options.get("ioengine"),
        "fio_job_options": {str(k): str(v) for k, v in sorted(options.items())},
    }


def parse_bw_log(text: str) -> List[Tuple[float, float]]:
    """fio's bandwidth log ('msec, KiB/s, ddir, bs, offset') -> [(seconds, MB/s)], in
    time order; lines that do not parse are skipped (fio writes nothing else there)."""
    out: List[Tuple[float, float]] = []
    for line in text.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) < 2:
            continue
        try:
            msec = float(parts[0])
            kib_s = float(parts[1])
        except ValueError:
            continue
        out.append((msec / 1000.0, kib_s * 1024 / 1e6))
    out.sort()
    return out


def _median(values: List[float]) -> float:
    ordered = sorted(values)
    n = len(ordered)
    mid = n // 2
    return ordered[mid] if n % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def analyse_burst(samples: List[Tuple[float, float]]) -> Dict[str, Any]:
    """Read a throughput series [(end of interval s, MB/s)] of one long run.

    Burst rate: median of the first tenth (at least 2 samples); sustained rate: median of
    the last quarter (at least 2). It `fell` when the sustained rate is below FELL_RATIO
    of the burst rate; then `seconds_until_fall` is when the first run of k consecutive
    intervals below the midpoint of the two began (k = max(3, n/20), so one slow interval
    during the burst or one fast one after the fall moves neither the time nor, as
    medians, the rates), else null: it did not fall within the run.
    """
    if len(samples) < MIN_BURST_SAMPLES:
        raise BenchmarkError(
            f"burst run gave {len(samples)} interval(s); {MIN_BURST_SAMPLES} are needed"
        )
    rates = [r for _, r in samples]
    n = len(rates)
    burst = _median(rates[: max(2, n // 10)])
    sustained = _median(rates[-max(2, n // 4) :])
    fell = burst > 0 and sustained < FELL_RATIO * burst
    until: Optional[float] = None
    if fell:
        threshold = (burst + sustained) / 2
        k = max(3, n // 20)
        below = [r < threshold for r in rates]
        start = next((i for i in range(n - k + 1) if all(below[i : i + k])), None)
        if start is None:  # the fall came within the last k intervals
            start = n
            while start > 0 and below[start - 1]:
                start -= 1
        until = round(samples[start - 1][0], 3) if start > 0 else 0.0
    return {
        "burst_mb_s": round(burst, 3),
        "sustained_mb_s": round(sustained, 3),
        "fell": fell,
        "seconds_until_fall": until,
        "samples": len(samples),
    }


def run_fio(cmd: List[str], timeout: float) -> Dict[str, Any]:
    """Run one fio job and return its JSON (fio may print warnings before it)."""
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    out = proc.stdout
    start = out.find("{")
    if proc.returncode != 0 or start < 0:
        tail = (proc.stderr or out).strip().splitlines()[-1:] or ["no output"]
        raise BenchmarkError(f"fio exited {proc.returncode}: {tail[0]}")
    try:
        doc = json.loads(out[start:])
    except ValueError as exc:
        raise BenchmarkError(f"fio printed JSON that does not parse: {exc}") from None
    if not isinstance(doc, dict):
        raise BenchmarkError("fio JSON is not an object")
    return doc


# -------------------------------------------------------------------- targets


@dataclass
class Target:
    """One place to measure."""

    path: str
    medium: str
    """'block-device' or 'file'."""
    role: str
    """'ebs', 'instance-store', 'unknown' (device) or 'file'."""
    stands_in_for: Optional[str] = None
    """Off EC2: the role this file stands in for ('ebs', 'instance-store')."""
    model: Optional[str] = None
    volume_id: Optional[str] = None
    device_size_bytes: Optional[int] = None
    created: bool = False


def _new_file(directory: str, label: str) -> str:
    fd, path = tempfile.mkstemp(prefix=f"instbench-fio-{label}-", dir=directory)
    os.close(fd)
    return path


def plan_targets(
    opts: StorageOptions, advertised: Mapping[str, float], log: Callable[[str], None]
) -> Tuple[List[Target], List[Dict[str, str]]]:
    """The targets to measure and the devices refused (with reasons)."""
    refused: List[Dict[str, str]] = []
    targets: List[Target] = []
    spec = (opts.targets or "auto").strip()
    directory = opts.directory or tempfile.gettempdir()
    if spec == "auto" and opts.collection_method == "aws":
        for dev in blockdev.data_devices():
            verdict = blockdev.check_device(dev.path)
            if not verdict.allowed:
                log(f"storage: refusing {dev.path}: {verdict.reason}")
                refused.append({"path": dev.path, "reason": verdict.reason})
                continue
            targets.append(
                Target(
                    dev.path,
                    "block-device",
                    dev.kind,
                    model=dev.model,
                    volume_id=dev.serial if dev.kind == "ebs" else None,
                    device_size_bytes=dev.size_bytes,
                )
            )
        return targets, refused
    if spec in ("auto", "file"):
        if not os.path.isdir(directory):
            raise BenchmarkInputError(f"storage: directory {directory} does not exist")
        roles: List[str] = []
        if spec == "auto" and any(k.startswith(("volume_", "ebs_")) for k in advertised):
            roles.append("ebs")
        disks = int(advertised.get("instance_store_disks", 0)) if spec == "auto" else 0
        roles += ["instance-store"] * min(disks, MAX_STANDINS)
        if not roles:
            targets.append(Target(_new_file(directory, "file"), "file", "file", created=True))
        for role in roles:
            path = _new_file(directory, role)
            targets.append(Target(path, "file", "file", stands_in_for=role, created=True))
        return targets, refused
    for raw in spec.split(","):
        path = raw.strip()
        if not path.startswith("/"):
            raise BenchmarkInputError(
                f"storage: target {path!r} must be an absolute device path, 'auto' or 'file'"
            )
        if os.path.isfile(path):
            reason = f"{path} is an existing file; the agent writes only files it creates"
            refused.append({"path": path, "reason": reason})
            log(f"storage: refusing {reason}")
            continue
        verdict = blockdev.check_device(path)
        if not verdict.allowed:
            log(f"storage: refusing {path}: {verdict.reason}")
            refused.append({"path": path, "reason": verdict.reason})
            continue
        dev = blockdev.device_facts(path)
        targets.append(
            Target(
                path,
                "block-device",
                dev.kind,
                model=dev.model,
                volume_id=dev.serial if dev.kind == "ebs" else None,
                device_size_bytes=dev.size_bytes,
            )
        )
    return targets, refused


# --------------------------------------------------------------------- limits


def limits_for(role: str, advertised: Mapping[str, float]) -> Dict[str, Any]:
    """The advertised IOPS and throughput (MB/s) a target of `role` cannot exceed.

    For the EBS data volume: the smaller of what the volume is provisioned for and the
    type's EBS-optimized maximum (the burst ceiling), plus the type's baseline. Instance
    store has no figure in the API beyond size and count: its limits stay null.
    """
    out: Dict[str, Any] = {"iops": None, "throughput_mb_s": None, "baseline_iops": None}
    out["baseline_throughput_mb_s"] = None
    if role != "ebs":
        return out
    iops = [advertised[k] for k in ("volume_iops", "ebs_maximum_iops") if k in advertised]
    mbs = []
    if "volume_throughput_mibps" in advertised:
        mbs.append(advertised["volume_throughput_mibps"] * MIB / 1e6)
    if "ebs_maximum_mbps" in advertised:
        mbs.append(advertised["ebs_maximum_mbps"])
    out["iops"] = min(iops) if iops else None
    out["throughput_mb_s"] = min(mbs) if mbs else None
    out["baseline_iops"] = advertised.get("ebs_baseline_iops")
    out["baseline_throughput_mb_s"] = advertised.get("ebs_baseline_mbps")
    return out


def _ratio(value: float, limit: Optional[float]) -> Optional[float]:
    return value / limit if limit else None


# ----------------------------------------------------------------------- run


def measure_burst(
    fio: str,
    engine: str,
    path: str,
    size: int,
    burst_s: int,
    interval_s: float,
    log: Callable[[str], None],
) -> Dict[str, Any]:
    """One sequential 1 MiB write for `burst_s` s with fio's bandwidth log every
    `interval_s`; the series analysed (analyse_burst) plus fio's own totals."""
    log_dir = tempfile.mkdtemp(prefix="instbench-fio-bwlog-")
    try:
        prefix = os.path.join(log_dir, "burst")
        cmd = fio_command(fio, "burst", path, "write", SEQ_BLOCK, SEQ_DEPTH, size, engine, burst_s)
        cmd += [f"--write_bw_log={prefix}", f"--log_avg_msec={int(interval_s * 1000)}"]
        log(f"storage: burst and baseline on {path}: sequential 1 MiB writes for {burst_s} s")
        started = time.time()
        job = parse_job(run_fio(cmd, timeout=burst_s + 600.0), "write")
        ended = time.time()
        text = ""
        for name in sorted(os.listdir(log_dir)):
            if name.startswith("burst_bw") and name.endswith(".log"):
                with open(os.path.join(log_dir, name), encoding="utf-8") as fh:
                    text += fh.read()
    finally:
        shutil.rmtree(log_dir, ignore_errors=True)
    samples = parse_bw_log(text)
    out: Dict[str, Any] = {
        "duration_s": burst_s,
        "interval_s": interval_s,
        "rw": "write",
        "block_size_bytes": SEQ_BLOCK,
        "iodepth": SEQ_DEPTH,
        "mean_mb_s": job["bw_mb_s"],
        "direct": job["direct"],
        "started_unix": started,
        "ended_unix": ended,
        "series_mb_s": [[round(t, 3), round(r, 3)] for t, r in samples],
    }
    out.update(analyse_burst(samples))
    log(
        f"storage: burst {out['burst_mb_s']:.1f} MB/s, sustained {out['sustained_mb_s']:.1f} "
        f"MB/s, fell: {out['fell']}"
    )
    return out


def measure_target(
    fio: str,
    engine: str,
    target: Target,
    size: int,
    runtime_s: int,
    log: Callable[[str], None],
    burst_s: int = 0,
    interval_s: float = BURST_INTERVAL_S,
) -> Dict[str, Any]:
    """Precondition `target`, run every job, then (EBS, `burst_s` > 0) the burst job."""
    if target.device_size_bytes is not None:
        size = min(size, target.device_size_bytes)
    size -= size % MIB
    if size < MIN_SIZE_MIB * MIB:
        raise BenchmarkError(f"{target.path} is smaller than {MIN_SIZE_MIB} MiB")
    timeout = max(600.0, runtime_s * 4 + 300.0)
    log(f"storage: preconditioning {target.path} ({size // MIB} MiB, sequential 1 MiB writes)")
    t0 = time.time()
    doc = run_fio(
        fio_command(
            fio, "precondition", target.path, "write", SEQ_BLOCK, SEQ_DEPTH, size, engine, None
        ),
        timeout=max(timeout, size / 1e6 + 600.0),
    )
    pre = parse_job(doc, "write")
    pre.update({"started_unix": t0, "ended_unix": time.time(), "area_bytes": size})
    section: Dict[str, Any] = {
        "path": target.path,
        "medium": target.medium,
        "role": target.role,
        "stands_in_for": target.stands_in_for,
        "model": target.model,
        "volume_id": target.volume_id,
        "device_size_bytes": target.device_size_bytes,
        "area_bytes": size,
        "precondition": pre,
        "jobs": [],
        "skipped": None,
        "burst": None,
    }
    if pre["io_bytes"] < size:
        section["skipped"] = (
            f"preconditioning wrote {pre['io_bytes']} of {size} bytes; reads of unwritten "
            "blocks would be reported, so no job was run"
        )
        return section
    for name, rw, block, depth in JOBS:
        log(f"storage: {name} on {target.path} for {runtime_s} s")
        started = time.time()
        doc = run_fio(
            fio_command(fio, name, target.path, rw, block, depth, size, engine, runtime_s),
            timeout=timeout,
        )
        job = parse_job(doc, rw)
        job.update(
            {
                "name": name,
                "rw": rw,
                "block_size_bytes": block,
                "iodepth": depth,
                "started_unix": started,
                "ended_unix": time.time(),
            }
        )
        section["jobs"].append(job)
    if burst_s > 0 and (target.stands_in_for or target.role) == "ebs":
        before = pre["runtime_ms"] / 1000.0 + sum(j["runtime_ms"] for j in section["jobs"]) / 1000
        try:
            burst = measure_burst(fio, engine, target.path, size, burst_s, interval_s, log)
        except BenchmarkError as exc:
            if isinstance(exc, BenchmarkInputError):
                raise
            log(f"storage: burst run on {target.path} failed: {exc}")
            section["burst_skipped"] = f"burst run failed: {exc}"
            return section
        burst["io_seconds_before"] = round(before, 3)
        section["burst"] = burst
    return section


def add_ratios(section: Dict[str, Any], advertised: Mapping[str, float]) -> None:
    """Advertised limits and measured/limit ratios of one target section, in place."""
    role = section["stands_in_for"] or section["role"]
    limits = limits_for(role, advertised)
    section["limits"] = limits
    for job in section["jobs"]:
        if job["block_size_bytes"] == SEQ_BLOCK:
            job["ratio_to_limit"] = _ratio(job["bw_mb_s"], limits["throughput_mb_s"])
        else:
            job["ratio_to_limit"] = _ratio(job["iops"], limits["iops"])
    burst = section.get("burst")
    if burst:
        burst["maximum_mb_s"] = limits["throughput_mb_s"]
        burst["baseline_mb_s"] = limits["baseline_throughput_mb_s"]
        burst["burst_ratio_to_maximum"] = _ratio(burst["burst_mb_s"], limits["throughput_mb_s"])
        burst["sustained_ratio_to_baseline"] = _ratio(
            burst["sustained_mb_s"], limits["baseline_throughput_mb_s"]
        )


def run_storage(
    opts: StorageOptions, log: Callable[[str], None]
) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """Measure every target; (the `performance_data.storage` section, build info)."""
    advertised = parse_advertised(opts.advertised)
    fio = shutil.which("fio")
    if fio is None:
        raise ToolchainMissing(
            "storage: fio is not installed; install it (dnf install fio / apt-get install fio)"
        )
    size = opts.size_bytes()
    runtime_s = opts.runtime()
    burst_s = opts.burst(advertised)
    interval_s = QUICK_BURST_INTERVAL_S if opts.quick else BURST_INTERVAL_S
    publishable = not opts.quick and opts.collection_method == "aws"
    version = fio_version(fio)
    engine = choose_engine(fio)
    targets, refused = plan_targets(opts, advertised, log)
    sections: List[Dict[str, Any]] = []
    try:
        for target in targets:
            if target.medium == "file":
                free = shutil.disk_usage(os.path.dirname(target.path)).free
                if free < size + 256 * MIB:
                    raise BenchmarkInputError(
                        f"storage: {size // MIB} MiB test file does not fit in "
                        f"{os.path.dirname(target.path)} ({free // MIB} MiB free); "
                        "lower size_mib or choose another directory"
                    )
            try:
                section = measure_target(
                    fio, engine, target, size, runtime_s, log, burst_s, interval_s
                )
                if section.get("burst"):
                    section["burst"]["publishable"] = publishable
            except BenchmarkError as exc:
                if isinstance(exc, BenchmarkInputError):
                    raise
                log(f"storage: {target.path} failed: {exc}")
                section = {
                    "path": target.path,
                    "medium": target.medium,
                    "role": target.role,
                    "stands_in_for": target.stands_in_for,
                    "jobs": [],
                    "precondition": None,
                    "burst": None,
                    "skipped": f"fio failed: {exc}",
                }
            add_ratios(section, advertised)
            sections.append(section)
    finally:
        for target in targets:
            if target.created:
                with contextlib.suppress(OSError):
                    os.unlink(target.path)
    if not any(s["jobs"] for s in sections):
        reasons = [r["reason"] for r in refused] + [str(s.get("skipped")) for s in sections]
        raise BenchmarkError(
            "storage: nothing measured" + (": " + "; ".join(reasons) if reasons else "")
        )
    result = {
        "version": VERSION,
        "fio_version": version,
        "ioengine": engine,
        "direct": all(j["direct"] for s in sections for j in s["jobs"]),
        "size_bytes": size,
        "runtime_s": runtime_s,
        "burst_s": burst_s,
        "advertised": {k: advertised[k] for k in ADVERTISED_KEYS if k in advertised},
        "targets": sections,
        "refused": refused,
    }
    return result, {}


__all__ = [
    "ADVERTISED_KEYS",
    "JOBS",
    "VERSION",
    "StorageOptions",
    "Target",
    "add_ratios",
    "analyse_burst",
    "default_burst_s",
    "ebs_bursts",
    "fio_command",
    "limits_for",
    "parse_advertised",
    "parse_bw_log",
    "parse_job",
    "plan_targets",
    "run_storage",
]
