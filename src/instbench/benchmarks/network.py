"""`network`: TCP throughput (iperf3) and round-trip latency (our netlat kernel) over a pair.

Two machines are needed, a server and a client; the controller starts the server first and
hands the client its address and port (`role`, `peer`, `port`). `role=both` runs the two
sides on this machine over 127.0.0.1 (`instbench run --local`, tests, the sandbox): the
loopback figures say what the kernel and the tools can move, not what a network does.

What the client measures:
- iperf3 (`-J`, version recorded): one TCP flow and N parallel flows (N from the vCPU
  count), each in both directions (`-R`: the server sends).
- burst and baseline (when `burst_s` > 0, which the controller sets for "Up to" types,
  `default_burst_s`, and prices in the plan):
  one long N-flow run sampled every `interval_s`: the burst rate at the start, when it
  fell, and the sustained rate after, since those types run far below their advertised
  figure once their network credits are spent.
- latency: 1-byte request/response round trips on one TCP connection, timed in C
  (kernels/netlat.c, built on the target like the other kernels) because Python's own
  overhead per message is of the size of what is measured; median, p99, p99.9 in µs.

Ports: `port` is iperf3's, `port + 1` the latency kernel's. The server serves until the
latency connection closes (the client runs it last), or gives up after `server_timeout_s`
so a server whose client never came is not left running.

Stdlib-only, Python 3.9.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Callable, Dict, List, Optional, Sequence, Tuple

from instbench.benchmarks import compiler as cc
from instbench.benchmarks.errors import BenchmarkError, BenchmarkInputError

KERNEL_VERSION = "1.0.0"
"""Version of the network benchmark (the netlat kernel has its own, in its output)."""
SOURCE_NAME = "netlat.c"
LOOPBACK = "127.0.0.1"
ROLES = ("both", "server", "client")
LISTEN = ("any", "loopback")
DEFAULT_PORT = 5201
"""iperf3's own default; the latency kernel listens on the next port."""
PORTS = 2
"""Consecutive ports a server listens on from `port` (iperf3, then netlat)."""

DURATION_S = 10
QUICK_DURATION_S = 1
MAX_DURATION_S = 3600
ROUND_TRIPS = 100_000
QUICK_ROUND_TRIPS = 2_000
WARMUP_SHARE = 0.05
MAX_FLOWS = 64
QUICK_BURST_S = 3
"""--quick runs the burst-and-baseline mode for seconds, so that its path is exercised."""
BURST_S = 4200
"""Default burst run of an 'Up to' type on EC2 (the controller sets it and prices it): AWS
documents that such types burst on network I/O credits 'for a limited time, typically from
5 to 60 minutes, depending on instance size'; 60 minutes to spend the credits, plus 10 to
measure the sustained rate after the fall."""
MAX_BURST_S = 4 * 3600
INTERVAL_S = 1.0
QUICK_INTERVAL_S = 0.5
PEER_WAIT_S = 300.0
"""How long a client retries while its server is not yet listening (instance boot)."""
QUICK_PEER_WAIT_S = 30.0
SERVER_GRACE_S = 600.0
"""Added to the client's expected run time for the server's default timeout."""
FELL_RATIO = 0.8
"""A burst run 'fell' when its sustained rate is below this share of its burst rate."""

_PERFORMANCE = re.compile(r"^[A-Za-z0-9 .x]{1,64}$")
PERFORMANCE_SPACE = "_"
"""How a space of NetworkPerformance travels in user data, where no value may hold one:
the controller sends 'Up_to_12.5_Gigabit', the agent reads 'Up to 12.5 Gigabit' (no
NetworkPerformance holds an underscore, so the encoding is reversible)."""
"""What DescribeInstanceTypes says in NetworkPerformance ('Up to 12.5 Gigabit', '25
Gigabit', '8 x 100 Gigabit'); nothing else is accepted from the command line."""
_RETRY = re.compile(r"connection refused|server is busy|unable to connect", re.IGNORECASE)


def _no_log(message: str) -> None:
    pass


