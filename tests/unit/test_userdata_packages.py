"""User data: the packages a task's benchmarks declare, and the suite options.

Packages come from the registry (`registry.packages_for`), are validated by a strict
pattern and rendered only through `shq`; installing them is best effort (logged, never
fatal). A suite task's script carries only the suite artifact's URL and sha256. Scripts
run for real under bash with recording fakes (see tests/unit/test_userdata.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.unit.test_userdata import REAL_TOOLS, calls_of, params, run_script

from instbench.benchmarks import registry
from instbench.errors import UserError
from instbench.fleet import userdata
from instbench.fleet.userdata import AGENT_OPTIONS, render_user_data

SUITE_URL = "https://bkt.s3.amazonaws.com/artifacts/" + "c" * 64 + ".json?X-Amz-Signature=3"
SUITE_SHA = "d" * 64
SUITE_ARGS = ("--suite-url", SUITE_URL, "--suite-sha256", SUITE_SHA)

FAILING_PKG = """#!/bin/sh
printf '["%s"' "$(basename "$0")" >>"$FAKE_RECORD"
for a in "$@"; do printf ',"%s"' "$a" >>"$FAKE_RECORD"; done
printf ']\\n' >>"$FAKE_RECORD"
exit 1
"""
"""A dnf whose every install fails (records its argv like the other fakes)."""


def _run(script: str, tmp_path: Path, *, dnf_fails: bool = False) -> tuple[int, list[list[str]]]:
    """Run `script` under bash with the recording fakes (a C compiler is present)."""
    code, calls, _uploads = run_script(
        script,
        tmp_path,
        with_cc=True,
        tools=(*REAL_TOOLS, "basename"),
        overrides={"dnf": FAILING_PKG} if dnf_fails else None,
    )
    return code, calls


def _log(tmp_path: Path) -> str:
    """The agent log the script uploaded first (uploads are numbered in order)."""
    uploads = sorted((tmp_path / "uploads").iterdir(), key=lambda p: int(p.name))
    return uploads[-1].read_text()


# ---------------------------------------------------------------- the registry


def test_registry_declares_openblas_for_linpack_only() -> None:
    assert registry.packages_for(("linpack",)) == ("openblas-devel",)
    assert registry.packages_for(("stream",)) == ()
    assert registry.packages_for(("stream", "linpack", "cpu", "latency")) == ("openblas-devel",)
    assert registry.packages_for(()) == ()


@pytest.mark.parametrize("bad", ["-y", "a b", "a;b", "$(id)", "pkg\n", "", "a:b", "x" * 101])
def test_registry_refuses_a_bad_package_name(bad: str) -> None:
    with pytest.raises(ValueError, match="invalid package name"):
        registry.Requirements(packages=(bad,))


def test_suite_is_a_reserved_benchmark_name() -> None:
    with pytest.raises(ValueError, match="reserved for user-defined suites"):
        registry.BenchmarkInfo(name="suite", version="1", description="x", run=lambda ctx: ({}, {}))


def test_cpu_description_names_coremark_and_our_kernel_apart() -> None:
    text = registry.info("cpu").description
    assert "CoreMark" in text and "instbench-int" in text and "never labelled CoreMark" in text


# ---------------------------------------------------------------- packages


def test_stream_script_has_no_package_step() -> None:
    script = render_user_data(params(packages=registry.packages_for(("stream",))))
    assert script == render_user_data(params())
    assert "for pkg in" not in script


def test_linpack_script_differs_from_stream_only_by_its_package_step() -> None:
    stream = render_user_data(params())
    linpack = render_user_data(
        params(
            task_id="m7i.large-linpack-0",
            benchmarks=("linpack",),
            packages=registry.packages_for(("linpack",)),
        )
    )
    block_start = linpack.index("\n# 3b.")
    block_end = linpack.index("\n# 4.")
    block = linpack[block_start:block_end]
    assert "for pkg in openblas-devel; do\n" in block
    assert 'pkg_install "$pkg" || echo' in block
    rest = linpack[:block_start] + linpack[block_end:]
    assert rest.replace("linpack", "stream") == stream


def test_packages_are_installed_before_the_agent_runs(tmp_path: Path) -> None:
    p = params(benchmarks=("linpack",), packages=("openblas-devel", "numactl"))
    code, calls = _run(render_user_data(p), tmp_path)
    assert code == 0
    names = [c[0] for c in calls]
    assert calls_of(calls, "dnf") == [
        ["install", "-y", "openblas-devel"],
        ["install", "-y", "numactl"],
    ]
    assert names.index("dnf") < names.index("python3")
    agent = calls_of(calls, "python3")[0]
    assert agent[agent.index("--benchmarks") + 1] == "linpack"


def test_a_failed_install_is_logged_and_the_run_goes_on(tmp_path: Path) -> None:
    p = params(benchmarks=("linpack",), packages=("openblas-devel",))
    code, calls = _run(render_user_data(p), tmp_path, dnf_fails=True)
    assert code == 0  # the agent ran and its result was uploaded
    assert calls_of(calls, "dnf") == [["install", "-y", "openblas-devel"]]
    assert len(calls_of(calls, "python3")) == 1
    assert "instbench: warning: package openblas-devel was not installed" in _log(tmp_path)


@pytest.mark.parametrize(
    "packages",
    [
        ("-y",),
        ("--installroot=/",),
        ("a b",),
        ("a;id",),
        ("$(id)",),
        ("`id`",),
        ("pkg\n",),
        ("",),
        ("epoch:pkg",),
        ("x" * 101,),
        ("gcc", "gcc"),
        tuple(f"p{i}" for i in range(userdata.MAX_PACKAGES + 1)),
        ["gcc"],
    ],
)
def test_bad_package_lists_are_refused(packages: Any) -> None:
    with pytest.raises(UserError, match="package"):
        render_user_data(params(packages=packages))


def test_quoting_alone_holds_against_a_hostile_package_name(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    hostile = f"$(touch {marker}); `touch {marker}` ' \" ; touch {marker}"
    # _render skips validation: the proof is that shq alone keeps it one literal word.
    script = userdata._render(params(packages=(hostile, "ok")))
    code, calls = _run(script, tmp_path)
    assert code == 0 and not marker.exists()
    assert calls_of(calls, "dnf") == [["install", "-y", hostile], ["install", "-y", "ok"]]


def test_the_container_runtime_installs_no_packages_on_the_host() -> None:
    image = "public.ecr.aws/example/instbench-agent:1.0"
    plain = render_user_data(params(runtime="container", image=image))
    with_packages = render_user_data(
        params(runtime="container", image=image, packages=("openblas-devel",))
    )
    assert with_packages == plain and "openblas" not in plain


# ---------------------------------------------------------------- suite options


def test_suite_options_are_allowed_with_strict_forms() -> None:
    assert {"--suite-url", "--suite-sha256"} <= set(AGENT_OPTIONS)
    script = render_user_data(params(benchmarks=(), agent_args=SUITE_ARGS))
    assert f"--suite-url '{SUITE_URL}' --suite-sha256 {SUITE_SHA}" in script
    assert "--benchmarks" not in script


def test_a_suite_task_runs_the_agent_with_only_url_and_digest(tmp_path: Path) -> None:
    script = render_user_data(params(benchmarks=(), agent_args=SUITE_ARGS))
    code, calls = _run(script, tmp_path)
    assert code == 0
    (agent,) = calls_of(calls, "python3")
    assert agent[agent.index("--suite-url") + 1] == SUITE_URL
    assert agent[agent.index("--suite-sha256") + 1] == SUITE_SHA
    assert "--benchmarks" not in agent


@pytest.mark.parametrize(
    "args",
    [
        ("--suite-url", "ftp://bkt/artifacts/x.json", "--suite-sha256", SUITE_SHA),
        ("--suite-url", "https://", "--suite-sha256", SUITE_SHA),
        ("--suite-url", "https://bkt/x.json?a='b'", "--suite-sha256", SUITE_SHA),
        ("--suite-url", "https://bkt/$(id)", "--suite-sha256", SUITE_SHA),
        ("--suite-url", "https://bkt/x y", "--suite-sha256", SUITE_SHA),
        ("--suite-url", SUITE_URL + "\n", "--suite-sha256", SUITE_SHA),
        ("--suite-url", SUITE_URL, "--suite-sha256", SUITE_SHA.upper()),
        ("--suite-url", SUITE_URL, "--suite-sha256", SUITE_SHA[:-1]),
        ("--suite-url", SUITE_URL, "--suite-sha256", SUITE_SHA + "\n"),
        ("--suite-url", SUITE_URL),
        ("--suite-sha256", SUITE_SHA),
        (*SUITE_ARGS, "--suite-url", SUITE_URL),
    ],
)
def test_bad_suite_options_are_refused(args: tuple[str, ...]) -> None:
    with pytest.raises(UserError, match="suite"):
        render_user_data(params(benchmarks=(), agent_args=args))


def test_no_benchmarks_needs_a_suite() -> None:
    with pytest.raises(UserError, match="benchmark list"):
        render_user_data(params(benchmarks=()))
