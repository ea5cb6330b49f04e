"""Real CoreMark: parser on recorded outputs, checksum refusal and fallback with files served
from 127.0.0.1 (never the internet), and — where $INSTBENCH_COREMARK_SOURCES names a
directory holding the pinned sources (a checkout of eembc/coremark at the pinned commit) —
a real build and run from them.

CoreMark's sources are never committed here. The recorded outputs below are CoreMark's
printout only.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from instbench.agent import runner
from instbench.benchmarks import compiler as cc
from instbench.benchmarks import coremark, registry
from instbench.results.schema import CpuCoremark, CpuResult

needs_gcc = pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")

SOURCES_ENV = "INSTBENCH_COREMARK_SOURCES"
"""Names a directory with CoreMark's files at the pinned commit (e.g. a checkout of
github.com/eembc/coremark at coremark.PINNED_COMMIT); unset, the real-CoreMark tests skip."""

# Recorded on this machine (2-core AMD EPYC VM, gcc 12.2.0, Debian 12), from CoreMark v1.01
# (cfa9ab37) built outside the repository exactly as coremark.build_command does:
#   ./coremark 0x0 0x0 0x66 0 7 1 2000            (single-thread performance run)
RECORDED_SINGLE = """\
2K performance run parameters for coremark.
CoreMark Size    : 666
Total ticks      : 10039
Total time (secs): 10.039000
Iterations/Sec   : 19922.303018
Iterations       : 200000
Compiler version : GCC12.2.0
Compiler flags   : -O2
Memory location  : Please put data memory location here
\t\t\t(e.g. code in flash, data on heap etc)
seedcrc          : 0xe9f5
[0]crclist       : 0xe714
[0]crcmatrix     : 0x1fd7
[0]crcstate      : 0x8e3a
[0]crcfinal      : 0x4983
Correct operation validated. See readme.txt for run and reporting rules.
CoreMark 1.0 : 19922.303018 / GCC12.2.0 -O2 / Heap
"""
#   built with -DMULTITHREAD=2 -DUSE_PTHREAD=1 -pthread: ./coremark-mt 0x0 0x0 0x66 0 7 1 2000
#   (other test suites were using both cores at the time: hence no scaling)
RECORDED_MULTI = """\
2K performance run parameters for coremark.
CoreMark Size    : 666
Total ticks      : 30703
Total time (secs): 30.703000
Iterations/Sec   : 19542.064293
Iterations       : 600000
Compiler version : GCC12.2.0
Compiler flags   : -O2 -DPERFORMANCE_RUN=1 -DMULTITHREAD=2 -DUSE_PTHREAD=1 -pthread
Parallel PThreads : 2
Memory location  : Please put data memory location here
\t\t\t(e.g. code in flash, data on heap etc)
seedcrc          : 0xe9f5
[0]crclist       : 0xe714
[1]crclist       : 0xe714
[0]crcmatrix     : 0x1fd7
[1]crcmatrix     : 0x1fd7
[0]crcstate      : 0x8e3a
[1]crcstate      : 0x8e3a
[0]crcfinal      : 0xcc42
[1]crcfinal      : 0xcc42
Correct operation validated. See readme.txt for run and reporting rules.
CoreMark 1.0 : 19542.064293 / GCC12.2.0 -O2 -DPERFORMANCE_RUN=1 -DMULTITHREAD=2 \
-DUSE_PTHREAD=1 -pthread / Heap / 2:PThreads
"""
#   ./coremark 0x3415 0x3415 0x66 0 7 1 2000      (validation run)
RECORDED_VALIDATION = """\
2K validation run parameters for coremark.
CoreMark Size    : 666
Total ticks      : 12129
Total time (secs): 12.129000
Iterations/Sec   : 16489.405557
Iterations       : 200000
Compiler version : GCC12.2.0
Compiler flags   : -O2
Memory location  : Please put data memory location here
\t\t\t(e.g. code in flash, data on heap etc)
seedcrc          : 0x18f2
[0]crclist       : 0xe3c1
[0]crcmatrix     : 0x0747
[0]crcstate      : 0x8d84
[0]crcfinal      : 0x5b5d
Correct operation validated. See readme.txt for run and reporting rules.
"""
#   ./coremark 0x0 0x0 0x66 1000 7 1 2000         (1000 iterations: too short to count)
RECORDED_SHORT = """\
2K performance run parameters for coremark.
CoreMark Size    : 666
Total ticks      : 39
Total time (secs): 0.039000
Iterations/Sec   : 25641.025641
ERROR! Must execute for at least 10 secs for a valid result!
Iterations       : 1000
Compiler version : GCC12.2.0
Compiler flags   : -O2
Memory location  : Please put data memory location here
\t\t\t(e.g. code in flash, data on heap etc)
seedcrc          : 0xe9f5
[0]crclist       : 0xe714
[0]crcmatrix     : 0x1fd7
[0]crcstate      : 0x8e3a
[0]crcfinal      : 0xd340
Errors detected
"""


# ---------------------------------------------------------------------- parser


def test_parse_recorded_single_thread_run() -> None:
    run = coremark.parse_output(RECORDED_SINGLE)
    assert run["kind"] == "performance" and run["valid"], run["errors"]
    assert run["score"] == pytest.approx(19922.303018)
    assert run["iterations"] == 200000 and run["total_time_s"] == pytest.approx(10.039)
    assert run["compiler_version"] == "GCC12.2.0" and run["compiler_flags"] == "-O2"
    assert run["contexts"] == 1 and run["parallel_method"] is None


def test_parse_recorded_multi_thread_run() -> None:
    run = coremark.parse_output(RECORDED_MULTI)
    assert run["valid"] and run["score"] == pytest.approx(19542.064293)
    assert run["contexts"] == 2 and run["parallel_method"] == "PThreads"
    assert run["report_line"].endswith("/ Heap / 2:PThreads")


def test_validation_run_is_valid_but_has_no_score() -> None:
    run = coremark.parse_output(RECORDED_VALIDATION)
    assert run["kind"] == "validation" and run["valid"] and run["score"] is None


def test_invalid_runs_produce_no_score() -> None:
    short = coremark.parse_output(RECORDED_SHORT)
    assert not short["valid"] and short["score"] is None
    assert any("at least 10 secs" in e for e in short["errors"])
    crc = RECORDED_SINGLE.replace(
        "[0]crcfinal      : 0x4983\n",
        "[0]ERROR! list crc 0x1234 - should be 0xe714\n[0]crcfinal      : 0x4983\n",
    )
    bad = coremark.parse_output(crc)
    assert not bad["valid"] and bad["score"] is None
    # A score line without CoreMark's own validation line is not trusted either.
    unvalidated = RECORDED_SINGLE.replace("Correct operation validated.", "Something else.")
    assert coremark.parse_output(unvalidated)["score"] is None
    assert coremark.parse_output("")["score"] is None
    assert coremark.parse_output("instbench-int 12345")["valid"] is False


def test_build_command_follows_the_makefile(tmp_path: Path) -> None:
    compiler = cc.Compiler(path="/usr/bin/gcc", name="gcc", version="gcc 12")
    single = coremark.build_command(compiler, tmp_path, tmp_path / "cm", 1)
    assert single[:4] == ["/usr/bin/gcc", "-O2", "-DPERFORMANCE_RUN=1", "-DITERATIONS=0"]
    assert f"-I{tmp_path / 'linux64'}" in single and single[-1] == "-lrt"
    assert '-DFLAGS_STR="-O2 -DPERFORMANCE_RUN=1 -DITERATIONS=0"' in single
    multi = coremark.build_command(compiler, tmp_path, tmp_path / "cm", 4)
    assert {"-DMULTITHREAD=4", "-DUSE_PTHREAD=1", "-pthread"} <= set(multi)
    assert sorted(p for p in coremark.SOURCES if p.endswith(".c")) == sorted(coremark.C_FILES)


def test_base_url_resolution() -> None:
    assert coremark.base_url(None, {}) is None
    assert coremark.base_url(None, {coremark.ENV_URL: "off"}) is None
    assert coremark.base_url("http://127.0.0.1:8/x/", {}) == "http://127.0.0.1:8/x"
    with pytest.raises(Exception, match="http"):
        coremark.base_url("file:///etc", {})


def test_agent_chooses_github_only_on_ec2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(coremark.ENV_URL, raising=False)
    req = runner.AgentRequest(benchmarks=("cpu",), output=tmp_path / "r.json", run_id="r1")
    assert runner.coremark_url(req) is None
    req.collection_method = "aws"
    assert runner.coremark_url(req) == coremark.DEFAULT_BASE_URL
    monkeypatch.setenv(coremark.ENV_URL, "http://127.0.0.1:9")
    assert runner.coremark_url(req) == "http://127.0.0.1:9"
    req.coremark_url = "off"
    assert runner.coremark_url(req) == "off"


# ----------------------------------------------------- serving files on 127.0.0.1


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """No request log on stderr."""


@pytest.fixture()
def served(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """(base URL, directory) of an HTTP server on 127.0.0.1 serving `directory`."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(_Quiet, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def _publish(root: Path, files: dict[str, bytes]) -> None:
    for path, data in files.items():
        target = root / coremark.PINNED_COMMIT / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