@dataclass
class NetworkOptions:
    """Validated settings of one network run (None: chosen for the machine/mode)."""

    quick: bool = False
    role: str = "both"
    peer: Optional[str] = None
    port: Optional[int] = None
    listen: str = "any"
    duration_s: Optional[int] = None
    flows: Optional[int] = None
    round_trips: Optional[int] = None
    burst_s: Optional[int] = None
    interval_s: Optional[float] = None
    server_timeout_s: Optional[float] = None
    advertised_performance: Optional[str] = None
    advertised_baseline_gbps: Optional[float] = None
    advertised_peak_gbps: Optional[float] = None

    def validate(self) -> None:
        """BenchmarkInputError (one line) on a combination the registry cannot check."""
        if self.role not in ROLES:
            raise BenchmarkInputError(f"network: role must be one of {', '.join(ROLES)}")
        if self.listen not in LISTEN:
            raise BenchmarkInputError(f"network: listen must be one of {', '.join(LISTEN)}")
        if self.role == "client" and self.peer is None:
            raise BenchmarkInputError("network: role client needs peer (the server's IPv4)")
        if self.peer is not None:
            check_peer(self.peer)
            if self.role == "both" and self.peer != LOOPBACK:
                raise BenchmarkInputError(
                    f"network: role both runs over loopback only; peer must be {LOOPBACK}"
                )
            if self.role == "server":
                raise BenchmarkInputError("network: a server takes no peer")
        if self.port is not None and not 1024 <= self.port <= 65535 - (PORTS - 1):
            raise BenchmarkInputError(
                f"network: port must be 1024..{65535 - (PORTS - 1)} (port+1 is used too)"
            )
        if self.advertised_performance is not None:
            self.advertised_performance = self.advertised_performance.replace(
                PERFORMANCE_SPACE, " "
            )
        if self.advertised_performance is not None and not _PERFORMANCE.match(
            self.advertised_performance
        ):
            raise BenchmarkInputError(
                "network: advertised_performance must look like 'Up to 12.5 Gigabit'"
            )

    def duration(self) -> int:
        if self.duration_s is not None:
            return self.duration_s
        return QUICK_DURATION_S if self.quick else DURATION_S

    def trips(self) -> int:
        if self.round_trips is not None:
            return self.round_trips
        return QUICK_ROUND_TRIPS if self.quick else ROUND_TRIPS

    def burst(self) -> int:
        if self.burst_s is not None:
            return self.burst_s
        return QUICK_BURST_S if self.quick else 0

    def interval(self) -> float:
        if self.interval_s is not None:
            return self.interval_s
        return QUICK_INTERVAL_S if self.quick else INTERVAL_S

    def peer_wait(self) -> float:
        return QUICK_PEER_WAIT_S if self.quick else PEER_WAIT_S

    def client_seconds(self, flows: int) -> float:
        """A generous estimate of the client's run time (the server waits that long)."""
        per_test = self.duration() + 5.0
        return 4 * per_test + self.burst() + self.trips() * 0.001 + self.peer_wait()

    def server_timeout(self) -> float:
        if self.server_timeout_s is not None:
            return self.server_timeout_s
        return self.client_seconds(default_flows()) + SERVER_GRACE_S


def bursts(performance: Optional[str]) -> bool:
    """True for a type whose advertised NetworkPerformance is 'Up to ...' (it runs on
    network I/O credits above its baseline)."""
    return bool(performance) and str(performance).strip().lower().startswith("up to")


def default_burst_s(performance: Optional[str], quick: bool, collection_method: str) -> int:
    """Seconds of the burst-and-baseline run when `burst_s` is not given (the controller
    sets and prices the same): for an 'Up to' type, BURST_S on EC2 and QUICK_BURST_S with
    --quick (the path runs, the figure is never published); else 0 (a type without credits,
    or a long run off EC2, would measure nothing)."""
    if not bursts(performance):
        return 0
    if quick:
        return QUICK_BURST_S
    return BURST_S if collection_method == "aws" else 0


