"""The `storage` and `network` sections of a result document (performance_data): fio on
the data volume and instance store, iperf3 throughput and round trips, each beside what
AWS advertises for the type.

Part of the result schema (`results/schema.py` assembles the document).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from instbench.results.base import Finite, NonNegFinite, PositiveFinite, ResultModel


class StorageLatency(ResultModel):
    """Completion latency (fio clat) of one job, microseconds."""

    p50: NonNegFinite | None = Field(description="Median completion latency, µs.")
    p99: NonNegFinite | None = Field(description="99th percentile completion latency, µs.")
    p99_9: NonNegFinite | None = Field(description="99.9th percentile completion latency, µs.")
    mean: NonNegFinite | None = Field(description="Mean completion latency, µs.")


class StorageJob(ResultModel):
    """One fio job on one target (or the preconditioning pass, which has no name)."""

    name: str | None = Field(
        default=None, description="randread_4k_qd1, ..., write_1m_seq; None: preconditioning."
    )
    rw: str | None = Field(default=None, description="fio rw: randread, read, randwrite, write.")
    block_size_bytes: int | None = Field(default=None, gt=0, description="Block size, bytes.")
    iodepth: int | None = Field(default=None, gt=0, description="Queue depth.")
    iops: NonNegFinite = Field(description="I/O operations per second (fio).")
    bw_mb_s: NonNegFinite = Field(description="Throughput, MB/s (10^6 bytes per second).")
    io_bytes: int = Field(ge=0, description="Bytes transferred by the job.")
    runtime_ms: int = Field(ge=0, description="fio's runtime of the job, ms.")
    clat_us: StorageLatency
    direct: bool = Field(description="fio's own job options say direct=1 (O_DIRECT).")
    ioengine: str | None = Field(description="fio I/O engine (libaio, io_uring, psync).")
    fio_job_options: dict[str, str] = Field(description="fio's JSON 'job options', verbatim.")
    started_unix: Finite = Field(description="Wall clock when the job started, Unix seconds.")
    ended_unix: Finite = Field(description="Wall clock when the job ended, Unix seconds.")
    area_bytes: int | None = Field(
        default=None, ge=0, description="Preconditioning: bytes of the test area."
    )
    ratio_to_limit: NonNegFinite | None = Field(
        default=None,
        description="Measured over the advertised limit: IOPS for 4 KiB jobs, MB/s for "
        "1 MiB jobs; None when no limit is advertised.",
    )


class StorageLimits(ResultModel):
    """What AWS advertises for a target (None: not advertised)."""

    iops: NonNegFinite | None = Field(
        description="Ceiling: min(volume IOPS, the type's EBS-optimized maximum IOPS)."
    )
    throughput_mb_s: NonNegFinite | None = Field(
        description="Ceiling, MB/s: min(volume throughput, the type's EBS maximum)."
    )
    baseline_iops: NonNegFinite | None = Field(description="The type's EBS baseline IOPS.")
    baseline_throughput_mb_s: NonNegFinite | None = Field(
        description="The type's EBS baseline throughput, MB/s."
    )


class StorageBurst(ResultModel):
    """EBS burst and baseline: one long sequential write sampled per interval (fio bw log)."""

    duration_s: int = Field(ge=1, description="Seconds of the run (storage.burst_s).")
    interval_s: PositiveFinite = Field(description="Sampling interval of the series, s.")
    rw: str = Field(description="fio rw of the run (write).")
    block_size_bytes: int = Field(gt=0, description="Block size, bytes.")
    iodepth: int = Field(gt=0, description="Queue depth.")
    mean_mb_s: NonNegFinite = Field(description="fio's mean over the whole run, MB/s.")
    direct: bool = Field(description="fio's own job options say direct=1.")
    started_unix: Finite = Field(description="Wall clock when the run started, Unix s.")
    ended_unix: Finite = Field(description="Wall clock when the run ended, Unix s.")
    series_mb_s: list[list[NonNegFinite]] = Field(
        description="[seconds since start (end of interval), MB/s] per interval."
    )
    samples: int = Field(ge=1, description="Intervals in the series.")
    burst_mb_s: NonNegFinite = Field(description="Median of the first tenth (>= 2), MB/s.")
    sustained_mb_s: NonNegFinite = Field(description="Median of the last quarter (>= 2), MB/s.")
    fell: bool = Field(description="True when the sustained rate is below 80 % of the burst.")
    seconds_until_fall: NonNegFinite | None = Field(
        description="When the last interval at or above the midpoint of burst and sustained "
        "ended; null when it did not fall within duration_s."
    )
    io_seconds_before: NonNegFinite | None = Field(
        default=None,
        description="Seconds of I/O on the target before this run (preconditioning and the "
        "jobs), which spent part of the burst allowance already.",
    )
    maximum_mb_s: NonNegFinite | None = Field(
        default=None, description="Advertised ceiling, MB/s: min(volume, type's EBS maximum)."
    )
    baseline_mb_s: NonNegFinite | None = Field(
        default=None, description="The type's advertised EBS baseline throughput, MB/s."
    )
    burst_ratio_to_maximum: NonNegFinite | None = Field(
        default=None, description="burst_mb_s / maximum_mb_s."
    )
    sustained_ratio_to_baseline: NonNegFinite | None = Field(
        default=None, description="sustained_mb_s / baseline_mb_s."
    )
    publishable: bool = Field(
        default=False,
        description="False for --quick runs and file stand-ins off EC2: the path ran, but the "
        "figures are no burst measurement and are never published as one.",
    )


class StorageTarget(ResultModel):
    """One device or file measured (or skipped, with the reason)."""

    path: str = Field(description="Device or file path on the machine.")
    medium: Literal["block-device", "file"] = Field(description="A whole disk or a file.")
    role: str = Field(description="ebs, instance-store, unknown (devices) or file.")
    stands_in_for: str | None = Field(
        default=None, description="Off EC2: the disk role this file stands in for."
    )
    model: str | None = Field(default=None, description="NVMe model string.")
    volume_id: str | None = Field(default=None, description="EBS volume id (NVMe serial).")
    device_size_bytes: int | None = Field(default=None, ge=0, description="Disk size, bytes.")
    area_bytes: int | None = Field(default=None, ge=0, description="Test area, bytes.")
    precondition: StorageJob | None = Field(description="The write pass before any read.")
    jobs: list[StorageJob] = Field(description="The measured jobs, in the order they ran.")
    skipped: str | None = Field(description="Why jobs were not run; None when they were.")
    limits: StorageLimits | None = Field(
        default=None, description="Advertised ceilings the ratios are taken against."
    )
    burst: StorageBurst | None = Field(
        default=None, description="EBS burst and baseline (data_version 1.2.0); None: not run."
    )
    burst_skipped: str | None = Field(
        default=None, description="Why the burst run failed, when it did."
    )


class StorageRefusal(ResultModel):
    """A device the agent would not write to, and why."""

    path: str = Field(description="The device or file that was not written to.")
    reason: str = Field(description="Why (mounted, a filesystem signature, root volume...).")


class StorageResult(ResultModel):
    """The `storage` benchmark: fio with O_DIRECT on the data volume and instance store."""

    version: str = Field(description="Version of the storage benchmark.")
    fio_version: str = Field(description="fio --version.")
    ioengine: str = Field(description="fio I/O engine used for every job.")
    direct: bool = Field(description="Every job ran with direct=1 (from fio's JSON).")
    size_bytes: int = Field(gt=0, description="Requested test area per target, bytes.")
    runtime_s: int = Field(gt=0, description="Seconds per job.")
    burst_s: int | None = Field(
        default=None, ge=0, description="Seconds of the EBS burst run asked for (0: none)."
    )
    advertised: dict[str, NonNegFinite] = Field(
        description="What the controller passed: volume_iops, volume_throughput_mibps, "
        "ebs_baseline/maximum_iops, ebs_baseline/maximum_mbps (MB/s), instance_store_*."
    )
    targets: list[StorageTarget] = Field(description="Every device or file measured.")
    refused: list[StorageRefusal] = Field(description="Devices the agent would not write.")


class NetworkThroughput(ResultModel):
    """One iperf3 TCP test between the pair."""

    name: Literal["tcp_1flow", "tcp_1flow_reverse", "tcp_nflows", "tcp_nflows_reverse"] = Field(
        description="Which test: one flow or N flows, client-to-server or reverse (-R)."
    )
    flows: int = Field(ge=1, description="Parallel TCP flows (iperf3 -P).")
    direction: Literal["client-to-server", "server-to-client"] = Field(
        description="Who sent: the client, or the server (iperf3 -R)."
    )
    duration_s: int = Field(ge=1, description="Seconds of the test (iperf3 -t).")
    gbps: NonNegFinite = Field(description="What the receiver got, Gbit/s (10^9 bits/s).")
    sender_gbps: NonNegFinite = Field(description="What the sender sent, Gbit/s.")
    retransmits: int | None = Field(
        default=None, ge=0, description="TCP retransmissions the sender saw (Linux only)."
    )


class NetworkBurst(ResultModel):
    """A long N-flow run sampled per interval: how an 'Up to' type spends its credits."""

    duration_s: int = Field(ge=1, description="Seconds of the run.")
    interval_s: PositiveFinite = Field(description="Sampling interval, seconds.")
    flows: int = Field(ge=1, description="Parallel TCP flows.")
    samples_gbps: list[NonNegFinite] = Field(description="Received rate per interval, Gbit/s.")
    burst_gbps: NonNegFinite = Field(description="Median rate of the first tenth (>= 2 samples).")
    sustained_gbps: NonNegFinite = Field(
        description="Median rate of the last quarter (>= 2 samples)."
    )
    fell: bool = Field(description="True when the sustained rate is below 80 % of the burst.")
    seconds_until_fall: NonNegFinite | None = Field(
        default=None,
        description="Start of the first interval from which the rate stayed below the "
        "midpoint of burst and sustained; null when it did not fall.",
    )


class NetworkLatency(ResultModel):
    """TCP request/response round trips of 1 byte on one connection (netlat kernel)."""

    message_bytes: Literal[1] = Field(description="Bytes per request and per response.")
    round_trips: int = Field(ge=1, description="Timed round trips (after a warm-up).")
    median_us: NonNegFinite = Field(description="Median round trip, microseconds.")
    p99_us: NonNegFinite = Field(description="99th percentile (nearest rank), microseconds.")
    p999_us: NonNegFinite = Field(description="99.9th percentile (nearest rank), microseconds.")
    min_us: NonNegFinite = Field(description="Fastest round trip, microseconds.")
    max_us: NonNegFinite = Field(description="Slowest round trip, microseconds.")
    mean_us: NonNegFinite = Field(description="Mean round trip, microseconds.")


class NetworkAdvertised(ResultModel):
    """What DescribeInstanceTypes advertises for the type, and measured/advertised."""

    network_performance: str | None = Field(
        default=None, description="NetworkInfo.NetworkPerformance, e.g. 'Up to 12.5 Gigabit'."
    )
    network_card_index: int = Field(ge=0, description="The network card the figures are of.")
    baseline_gbps: NonNegFinite | None = Field(
        default=None, description="That card's BaselineBandwidthInGbps."
    )
    peak_gbps: NonNegFinite | None = Field(
        default=None, description="That card's PeakBandwidthInGbps."
    )
    up_to: bool = Field(description="True when NetworkPerformance starts with 'Up to'.")
    ratio_nflows_to_peak: NonNegFinite | None = Field(
        default=None, description="Best N-flow rate / peak_gbps."
    )
    ratio_sustained_to_baseline: NonNegFinite | None = Field(
        default=None,
        description="Sustained rate of the burst run (else the best N-flow rate) / baseline_gbps.",
    )


class NetworkResult(ResultModel):
    """The `network` benchmark: this machine's side of a pair (or both sides over loopback)."""

    version: str = Field(description="Version of the network benchmark.")
    source_sha256: str = Field(description="sha256 of the latency kernel's C source.")
    role: Literal["both", "server", "client"] = Field(
        description="both: server and client on this machine over 127.0.0.1 (says nothing "
        "about a network); server: served a client and measured nothing; client: measured."
    )
    peer: str | None = Field(default=None, description="The server's IPv4 (client, both).")
    loopback: bool = Field(description="True when the traffic never left this machine.")
    port: int = Field(ge=1, le=65535, description="iperf3's port (the latency kernel: +1).")
    iperf3_version: str = Field(description="First line of `iperf3 --version`.")
    flows: int | None = Field(default=None, ge=1, description="N of the N-flow tests.")
    throughput: list[NetworkThroughput] = Field(
        default_factory=list, description="The four iperf3 tests (empty on a server)."
    )
    burst: NetworkBurst | None = Field(
        default=None, description="Burst-and-baseline run, when one was asked for."
    )
    latency: NetworkLatency | None = Field(default=None, description="Round-trip latency.")
    advertised: NetworkAdvertised | None = Field(
        default=None, description="Advertised figures, when the controller gave them."
    )
    served_s: NonNegFinite | None = Field(
        default=None, description="Server side: seconds it served until the client finished."
    )
