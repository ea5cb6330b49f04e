"""Shared fixtures: a moto server over HTTP (never real AWS) and a clean AWS environment."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from instbench.aws.session import AwsSession, AwsSettings
from instbench.sandbox.motoserver import SANDBOX_REGION, MotoServer

# Make sure nothing in a test can reach real AWS with the developer's credentials.
for _var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ENDPOINT_URL"):
    os.environ.pop(_var, None)
os.environ["AWS_ACCESS_KEY_ID"] = "testing"
os.environ["AWS_SECRET_ACCESS_KEY"] = "testing"
os.environ["AWS_DEFAULT_REGION"] = SANDBOX_REGION
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
os.environ["AWS_CONFIG_FILE"] = os.devnull
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Real-AWS tests run only with INSTBENCH_REAL_AWS=1."""
    if os.environ.get("INSTBENCH_REAL_AWS") == "1":
        return
    skip = pytest.mark.skip(reason="real AWS: set INSTBENCH_REAL_AWS=1 to run")
    for item in items:
        if "aws" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def _moto_server() -> Iterator[MotoServer]:
    with MotoServer() as server:
        yield server


@pytest.fixture()
def moto_endpoint(_moto_server: MotoServer) -> Iterator[str]:
    """HTTP endpoint of a moto server whose state is empty at the start of the test."""
    _moto_server.reset()
    yield _moto_server.endpoint


@pytest.fixture()
def aws_session(moto_endpoint: str) -> AwsSession:
    """An AwsSession pointed at the moto server (built the way the CLI builds one)."""
    return AwsSession(AwsSettings(region=SANDBOX_REGION, endpoint_url=moto_endpoint))


@pytest.fixture(scope="session")
def agent_pyz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real agent zipapp, built once per test session."""
    from instbench.agentpkg import write_agent

    path = tmp_path_factory.mktemp("agent") / "agent.pyz"
    write_agent(path)
    return path


@pytest.fixture(scope="session")
def kernel_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A compiled-kernel cache shared by the tests of one session."""
    return tmp_path_factory.mktemp("kernel-cache")


@pytest.fixture(scope="session")
def quick_result(
    agent_pyz: Path, kernel_cache: Path, tmp_path_factory: pytest.TempPathFactory
) -> bytes:
    """A real result document: the agent run in quick mode on this machine (stdlib only)."""
    out = tmp_path_factory.mktemp("quick") / "result.json"
    cmd = [
        sys.executable,
        "-I",
        "-S",
        str(agent_pyz),
        "run",
        "--benchmarks",
        "stream",
        "--output",
        str(out),
        "--quick",
        "--run-id",
        "test-run",
        "--cache-dir",
        str(kernel_cache),
    ]
    subprocess.run(cmd, check=True, capture_output=True, timeout=300)
    return out.read_bytes()
