"""The container runtime's user data: validated image, same agent argv, same result path.

The rendered script is executed for real under bash with a PATH of recording fakes
(`docker`, `curl`, `dnf`, `systemctl`, `shutdown`, `sleep`, `python3`) plus the coreutils
the script needs, as tests/unit/test_userdata.py does for the zipapp runtime; the fake
`docker run` writes a result into the directory mounted at /work, as the agent would.
The zipapp runtime must render byte for byte what it rendered before the container
runtime existed: digests of that output are pinned here.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from tests.unit.test_userdata import calls_of
from tests.unit.test_userdata import params as userdata_params
from tests.unit.test_userdata import run_script as userdata_run_script

from instbench.errors import UserError
from instbench.fleet import userdata
from instbench.fleet.plan import FleetOptions
from instbench.fleet.run import options_from_journal, options_to_params
from instbench.fleet.userdata import UserDataParams, check_image, check_runtime, render_user_data
from instbench.journal import Journal

BASH = shutil.which("bash") or "/bin/bash"
IMAGE = "public.ecr.aws/example/instbench-agent:1.0"


def params(**changes: Any) -> UserDataParams:
    # test_userdata's parameters with a fixed digest: the pinned zipapp scripts below
    # depend on every byte of them.
    return userdata_params(**{"agent_sha256": "ab" * 32, **changes})


def container(**changes: Any) -> UserDataParams:
    return params(**{"runtime": "container", "image": IMAGE, **changes})


FULL = {
    "quick": True,
    "market": "spot",
    "agent_args": ("--ntimes", "5", "--array-size", "1000"),
    "collection_method": "sandbox",
    "benchmarks": ("stream", "latency"),
    "sample": 3,
}


# ---------------------------------------------------------------- the zipapp stays as it was

# sha256 of the script the zipapp runtime renders (same params), pinned when the container
# runtime was added so that adding it could not change the default by a byte. Changed
# deliberately since: the agent runs as `python3 -I -S` (hermetic, and no .pth start-up);
# the template moved from aws/templates to fleet/templates, and its header names that path
# (two bytes longer, nothing else).
ZIPAPP_GOLDEN = {
    "plain": ("8554a76961d38162ecf0878e1ee4ac016bcaa683dc6ed0d9e1dd91e0dfc83d20", 3649),
    "full": ("9a8f9901a250ffdb1c360f74a35aeef9003e27a5cce6b16c2157b2ef461739e4", 3724),
}


@pytest.mark.parametrize("variant", sorted(ZIPAPP_GOLDEN))
def test_zipapp_user_data_is_pinned(variant: str) -> None:
    changes = FULL if variant == "full" else {}
    script = render_user_data(params(**changes))
    digest, size = ZIPAPP_GOLDEN[variant]
    assert (hashlib.sha256(script.encode()).hexdigest(), len(script.encode())) == (digest, size)
    assert render_user_data(params(runtime="zipapp", **changes)) == script


def test_container_script_is_valid_bash_small_and_has_no_agent_fetch() -> None:
    script = render_user_data(container(**FULL))
    subprocess.run([BASH, "-n"], input=script, text=True, check=True)
    assert len(script.encode()) < userdata.USER_DATA_LIMIT
    assert f"IMAGE={IMAGE}\n" in script
    assert "AGENT_URL" not in script and "agent.pyz" not in script
    assert "a.pyz?X-Amz-Signature" not in script  # the presigned agent URL is not needed


# ---------------------------------------------------------------- running the script

FAKE = """#!{python} -I
import json, os, shutil, sys
name = os.path.basename(sys.argv[0])
args = sys.argv[1:]
with open(os.environ["FAKE_RECORD"], "a") as fh:
    fh.write(json.dumps([name] + args) + "\\n")
if name == "dnf" and "docker" in args:  # installing docker puts a docker on PATH
    shutil.copy(sys.argv[0], os.path.join(os.path.dirname(sys.argv[0]), "docker"))
if name == "docker" and args[:1] == ["info"] and not os.environ.get("FAKE_DOCKER_UP"):
    sys.exit(1)
if name == "docker" and args[:1] == ["pull"] and os.environ.get("FAKE_PULL_FAIL"):
    sys.exit(1)
if name == "docker" and args[:1] == ["run"]:
    if os.environ.get("FAKE_AGENT_FAIL"):
        print("agent: benchmark exploded", file=sys.stderr)
        sys.exit(3)
    src, dst = args[args.index("-v") + 1].split(":")
    out = args[args.index("--output") + 1]
    assert dst == "/work" and out.startswith("/work/"), (dst, out)
    with open(src + out[len("/work"):], "w") as fh:
        fh.write('{{"ok": true}}')
if name == "curl" and "-o" in args:
    with open(args[args.index("-o") + 1], "wb") as fh:
        fh.write(b"fake agent")
