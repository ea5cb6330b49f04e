"""network benchmark: real iperf3 and our netlat kernel (built with real gcc) over 127.0.0.1.

Tests assert behaviour (schema, roles, errors, nothing left listening), never timings.
"""

from __future__ import annotations

import shutil
import socket
import threading
from pathlib import Path
from typing import Any

import pytest

from instbench.agent import runner
from instbench.benchmarks import network, registry
from instbench.benchmarks.errors import BenchmarkError, BenchmarkInputError
from instbench.results.schema import NetworkResult

needs_tools = pytest.mark.skipif(
    shutil.which("gcc") is None or shutil.which("iperf3") is None, reason="needs gcc and iperf3"
)


def _port_is_free(port: int) -> bool:
    """Nothing listens on the loopback port any more (a connection is refused)."""
    with socket.socket() as sock:
        return sock.connect_ex((network.LOOPBACK, port)) != 0


@pytest.fixture(scope="module")
def both_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], list[str]]:
    if shutil.which("gcc") is None or shutil.which("iperf3") is None:
        pytest.skip("needs gcc and iperf3")
    cache = tmp_path_factory.mktemp("net-cache")
    lines: list[str] = []
    options = network.NetworkOptions(
        quick=True,
        round_trips=500,
        advertised_performance="Up to 12.5 Gigabit",
        advertised_baseline_gbps=0.78,
        advertised_peak_gbps=12.5,
    )
    section, build = network.run_network(options, cache_dir=cache, log=lines.append)
    assert build["compiler"]["path"] and "-fopenmp" not in build["cflags"]
    return section, lines


@needs_tools
def test_both_roles_over_loopback_give_a_valid_section(
    both_run: tuple[dict[str, Any], list[str]],
) -> None:
    section, lines = both_run
    result = NetworkResult.model_validate(section)
    assert result.role == "both" and result.loopback and result.peer == "127.0.0.1"
    assert result.iperf3_version.startswith("iperf")
    names = [t.name for t in result.throughput]
    assert names == ["tcp_1flow", "tcp_1flow_reverse", "tcp_nflows", "tcp_nflows_reverse"]
    assert [t.direction for t in result.throughput][:2] == ["client-to-server", "server-to-client"]
    assert all(t.gbps > 0 for t in result.throughput)
    assert result.flows == network.default_flows() >= 2
    assert result.throughput[2].flows == result.flows
    lat = result.latency
    assert lat is not None and lat.round_trips == 500
    assert lat.min_us <= lat.median_us <= lat.p99_us <= lat.p999_us <= lat.max_us
    burst = result.burst  # --quick runs the burst-and-baseline mode for seconds
    assert burst is not None and burst.duration_s == network.QUICK_BURST_S
    assert len(burst.samples_gbps) >= 4
    adv = result.advertised
    assert adv is not None and adv.up_to and adv.peak_gbps == 12.5
    best = max(t.gbps for t in result.throughput if t.flows > 1)
    assert adv.ratio_nflows_to_peak == pytest.approx(best / 12.5, rel=1e-3)
    assert any("latency median" in line for line in lines)
    assert _port_is_free(result.port) and _port_is_free(result.port + 1)


@needs_tools
def test_server_and_client_roles_as_a_pair(tmp_path: Path) -> None:
    port = network.free_port_pair()
    out: dict[str, Any] = {}

    def serve() -> None:
        try:
            out["server"] = network.run_network(
                network.NetworkOptions(
                    quick=True, role="server", port=port, listen="loopback", server_timeout_s=120
                ),
                cache_dir=tmp_path,
            )[0]
        except BenchmarkError as exc:  # pragma: no cover - reported by the assert below
            out["error"] = exc

    thread = threading.Thread(target=serve)
    thread.start()
    client, _ = network.run_network(
        network.NetworkOptions(
            quick=True, role="client", peer="127.0.0.1", port=port, burst_s=0, round_trips=200
        ),
        cache_dir=tmp_path,
    )
    thread.join(timeout=60)
    assert not thread.is_alive() and "error" not in out
    server = NetworkResult.model_validate(out["server"])
    assert server.role == "server" and server.throughput == [] and server.served_s is not None
    result = NetworkResult.model_validate(client)
    assert result.role == "client" and result.burst is None and result.advertised is None
    assert len(result.throughput) == 4 and result.latency is not None
    assert _port_is_free(port) and _port_is_free(port + 1)


