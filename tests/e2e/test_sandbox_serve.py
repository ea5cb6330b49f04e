"""`instbench sandbox serve` as its own process: the cloud that outlives its controller.

The test is the controller: it reads the endpoint from the first lines printed, talks to
the served sandbox with ordinary boto3 clients, launches instances and walks away; the
served cloud-init runs their user data and ends them (shutdown, watchdog) on its own.
SIGTERM then stops the sandbox cleanly, killing what still runs, with exit code 0.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.procs import read_until, wait_for

from instbench.aws.session import AwsSession, AwsSettings

INSTBENCH = str(Path(sys.executable).parent / "instbench")
AL2023_X86 = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"


@pytest.fixture()
def served(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], dict[str, str]]]:
    """The served sandbox and what it printed first (endpoint, region, bucket, export)."""
    env = dict(os.environ, INSTBENCH_SANDBOX_MINUTE_SECONDS="0.5")
    proc = subprocess.Popen(
        [INSTBENCH, "sandbox", "serve", "--workdir", str(tmp_path / "work")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        lines = read_until(proc, r"^export ", timeout=60)
        info = dict(line.partition(": ")[::2] for line in lines if ": " in line)
        info["export"] = lines[-1]
        yield proc, info
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


def test_serve_runs_instances_and_stops_on_sigterm(
    served: tuple[subprocess.Popen[str], dict[str, str]], tmp_path: Path
) -> None:
    proc, info = served
    endpoint = info["endpoint"]
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", endpoint)
    assert info["region"] == "us-east-1"
    export = info["export"] + " "
    assert f"AWS_ENDPOINT_URL={endpoint} " in export
    assert "AWS_ACCESS_KEY_ID=sandbox " in export
    session = AwsSession(
        AwsSettings(
            region=info["region"],
            endpoint_url=endpoint,
            access_key_id="sandbox",
            secret_access_key="sandbox",
        )
    )
    session.s3().head_bucket(Bucket=info["bucket"])
    ec2 = session.ec2()
    ami = session.ssm().get_parameter(Name=AL2023_X86)["Parameter"]["Value"]

    def launch(script: str, behaviour: str = "terminate") -> str:
        kwargs: dict[str, Any] = {
            "ImageId": ami,
            "InstanceType": "m7i.large",
            "MinCount": 1,
            "MaxCount": 1,
            "UserData": "#!/bin/bash\n" + script,
            "InstanceInitiatedShutdownBehavior": behaviour,
        }
        return str(ec2.run_instances(**kwargs)["Instances"][0]["InstanceId"])

    def state(iid: str) -> str:
        reservations = ec2.describe_instances(InstanceIds=[iid])["Reservations"]
        return str(reservations[0]["Instances"][0]["State"]["Name"])

    # The controller walks away: the served cloud ends each instance by itself.
    hung = launch("shutdown -h +1 'instbench watchdog'\nsleep 600\n")
    done = launch("echo done\nshutdown -h now\n", behaviour="stop")
    wait_for(lambda: state(hung) == "terminated", 30, "the watchdog to terminate the hung one")
    wait_for(lambda: state(done) == "stopped", 30, "the second to stop itself")
    console = ec2.get_console_output(InstanceId=hung)["Output"]
    assert "watchdog: shutdown time reached" in console

    # A script still running when the sandbox stops is killed with it.
    workdir = tmp_path / "work"
    sleeper = launch('sleep 600 &\necho $! > "$INSTBENCH_SANDBOX_DIR/../sleep.pid"\nwait\n')
    pid_file = workdir / sleeper / "sleep.pid"
    wait_for(lambda: pid_file.exists() and pid_file.read_text().strip() != "", 30, "sleeper")
    pid = int(pid_file.read_text())

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    assert proc.stderr is not None
    assert "sandbox: stopped" in proc.stderr.read()
    wait_for(lambda: not Path(f"/proc/{pid}").exists() or _zombie(pid), 5, "the script to die")


def _zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in {"Z", "X"}


def test_serve_refuses_a_taken_port() -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [INSTBENCH, "sandbox", "serve", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith(f"error: cannot serve the sandbox on 127.0.0.1:{port}")
    )
