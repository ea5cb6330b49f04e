"""`instbench infra` as a user runs it: the real program, moto as the endpoint."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from instbench.aws.policy import granted_actions

INSTBENCH = str(Path(sys.executable).parent / "instbench")


def _run(*args: str, endpoint: str | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if endpoint:
        env["AWS_ENDPOINT_URL"] = endpoint
    return subprocess.run([INSTBENCH, *args], capture_output=True, text=True, timeout=120, env=env)


def test_policy_prints_the_controller_policy() -> None:
    proc = _run("infra", "policy", "--bucket", "my-results")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert {a for s in doc["Statement"] for a in s["Action"]} == granted_actions()
    assert any("arn:aws:s3:::my-results/*" in s["Resource"] for s in doc["Statement"])


def test_bad_input_is_one_line_and_exit_2() -> None:
    proc = _run("infra", "setup", "--region", "us-east-1", "--github-repo", "not a repo")
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("error: invalid --github-repo")
    assert len(proc.stderr.strip().splitlines()) == 1
    proc = _run("infra", "status", "--region", "us-eats-1")
    assert proc.returncode == 2
    assert "us-east-1" in proc.stderr  # the close match is suggested


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_setup_status_teardown(moto_endpoint: str) -> None:
    setup = _run(
        "infra",
        "setup",
        "--region",
        "us-east-1",
        "--bucket",
        "cli-results",
        "--json",
        endpoint=moto_endpoint,
    )
    assert setup.returncode == 0, setup.stderr[-2000:]
    assert json.loads(setup.stdout)["outputs"]["BucketName"] == "cli-results"

    status = _run("infra", "status", "--region", "us-east-1", endpoint=moto_endpoint)
    assert status.returncode == 0, status.stdout + status.stderr[-2000:]
    assert "drift: not available" in status.stdout
    assert "tls-only-policy" in status.stdout

    down = _run("infra", "teardown", "--region", "us-east-1", endpoint=moto_endpoint)
    assert down.returncode == 0, down.stderr[-2000:]
    assert "deleted" in down.stdout