def _fake_sources() -> dict[str, bytes]:
    return {path: f"/* not CoreMark: {path} */\n".encode() for path in coremark.SOURCES}


def test_checksum_mismatch_is_refused_and_nothing_is_written(
    served: tuple[str, Path], tmp_path: Path
) -> None:
    url, root = served
    _publish(root, _fake_sources())
    dest = tmp_path / "src"
    with pytest.raises(coremark.CoremarkUnavailable, match="checksum mismatch for core_list_join"):
        coremark.fetch_sources(url, dest)
    assert not dest.exists()


def test_missing_file_and_unreachable_server_fall_back(
    served: tuple[str, Path], tmp_path: Path
) -> None:
    url, _root = served
    with pytest.raises(coremark.CoremarkUnavailable, match="HTTP 404"):
        coremark.fetch_sources(url, tmp_path / "a")
    # port 9 (discard) on loopback: nothing listens, the connection is refused at once
    with pytest.raises(coremark.CoremarkUnavailable, match="failed"):
        coremark.fetch_sources("http://127.0.0.1:9", tmp_path / "b")


def test_measure_records_why_coremark_did_not_run(served: tuple[str, Path]) -> None:
    url, root = served
    _publish(root, _fake_sources())
    compiler = cc.Compiler(path="/nonexistent/cc", name="gcc", version="unused")
    logs: list[str] = []
    off = coremark.measure(compiler, None, 2, 1, 2000.0, True, logs.append)
    assert off.section is None and off.note is not None and "no source URL" in off.note
    assert logs == []
    refused = coremark.measure(compiler, url, 2, 1, 2000.0, True, logs.append)
    assert refused.section is None
    assert refused.note is not None and "checksum mismatch" in refused.note
    assert any("CoreMark not run" in line for line in logs)