if name == "curl" and "--upload-file" in args:
    src = args[args.index("--upload-file") + 1]
    up = os.environ["FAKE_UPLOADS"]
    with open(src, "rb") as fh, open(os.path.join(up, str(len(os.listdir(up)))), "wb") as out:
        out.write(fh.read())
if name == "python3":
    with open(args[args.index("--output") + 1], "w") as fh:
        fh.write('{{"ok": true}}')
sys.exit(0)
"""

FAKES = ("shutdown", "curl", "dnf", "systemctl", "sleep", "python3")
REAL_TOOLS = ("mktemp", "sha256sum", "cat", "date", "mkdir", "mv")


def run_script(
    script: str, tmp_path: Path, *, docker: bool = True, env: dict[str, str] | None = None
) -> tuple[int, list[list[str]], Path]:
    """The zipapp tests' runner with this file's fakes (docker, systemctl) and tools."""
    return userdata_run_script(
        script,
        tmp_path,
        env=env,
        fake=FAKE,
        fakes=FAKES + (("docker",) if docker else ()),
        tools=REAL_TOOLS,
    )


def test_container_flow_pulls_runs_and_uploads_like_the_zipapp(tmp_path: Path) -> None:
    rc, calls, uploads = run_script(render_user_data(container(**FULL)), tmp_path / "c")
    assert rc == 0
    order = [c[0] for c in calls]
    # watchdog; docker daemon not up -> started; pull; run; result, log; power off
    assert order == [
        "shutdown", "docker", "systemctl", "docker", "docker", "curl", "curl", "shutdown",
    ]  # fmt: skip
    assert calls_of(calls, "systemctl") == [["start", "docker"]]
    info, pull, run = calls_of(calls, "docker")
    assert info == ["info"] and pull == ["pull", IMAGE]
    result_put, log_put = calls_of(calls, "curl")
    workdir = result_put[result_put.index("--upload-file") + 1].rsplit("/", 1)[0]
    assert Path(workdir).name.startswith("instbench.")
    assert run[:7] == ["run", "--rm", "--network", "host", "-v", f"{workdir}/out:/work", IMAGE]
    assert result_put == [
        "-fsS", "--retry", "5", "--retry-connrefused", "-X", "PUT",
        "-H", "Content-Type: application/json",
        "--upload-file", f"{workdir}/result.json", container().result_url,
    ]  # fmt: skip
    assert log_put[-3:] == ["--upload-file", f"{workdir}/agent.log", container().log_url]
    assert (uploads / "0").read_text() == '{"ok": true}'

    # The agent gets exactly the zipapp runtime's arguments; only --output is the mount's.
    fake_sha = hashlib.sha256(b"fake agent").hexdigest()
    zipapp = render_user_data(params(**FULL, agent_sha256=fake_sha))
    rc, zcalls, _ = run_script(zipapp, tmp_path / "z")
    assert rc == 0
    (zipapp_agent,) = calls_of(zcalls, "python3")
    assert zipapp_agent[:2] == ["-I", "-S"]  # the interpreter's flags, then the agent's argv
    zworkdir = zipapp_agent[2].rsplit("/", 1)[0]
    expected = [
        "/work/result.json" if a == f"{zworkdir}/result.json" else a for a in zipapp_agent[3:]
    ]
    assert run[7:] == expected
    assert run[7:10] == ["run", "--benchmarks", "stream,latency"]


def test_docker_missing_is_installed_and_running_daemon_is_not_restarted(tmp_path: Path) -> None:
    rc, calls, _ = run_script(
        render_user_data(container()), tmp_path, docker=False, env={"FAKE_DOCKER_UP": "1"}
    )
    assert rc == 0
    assert calls_of(calls, "dnf") == [["install", "-y", "docker"]]
    assert calls_of(calls, "systemctl") == []
    assert [c[0] for c in calls_of(calls, "docker")] == ["info", "pull", "run"]


def test_pull_failure_retries_then_stops_with_the_log(tmp_path: Path) -> None:
    rc, calls, uploads = run_script(
        render_user_data(container()), tmp_path, env={"FAKE_PULL_FAIL": "1"}
    )
    assert rc == 32
    assert calls_of(calls, "docker").count(["pull", IMAGE]) == 3
    assert calls_of(calls, "sleep") == [["15"], ["30"]]
    assert not [c for c in calls_of(calls, "docker") if c[0] == "run"]
    [log_put] = calls_of(calls, "curl")  # no result, only the log
    assert log_put[-1] == container().log_url
    assert "instbench: finished with status 32" in (uploads / "0").read_text()
    assert calls[-1] == ["shutdown", "-h", "now"]


def test_agent_failure_in_the_container_uploads_only_the_log(tmp_path: Path) -> None:
    rc, calls, uploads = run_script(
        render_user_data(container()), tmp_path, env={"FAKE_AGENT_FAIL": "1"}
    )
    assert rc == 3
    [log_put] = calls_of(calls, "curl")
    assert log_put[-1] == container().log_url
    log = (uploads / "0").read_text()
    assert "agent: benchmark exploded" in log and "agent failed with status 3" in log


def test_quoting_alone_holds_against_a_hostile_image(tmp_path: Path) -> None:
    """Defence in depth: skip validation; the image still arrives as one argv word."""
    hostile = "x'; touch pwned; echo '$(touch pwned2)`touch pwned3`\n;rm -rf / a b"
    script = userdata._render(container(image=hostile))
    subprocess.run([BASH, "-n"], input=script, text=True, check=True)
    rc, calls, _ = run_script(script, tmp_path)
    assert rc == 0
    assert ["pull", hostile] in calls_of(calls, "docker")
    run = next(c for c in calls_of(calls, "docker") if c[0] == "run")
    assert run[6] == hostile
    assert not list(tmp_path.rglob("pwned*"))


# ---------------------------------------------------------------- validation

GOOD_IMAGES = [
    IMAGE,
    "public.ecr.aws/example/instbench-agent",
    "ghcr.io/org/team/instbench_agent:v1.2.3-rc.1",
    "docker.io/library/python:3.12-slim",
    "registry.example.com:5000/a/b@sha256:" + "0" * 64,
    "quay.io/org/agent:1.0@sha256:" + "f" * 64,
]

BAD_IMAGES = [
    "",
    "instbench-agent:1.0",  # no registry: where it comes from must be explicit
    "public.ecr.aws/example/agent:1.0;id",
    "public.ecr.aws/example/agent:1.0 --privileged",
    "public.ecr.aws/example/agent:$(id)",
    "public.ecr.aws/example/agent:`id`",
    "public.ecr.aws/example/agent:1.0\n",
    "public.ecr.aws/example/agent:1.0\nid",
    "public.ecr.aws/example/Agent:1.0",  # repositories are lowercase
    "-public.ecr.aws/example/agent",
    "--privileged",
    "public.ecr.aws/example/agent:-x",
    "public.ecr.aws/example/agent@sha256:abc",
    "public.ecr.aws/example/agent:" + "t" * 129,
    "https://public.ecr.aws/example/agent:1.0",
    "public.ecr.aws/example/agent:1.0'",
    "public.ecr.aws//agent",
]

PRIVATE_ECR = [
    "123456789012.dkr.ecr.us-east-1.amazonaws.com/instbench-agent:1.0",
    "123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com/instbench-agent:1.0",
    "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/instbench-agent@sha256:" + "1" * 64,
]


@pytest.mark.parametrize("image", GOOD_IMAGES)
def test_good_images_are_accepted(image: str) -> None:
    assert check_image(image) == image
    assert 'docker pull "$IMAGE"' in render_user_data(container(image=image))


@pytest.mark.parametrize("image", BAD_IMAGES)
def test_bad_images_are_refused_with_one_line(image: str) -> None:
    with pytest.raises(UserError) as info:
        render_user_data(container(image=image))
    assert "\n" not in str(info.value).replace(repr(image), "")


@pytest.mark.parametrize("image", PRIVATE_ECR)
def test_private_ecr_images_are_refused_because_instances_have_no_credentials(
    image: str,
) -> None:
    with pytest.raises(UserError, match=r"private ECR.*instance profile.*public\.ecr\.aws"):
        check_image(image)


@pytest.mark.parametrize(
    ("runtime", "image", "message"),
    [
        ("container", None, "needs --image"),
        ("zipapp", IMAGE, "only used with --runtime container"),
        ("podman", IMAGE, "invalid --runtime"),
        ("", None, "invalid --runtime"),
    ],
)
def test_runtime_and_image_must_go_together(runtime: str, image: str | None, message: str) -> None:
    with pytest.raises(UserError, match=message):
        check_runtime(runtime, image)
    with pytest.raises(UserError, match=message):
        render_user_data(params(runtime=runtime, image=image))
    with pytest.raises(UserError, match=message):
        FleetOptions(["m7i.large"], ("stream",), "b", runtime=runtime, image=image)


def test_options_keep_runtime_and_image_through_the_journal(tmp_path: Path) -> None:
    opts = FleetOptions(["m7i.large"], ("stream",), "bkt", runtime="container", image=IMAGE)
    journalled = options_to_params(opts)
    assert (journalled["runtime"], journalled["image"]) == ("container", IMAGE)
    journal = Journal(tmp_path / "journal.sqlite")
    try:
        journal.create_run("r-1", "us-east-1", "aws", journalled, [("t", "m7i.large", "stream", 0)])
        restored, _, _ = options_from_journal(journal, "r-1")
        # A run journalled before the container runtime existed resumes as a zipapp run.
        old = {k: v for k, v in journalled.items() if k not in {"runtime", "image"}}
        journal.create_run("r-2", "us-east-1", "aws", old, [("t", "m7i.large", "stream", 0)])
        legacy, _, _ = options_from_journal(journal, "r-2")
    finally:
        journal.close()
    assert (restored.runtime, restored.image) == ("container", IMAGE)
    assert (legacy.runtime, legacy.image) == ("zipapp", None)