def check_peer(text: str) -> str:
    """`text` if it is a dotted IPv4 address (what RunInstances reports), else one line."""
    try:
        address = ipaddress.IPv4Address(text)
    except ValueError:
        raise BenchmarkInputError(
            f"network: peer must be an IPv4 address such as 10.0.1.5, got {text!r}"
        ) from None
    if str(address) != text or address.is_multicast or address.is_unspecified:
        raise BenchmarkInputError(f"network: peer {text!r} is not a unicast IPv4 address")
    return text


def usable_cpus() -> int:
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def default_flows(cpus: Optional[int] = None) -> int:
    """N of the parallel-flow tests: one per vCPU, at least 2, at most MAX_FLOWS."""
    return max(2, min(cpus if cpus is not None else usable_cpus(), MAX_FLOWS))


# ---------------------------------------------------------------------------- iperf3


def find_iperf3() -> Tuple[str, str]:
    """(path, version line) of iperf3; ToolchainMissing-like input error when absent."""
    path = shutil.which("iperf3")
    if path is None:
        raise BenchmarkInputError(
            "network: iperf3 is not installed: dnf install -y iperf3 on Amazon Linux, "
            "apt-get install -y iperf3 on Debian/Ubuntu"
        )
    proc, _ = cc.run_binary([path, "--version"], 30, "iperf3 --version")
    text = (proc.stdout or proc.stderr).strip()
    return path, text.splitlines()[0].strip() if text else "unknown"


def iperf3_command(
    path: str, peer: str, port: int, seconds: int, flows: int, reverse: bool, interval: float
) -> List[str]:
    """The client command of one test (JSON output)."""
    cmd = [path, "-c", peer, "-p", str(port), "-t", str(seconds), "-P", str(flows), "-J"]
    cmd += ["-i", f"{interval:g}"]
    if reverse:
        cmd.append("-R")
    return cmd


def parse_iperf3(text: str) -> Dict[str, Any]:
    """iperf3's JSON document; BenchmarkError with its own error line when it failed."""
    try:
        data = json.loads(text)
    except ValueError:
        raise BenchmarkError(f"iperf3 printed no JSON: {text.strip()[:200]!r}") from None
    if not isinstance(data, dict):
        raise BenchmarkError("iperf3 printed JSON that is not an object")
    if data.get("error"):
        raise BenchmarkError(f"iperf3: {data['error']}")
    try:
        data["end"]["sum_received"]["bits_per_second"]
        data["end"]["sum_sent"]["bits_per_second"]
    except (KeyError, TypeError):
        raise BenchmarkError("iperf3's JSON has no end.sum_received/sum_sent") from None
    return data


def _iperf3_json(argv: Sequence[str], timeout: float, wait_s: float) -> Dict[str, Any]:
    """Run one iperf3 client test, retrying while the server is not (yet) listening."""
    give_up = time.monotonic() + wait_s
    while True:
        proc, _ = cc.run_binary(argv, timeout, "iperf3")
        try:
            return parse_iperf3(proc.stdout or "")
        except BenchmarkError as exc:
            if _RETRY.search(str(exc)) is None or time.monotonic() > give_up:
                raise
        time.sleep(1.0)


def _gbps(bits_per_second: Any) -> float:
    return round(float(bits_per_second) / 1e9, 4)


def summarise_test(
    data: Dict[str, Any], name: str, flows: int, reverse: bool, seconds: int
) -> Dict[str, Any]:
    """One throughput entry: the receiver's rate (what arrived) and the sender's."""
    end = data["end"]
    sent = end["sum_sent"]
    return {
        "name": name,
        "flows": flows,
        "direction": "server-to-client" if reverse else "client-to-server",
        "duration_s": seconds,
        "gbps": _gbps(end["sum_received"]["bits_per_second"]),
        "sender_gbps": _gbps(sent["bits_per_second"]),
        "retransmits": sent.get("retransmits"),
    }


def interval_samples(data: Dict[str, Any]) -> List[Tuple[float, float, float]]:
    """(start s, end s, Gbps) of each interval iperf3 reported."""
    out = []
    for item in data.get("intervals") or []:
        total = item.get("sum") or {}
        if "bits_per_second" in total:
            out.append(
                (float(total["start"]), float(total["end"]), _gbps(total["bits_per_second"]))
            )
    return out