@needs_gcc
def test_cpu_benchmark_falls_back_to_instbench_int_when_the_checksum_fails(
    served: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, root = served
    _publish(root, _fake_sources())
    monkeypatch.setenv(coremark.ENV_URL, url)
    info = registry.info("cpu")
    params = info.validate_params({"duration_ms": 30.0, "openssl": False, "vector": False})
    ctx = registry.RunContext(params=params, quick=True, cache_dir=tmp_path / "k", log=print)
    section, _build = info.run(ctx)
    result = CpuResult.model_validate(section)
    assert result.coremark is None
    assert result.coremark_note is not None and "checksum mismatch" in result.coremark_note
    assert result.integer.name == "instbench-int" and result.integer.checksum_ok


# ------------------------------------------------- the real sources, when present


@pytest.fixture(scope="module")
def real_sources() -> dict[str, bytes]:
    """The pinned CoreMark files from $INSTBENCH_COREMARK_SOURCES (skip when it is unset).

    Set but wrong (a missing file) fails: the user asked for the real tests.
    """
    root = os.environ.get(SOURCES_ENV)
    if not root:
        pytest.skip(
            f"{SOURCES_ENV} is not set: point it at a checkout of eembc/coremark at "
            f"{coremark.PINNED_COMMIT} to run the real CoreMark tests"
        )
    missing = [path for path in coremark.SOURCES if not (Path(root) / path).is_file()]
    if missing:
        pytest.fail(f"{SOURCES_ENV}={root} lacks CoreMark's {', '.join(sorted(missing))}")
    return {path: (Path(root) / path).read_bytes() for path in coremark.SOURCES}


def test_pinned_checksums_match_the_pinned_commit(real_sources: dict[str, bytes]) -> None:
    for path, data in real_sources.items():
        assert hashlib.sha256(data).hexdigest() == coremark.SOURCES[path], path


def test_one_tampered_real_file_is_refused(
    served: tuple[str, Path], tmp_path: Path, real_sources: dict[str, bytes]
) -> None:
    url, root = served
    files = dict(real_sources)
    files["core_state.c"] = files["core_state.c"].replace(b"crc", b"CRC", 1)
    _publish(root, files)
    with pytest.raises(coremark.CoremarkUnavailable, match=r"checksum mismatch for core_state\.c"):
        coremark.fetch_sources(url, tmp_path / "src")
    assert not (tmp_path / "src").exists()


@needs_gcc
def test_real_coremark_fetched_built_and_run_from_local_server(
    served: tuple[str, Path], real_sources: dict[str, bytes]
) -> None:
    """Single thread only (CoreMark's 10 s rule makes each run at least that long)."""
    url, root = served
    _publish(root, real_sources)
    outcome = coremark.measure(cc.find_compiler(), url, 1, 1, 2000.0, True, print)
    assert outcome.note is None and outcome.section is not None
    result = CpuCoremark.model_validate(outcome.section)
    assert result.name == "coremark" and result.commit == coremark.PINNED_COMMIT
    assert result.single_thread.total_time_s >= 10
    assert result.single_thread_score > 0 and result.scaling == pytest.approx(1.0)
    assert result.single_thread_score_per_mhz == pytest.approx(result.single_thread_score / 2000)
    assert result.files_sha256 == coremark.SOURCES
