"""The sandbox's docker shim on its own: what `pull` and `run` do, and what they refuse.

The shim plays an image with the agent instbench ships; here a stand-in "agent" (a Python
script at the place the shim caches the zipapp) reports the argv, working directory and
environment it was given, so the mount mapping is seen exactly. One test lets the shim
build the real zipapp and run it, as in a sandbox fleet.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest

from instbench.agentpkg import build_agent
from instbench.sandbox.cloudinit import install_shims

IMAGE = "public.ecr.aws/example/instbench-agent:1.0"

REPORTER = """\
import json, os, sys
print(json.dumps({"argv": sys.argv[1:], "cwd": os.getcwd(), "flags": sys.flags.isolated,
                  "foo": os.environ.get("FOO"), "bar": os.environ.get("BAR")}))
sys.exit(7)
"""


@pytest.fixture()
def shim(tmp_path: Path) -> Path:
    """The installed shims plus docker (as the cloud-init installs them once registered)."""
    shims = tmp_path / "shims"
    install_shims(shims)
    source = resources.files("instbench.sandbox").joinpath("shims/docker")
    (shims / "docker").write_bytes(source.read_bytes())
    (shims / "docker").chmod(0o755)
    return shims / "docker"


def docker(
    shim: Path, tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    sandbox = tmp_path / "sandbox"
    sandbox.mkdir(exist_ok=True)
    return subprocess.run(
        [str(shim), *args],
        env={
            "PATH": os.environ["PATH"],
            "INSTBENCH_SANDBOX_DIR": str(sandbox),
            "INSTBENCH_SANDBOX_HOST_PATH": os.environ["PATH"],
            **(env or {}),
        },
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_run_maps_mounts_passes_env_and_returns_the_agents_status(
    shim: Path, tmp_path: Path
) -> None:
    state = tmp_path / "sandbox" / "docker"
    state.mkdir(parents=True)
    (state / "agent.pyz").write_text(REPORTER)
    out = tmp_path / "out"
    out.mkdir()
    pulled = docker(shim, tmp_path, "pull", IMAGE)
    assert pulled.returncode == 0, pulled.stderr
    assert "nothing downloaded" in pulled.stderr

    proc = docker(
        shim,
        tmp_path,
        "run", "--rm", "--network=host", "-v", f"{out}:/work", "-e", "FOO=1", "-e", "BAR",
        IMAGE,
        "run", "--output", "/work/result.json", "--log=/work/sub/a.log", "/workshop", "/work",
        env={"BAR": "from-instance"},
    )  # fmt: skip
    assert proc.returncode == 7, proc.stderr
    seen = json.loads(proc.stdout)
    assert seen["argv"] == [
        "run", "--output", f"{out}/result.json", f"--log={out}/sub/a.log", "/workshop", str(out),
    ]  # fmt: skip
    assert seen["cwd"] == str(out)  # the image's WORKDIR /work is the mount
    assert seen["flags"] == 1  # python3 -I, as the image's ENTRYPOINT
    assert (seen["foo"], seen["bar"]) == ("1", "from-instance")
    assert (state / "pulled").read_text().splitlines() == [IMAGE]
    assert f"docker run {IMAGE}: simulated by the instbench agent" in proc.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("run", "--privileged", IMAGE),
        ("run", "--network", "bridge", IMAGE),
        ("run", "-v", "relative:/work", IMAGE),
        ("run", "-v", "/no/such/dir:/work", IMAGE),
        ("run", "--rm"),
        ("pull",),
        ("pull", IMAGE, IMAGE),
        ("compose", "up"),
        (),
    ],
)
def test_what_the_shim_does_not_simulate_is_refused(
    shim: Path, tmp_path: Path, args: tuple[str, ...]
) -> None:
    proc = docker(shim, tmp_path, *args)
    assert proc.returncode == 125, proc.stderr
    assert "instbench sandbox: docker:" in proc.stderr


def test_outside_the_sandbox_the_shim_refuses(shim: Path, tmp_path: Path) -> None:
    proc = subprocess.run(
        [str(shim), "pull", IMAGE],
        env={"PATH": os.environ["PATH"]},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 1
    assert "only works inside the instbench sandbox" in proc.stderr


def test_the_image_is_played_by_the_zipapp_instbench_builds(shim: Path, tmp_path: Path) -> None:
    proc = docker(
        shim, tmp_path, "run", "--rm", IMAGE, "version",
        env={"INSTBENCH_SANDBOX_PYTHON": sys.executable},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    built = tmp_path / "sandbox" / "docker" / "agent.pyz"
    assert built.read_bytes() == build_agent().data  # the very zipapp the Dockerfile builds
    assert proc.stdout.strip()