def _median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    n = len(ordered)
    mid = n // 2
    return ordered[mid] if n % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def analyse_burst(samples: Sequence[Tuple[float, float, float]]) -> Dict[str, Any]:
    """Burst rate (median of the first tenth, at least 2 samples), sustained rate (median
    of the last quarter, at least 2), and when it fell: the start of the first interval
    from which every rate stays below the midpoint of the two. `fell` is false (and the
    time null) unless the sustained rate is below FELL_RATIO of the burst rate."""
    if len(samples) < 4:
        raise BenchmarkError(f"burst run gave {len(samples)} interval(s); 4 are needed")
    rates = [s[2] for s in samples]
    head = max(2, len(rates) // 10)
    tail = max(2, len(rates) // 4)
    burst = _median(rates[:head])
    sustained = _median(rates[-tail:])
    fell = burst > 0 and sustained < FELL_RATIO * burst
    fell_at: Optional[float] = None
    if fell:
        threshold = (burst + sustained) / 2
        index = len(rates)
        while index > 0 and rates[index - 1] < threshold:
            index -= 1
        fell_at = round(samples[index][0], 3) if index < len(rates) else None
    return {
        "burst_gbps": round(burst, 4),
        "sustained_gbps": round(sustained, 4),
        "fell": fell,
        "seconds_until_fall": fell_at,
    }


# ---------------------------------------------------------------------------- servers


def _start(argv: Sequence[str], stdout: Any, stderr: IO[str]) -> "subprocess.Popen[str]":
    try:
        return subprocess.Popen(list(argv), stdout=stdout, stderr=stderr, text=True)
    except OSError as exc:
        raise BenchmarkError(f"cannot start {argv[0]}: {exc}") from None


def _stop(proc: "Optional[subprocess.Popen[str]]") -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _tail(handle: IO[str]) -> str:
    handle.seek(0)
    return cc.stderr_tail(handle.read(), 3)


class Servers:
    """The server side: the latency kernel on port+1 and `iperf3 -s` on port.

    Started by `start()` (which returns once the latency kernel listens); `wait()` returns
    once the client has closed the latency connection (its last test), or raises when
    nobody came within the timeout or a server died.
    """

    def __init__(self, netlat: Path, iperf3: str, bind: str, port: int, timeout: float):
        self.netlat = netlat
        self.iperf3 = iperf3
        self.bind = bind
        self.port = port
        self.timeout = timeout
        self.lat: Optional[subprocess.Popen[str]] = None
        self.ip: Optional[subprocess.Popen[str]] = None
        # Closed by close(); the servers' stderr, for the one-line error of a failure.
        self._lat_err = tempfile.TemporaryFile("w+")  # noqa: SIM115
        self._ip_err = tempfile.TemporaryFile("w+")  # noqa: SIM115

    def start(self) -> None:
        self.lat = _start(
            [str(self.netlat), "server", self.bind, str(self.port + 1), f"{self.timeout:g}"],
            subprocess.PIPE,
            self._lat_err,
        )
        assert self.lat.stdout is not None
        line = self.lat.stdout.readline()
        if not line.startswith("listening"):
            self.lat.wait()
            raise BenchmarkError(f"latency server did not start: {_tail(self._lat_err)}")
        self.ip = _start(
            [self.iperf3, "-s", "-B", self.bind, "-p", str(self.port)],
            subprocess.DEVNULL,
            self._ip_err,
        )

    def check_alive(self) -> None:
        """BenchmarkError when iperf3's server has died (the client's tests would hang)."""
        if self.ip is not None and self.ip.poll() is not None:
            raise BenchmarkError(
                f"iperf3 server exited with status {self.ip.returncode}: {_tail(self._ip_err)}"
            )

    def wait(self) -> float:
        """Seconds waited until the client finished; BenchmarkError when it did not."""
        assert self.lat is not None
        started = time.monotonic()
        try:
            code = self.lat.wait(timeout=self.timeout + 30)
        except subprocess.TimeoutExpired:
            raise BenchmarkError("latency server outlived its own timeout") from None
        if code == 3:
            raise BenchmarkError(f"no client came within {self.timeout:g} s")
        if code != 0:
            raise BenchmarkError(
                f"latency server exited with status {code}: {_tail(self._lat_err)}"
            )
        self.check_alive()
        return time.monotonic() - started

    def close(self) -> None:
        _stop(self.lat)
        _stop(self.ip)
        if self.lat is not None and self.lat.stdout is not None:
            self.lat.stdout.close()
        self._lat_err.close()
        self._ip_err.close()


def free_port_pair(host: str = LOOPBACK) -> int:
    """A port p such that p and p+1 are free on `host` now (role both)."""
    for _ in range(50):
        with socket.socket() as first:
            first.bind((host, 0))
            port = int(first.getsockname()[1])
            if port + 1 > 65535:
                continue
            with socket.socket() as second:
                try:
                    second.bind((host, port + 1))
                except OSError:
                    continue
        return port
    raise BenchmarkError("no two consecutive free ports on loopback")


def _release(peer: str, port: int) -> None:
    """Close a server that waits for a latency client that will not come (the client
    failed): connect to its latency port and hang up at once."""
    try:
        with socket.create_connection((peer, port + 1), timeout=5):
            pass
    except OSError:
        pass


# ---------------------------------------------------------------------------- client


def run_client(
    options: NetworkOptions,
    peer: str,
    port: int,
    iperf3: str,
    netlat: Path,
    log: Callable[[str], None],
    servers: Optional[Servers] = None,
) -> Dict[str, Any]:
    """The client's measurements against `peer` (throughput, burst, latency)."""
    seconds = options.duration()
    flows = options.flows or default_flows()
    interval = options.interval()
    wait = options.peer_wait()
    timeout = seconds + 60.0
    throughput: List[Dict[str, Any]] = []
    latency_done = False
    try:
        for name, n, reverse in (
            ("tcp_1flow", 1, False),
            ("tcp_1flow_reverse", 1, True),
            ("tcp_nflows", flows, False),
            ("tcp_nflows_reverse", flows, True),
        ):
            if servers is not None:
                servers.check_alive()
            log(f"network: iperf3 {name}: {n} flow(s), {seconds} s")
            argv = iperf3_command(iperf3, peer, port, seconds, n, reverse, interval)
            data = _iperf3_json(argv, timeout, wait)
            entry = summarise_test(data, name, n, reverse, seconds)
            log(f"network: {name}: {entry['gbps']} Gbps")
            throughput.append(entry)
            wait = 10.0  # the server is up: only a busy server is waited for from now on

        burst: Optional[Dict[str, Any]] = None
        burst_s = options.burst()
        if burst_s > 0:
            log(f"network: burst and baseline: {flows} flow(s), {burst_s} s, every {interval:g} s")
            argv = iperf3_command(iperf3, peer, port, burst_s, flows, False, interval)
            data = _iperf3_json(argv, burst_s + 60.0, wait)
            samples = interval_samples(data)
            burst = {
                "duration_s": burst_s,
                "interval_s": interval,
                "flows": flows,
                "samples_gbps": [s[2] for s in samples],
                **analyse_burst(samples),
            }
            log(
                f"network: burst {burst['burst_gbps']} Gbps, sustained "
                f"{burst['sustained_gbps']} Gbps, fell: {burst['fell']}"
            )

        trips = options.trips()
        warmup = max(1, int(trips * WARMUP_SHARE))
        log(f"network: latency: {trips} round trips of 1 byte")
        latency_done = True  # the kernel closes the server's connection, whatever happens
        proc, _ = cc.run_binary(
            [str(netlat), "client", peer, str(port + 1), str(trips), str(warmup), "30"],
            trips * 0.05 + 120.0,
            "netlat client",
        )
        if proc.returncode != 0:
            raise BenchmarkError(cc.exit_failure(proc, "netlat client"))
        try:
            latency = json.loads(proc.stdout)
        except ValueError:
            raise BenchmarkError(f"netlat printed no JSON: {proc.stdout[:200]!r}") from None
        log(
            f"network: latency median {latency['median_us']} us, p99 {latency['p99_us']} us, "
            f"p99.9 {latency['p999_us']} us"
        )
    finally:
        if not latency_done:
            _release(peer, port)
    return {
        "flows": flows,
        "throughput": throughput,
        "burst": burst,
        "latency": {
            "message_bytes": 1,
            "round_trips": latency["round_trips"],
            "median_us": latency["median_us"],
            "p99_us": latency["p99_us"],
            "p999_us": latency["p999_us"],
            "min_us": latency["min_us"],
            "max_us": latency["max_us"],
            "mean_us": latency["mean_us"],
        },
    }


def advertised(options: NetworkOptions, measured: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """What AWS advertises for the type (given by the controller) and measured/advertised:
    the best N-flow rate against the peak, and the sustained rate (or, without a burst
    run, the N-flow rate) against the baseline."""
    if (
        options.advertised_performance is None
        and options.advertised_baseline_gbps is None
        and options.advertised_peak_gbps is None
    ):
        return None
    rates = [t["gbps"] for t in measured.get("throughput", []) if t["flows"] > 1]
    best = max(rates) if rates else None
    burst = measured.get("burst")
    sustained = burst["sustained_gbps"] if burst else best
    peak = options.advertised_peak_gbps
    baseline = options.advertised_baseline_gbps

    def ratio(value: Optional[float], reference: Optional[float]) -> Optional[float]:
        if value is None or not reference:
            return None
        return round(value / reference, 4)

    return {
        "network_performance": options.advertised_performance,
        "network_card_index": 0,
        "baseline_gbps": baseline,
        "peak_gbps": peak,
        "up_to": bool(options.advertised_performance)
        and str(options.advertised_performance).lower().startswith("up to"),
        "ratio_nflows_to_peak": ratio(best, peak),
        "ratio_sustained_to_baseline": ratio(sustained, baseline),
    }


# ---------------------------------------------------------------------------- entry


def run_network(
    options: NetworkOptions,
    *,
    cache_dir: Path,
    log: Callable[[str], None] = _no_log,
) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """Run this machine's side of the network benchmark: (network section, build info)."""
    options.validate()
    iperf3, iperf3_version = find_iperf3()
    compiler = cc.find_compiler()
    flags = [f for f in cc.native_flags() if f != "-fopenmp"]
    build = cc.build_kernel(SOURCE_NAME, compiler, flags, cache_dir)
    log(f"network: iperf3 {iperf3_version}; latency kernel {build.binary.name}")

    role = options.role
    if role == "both":
        port = options.port if options.port is not None else free_port_pair()
    else:
        port = options.port if options.port is not None else DEFAULT_PORT
    bind = LOOPBACK if role == "both" or options.listen == "loopback" else "0.0.0.0"
    section: Dict[str, Any] = {
        "version": KERNEL_VERSION,
        "source_sha256": build.source_sha256,
        "role": role,
        "peer": None,
        "loopback": role == "both",
        "port": port,
        "iperf3_version": iperf3_version,
    }
    started = time.monotonic()
    if role == "client":
        assert options.peer is not None
        section["peer"] = options.peer
        section["loopback"] = options.peer == LOOPBACK
        section.update(run_client(options, options.peer, port, iperf3, build.binary, log))
    else:
        servers = Servers(build.binary, iperf3, bind, port, options.server_timeout())
        try:
            servers.start()
            log(f"network: serving on {bind} ports {port}-{port + PORTS - 1}")
            if role == "both":
                section["peer"] = LOOPBACK
                section.update(
                    run_client(options, LOOPBACK, port, iperf3, build.binary, log, servers)
                )
            section["served_s"] = round(servers.wait(), 3)
        finally:
            servers.close()
    if role != "server":
        section["advertised"] = advertised(options, section)
    build_info = {
        "compiler": compiler.as_dict(),
        "cflags": flags,
        "binary_cached": build.cached,
        "compile_s": build.compile_s,
        "run_s": time.monotonic() - started,
    }
    return section, build_info


__all__ = [
    "DEFAULT_PORT",
    "KERNEL_VERSION",
    "LOOPBACK",
    "PORTS",
    "ROLES",
    "NetworkOptions",
    "analyse_burst",
    "check_peer",
    "default_flows",
    "parse_iperf3",
    "run_network",
]