@needs_tools
def test_a_server_whose_client_never_comes_gives_up_and_leaves_nothing(tmp_path: Path) -> None:
    port = network.free_port_pair()
    options = network.NetworkOptions(
        quick=True, role="server", port=port, listen="loopback", server_timeout_s=10
    )
    with pytest.raises(BenchmarkError, match="no client came within 10 s"):
        network.run_network(options, cache_dir=tmp_path)
    assert _port_is_free(port) and _port_is_free(port + 1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"role": "client"}, "role client needs peer"),
        ({"role": "client", "peer": "10.0.0.1; reboot"}, "peer must be an IPv4 address"),
        ({"role": "client", "peer": "$(reboot)"}, "peer must be an IPv4 address"),
        ({"role": "client", "peer": "0.0.0.0"}, "not a unicast"),
        ({"role": "both", "peer": "10.0.0.1"}, "loopback only"),
        ({"role": "server", "peer": "127.0.0.1"}, "a server takes no peer"),
        ({"port": 65535}, "port must be"),
        ({"advertised_performance": "Up to `x`"}, "advertised_performance"),
    ],
)
def test_bad_options_are_one_line_input_errors(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(BenchmarkInputError, match=message):
        network.NetworkOptions(**kwargs).validate()


def test_registry_declares_network_and_checks_its_parameters(tmp_path: Path) -> None:
    info = registry.info("network")
    assert info.version == network.KERNEL_VERSION
    assert "package:iperf3" in info.needs and "c-compiler" in info.needs
    assert registry.packages_for(("network",)) == ("iperf3",)
    with pytest.raises(BenchmarkInputError, match="role must be one of"):
        info.validate_params({"role": "sideways"})
    with pytest.raises(BenchmarkInputError, match="flows must be >= 2"):
        info.validate_params({"flows": 1})
    req = runner.AgentRequest(
        benchmarks=("network",),
        output=tmp_path / "r.json",
        run_id="r1",
        params={"network": {"role": "client", "peer": "not-an-ip"}},
    )
    lines: list[str] = []
    with pytest.raises(BenchmarkInputError, match="peer must be an IPv4 address"):
        runner.run(req, lines.append)
    assert not (tmp_path / "r.json").exists()


def test_burst_analysis_finds_the_fall() -> None:
    samples = [(float(i), float(i + 1), 10.0) for i in range(20)]
    samples += [(float(i), float(i + 1), 1.0) for i in range(20, 60)]
    found = network.analyse_burst(samples)
    assert found == {
        "burst_gbps": 10.0,
        "sustained_gbps": 1.0,
        "fell": True,
        "seconds_until_fall": 20.0,
    }
    flat = network.analyse_burst([(float(i), float(i + 1), 5.0) for i in range(10)])
    assert flat["fell"] is False and flat["seconds_until_fall"] is None
    with pytest.raises(BenchmarkError, match="4 are needed"):
        network.analyse_burst(samples[:3])


def test_iperf3_errors_are_reported_with_its_own_words() -> None:
    with pytest.raises(BenchmarkError, match="iperf3: unable to connect to server"):
        network.parse_iperf3('{"start": {}, "end": {}, "error": "unable to connect to server"}')
    with pytest.raises(BenchmarkError, match="no JSON"):
        network.parse_iperf3("iperf3: error")


@pytest.mark.parametrize(
    ("performance", "quick", "method", "expected"),
    [
        ("Up to 12.5 Gigabit", False, "aws", network.BURST_S),
        ("up to 5 Gigabit", False, "aws", network.BURST_S),
        ("Up to 12.5 Gigabit", True, "aws", network.QUICK_BURST_S),
        ("Up to 12.5 Gigabit", True, "sandbox", network.QUICK_BURST_S),
        ("Up to 12.5 Gigabit", False, "sandbox", 0),  # an hour over loopback says nothing
        ("25 Gigabit", False, "aws", 0),  # no credits to spend
        ("8 x 100 Gigabit", True, "aws", 0),
        (None, False, "aws", 0),
    ],
)
def test_default_burst_run_only_for_up_to_types(
    performance: str | None, quick: bool, method: str, expected: int
) -> None:
    assert network.default_burst_s(performance, quick, method) == expected
