"""The simulated cloud-init against a real moto server: real scripts, real processes.

Each test launches instances through the EC2 API with small hand-written user data (and
once with the real rendered template and the real agent), then checks what an observer of
EC2 and S3 would see: the script ran with the shims and the sandbox IMDS, and the instance
ended the way EC2 would end it. A "minute" of `shutdown +N` is scaled down so that
watchdogs fire in about a second.
"""

from __future__ import annotations

import itertools
import json
import os
import shlex
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from instbench.aws.session import AwsSession
from instbench.errors import UserError
from instbench.sandbox.cloudinit import CloudInit, install_shims
from instbench.sandbox.runtime import DEFAULT_BUCKET, Sandbox

AL2023 = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-{arch}"
BUCKET = "sandbox-test-bucket"


def _ami(session: AwsSession, arch: str = "x86_64") -> str:
    return session.ssm().get_parameter(Name=AL2023.format(arch=arch))["Parameter"]["Value"]


def _launch(
    session: AwsSession,
    user_data: str | None,
    behaviour: str = "terminate",
    instance_type: str = "m7i.large",
) -> str:
    kwargs: dict[str, Any] = {
        "ImageId": _ami(session),
        "InstanceType": instance_type,
        "MinCount": 1,
        "MaxCount": 1,
        "InstanceInitiatedShutdownBehavior": behaviour,
        "MetadataOptions": {"HttpTokens": "required", "HttpEndpoint": "enabled"},
    }
    if user_data is not None:
        kwargs["UserData"] = user_data
    inst = session.ec2().run_instances(**kwargs)["Instances"][0]
    return str(inst["InstanceId"])


def _state(session: AwsSession, iid: str) -> str:
    inst = session.ec2().describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    return str(inst["State"]["Name"])


def _wait(predicate: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _alive(pid: int) -> bool:
    """True while `pid` runs (a zombie nobody reaps yet counts as dead)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in {"Z", "X"}


def _script(body: str) -> str:
    return "#!/bin/bash\nset -u\n" + body.strip() + "\n"


@pytest.fixture()
def cloud(aws_session: AwsSession, tmp_path: Path) -> Iterator[CloudInit]:
    lines: list[str] = []
    with CloudInit(
        aws_session,
        tmp_path / "cloud",
        poll_interval=0.1,
        minute_seconds=0.5,
        term_grace=0.5,
        log=lines.append,
    ) as cloud:
        yield cloud


@pytest.fixture()
def bucket(aws_session: AwsSession) -> str:
    aws_session.s3().create_bucket(Bucket=BUCKET)
    return BUCKET


def _put_url(session: AwsSession, key: str, content_type: str | None = None) -> str:
    params = {"Bucket": BUCKET, "Key": key}
    if content_type:
        params["ContentType"] = content_type
    return str(session.s3().generate_presigned_url("put_object", Params=params, ExpiresIn=600))


def _get_object(session: AwsSession, key: str) -> bytes:
    return session.s3().get_object(Bucket=BUCKET, Key=key)["Body"].read()


def test_user_data_runs_with_shims_and_imds_then_terminates(
    aws_session: AwsSession, cloud: CloudInit, bucket: str
) -> None:
    url = _put_url(aws_session, "out.txt")
    iid = _launch(
        aws_session,
        _script(
            f"""
URL={shlex.quote(url)}
shutdown -h +30 "instbench watchdog"
dnf install -y gcc || exit 20
EP="$AWS_EC2_METADATA_SERVICE_ENDPOINT"
TOKEN=$(curl -fsS -X PUT -H "X-aws-ec2-metadata-token-ttl-seconds: 60" "${{EP}}latest/api/token")
W=$(mktemp -d /tmp/instbench.XXXXXX)
curl -fsS -H "X-aws-ec2-metadata-token: $TOKEN" -o "$W/doc.json" \\
    "${{EP}}latest/dynamic/instance-identity/document"
echo "creds=${{AWS_ACCESS_KEY_ID:-none}} tmp=$W" > "$W/env.txt"
curl -fsS -X PUT --upload-file "$W/doc.json" "$URL"
echo CONSOLE-MARKER
shutdown -h now
sleep 30
"""
        ),
    )
    boot = cloud.wait_ended(iid, timeout=20)
    assert (boot.phase, boot.reason, boot.action) == ("done", "shutdown", "terminate")
    assert _state(aws_session, iid) == "terminated"

    doc = json.loads(_get_object(aws_session, "out.txt"))
    assert doc["instanceId"] == iid and doc["instanceType"] == "m7i.large"
    disk = cloud.instance_dir(iid)
    env_lines = list(disk.glob("tmp/instbench.*/env.txt"))
    assert len(env_lines) == 1, "mktemp /tmp/... lands on the instance's own disk"
    assert env_lines[0].read_text().startswith("creds=none tmp=")

    console = aws_session.ec2().get_console_output(InstanceId=iid)["Output"]
    assert console == cloud.console_output(iid)
    assert "CONSOLE-MARKER" in console
    assert "dnf install gcc: already on this machine" in console
    assert "shutdown scheduled in 30 minute(s)" in console
    assert "power off (shutdown): instance will terminate" in console


def test_exit_without_shutdown_honours_stop_behaviour(
    aws_session: AwsSession, cloud: CloudInit
) -> None:
    iid = _launch(aws_session, _script("echo bye; exit 3"), behaviour="stop")
    boot = cloud.wait_ended(iid, timeout=20)
    assert (boot.reason, boot.action, boot.exit_code) == ("exit", "stop", 3)
    assert _state(aws_session, iid) == "stopped"


def test_watchdog_ends_a_script_that_never_reports(
    aws_session: AwsSession, cloud: CloudInit
) -> None:
    """Fault scenario 3: the script hangs; `shutdown -h +1` (0.5 s here) ends the instance.

    The script gets SIGTERM first, so its EXIT/TERM trap still runs (it would upload the
    log), as on a halting instance.
    """
    iid = _launch(
        aws_session,
        _script(
            """
trap 'echo trapped > "$INSTBENCH_SANDBOX_DIR/../trap-ran"; exit 143' TERM
shutdown -h +1 "instbench watchdog"
sleep 600
"""
        ),
    )
    boot = cloud.wait_ended(iid, timeout=20)
    assert (boot.reason, boot.action) == ("watchdog", "terminate")
    assert boot.exit_code == 143
    assert (cloud.instance_dir(iid) / "trap-ran").read_text() == "trapped\n"
    assert _state(aws_session, iid) == "terminated"
    assert "watchdog: shutdown time reached" in cloud.console_output(iid)


def test_cancelled_watchdog_does_not_fire(aws_session: AwsSession, cloud: CloudInit) -> None:
    iid = _launch(aws_session, _script("shutdown -h +1\nshutdown -c\nsleep 1.2\nshutdown -h now"))
    boot = cloud.wait_ended(iid, timeout=20)
    assert boot.reason == "shutdown"


def test_idle_instance_keeps_running_until_its_watchdog(
    aws_session: AwsSession, tmp_path: Path
) -> None:
    """halt_on_exit=False is EC2's own behaviour: a script that exits leaves the machine up
    (until its watchdog, if it armed one); no user data at all leaves it up for good."""
    with CloudInit(
        aws_session, tmp_path / "c", poll_interval=0.1, minute_seconds=0.5, halt_on_exit=False
    ) as cloud:
        iid = _launch(aws_session, _script("shutdown -h +1\nexit 0"))
        none = _launch(aws_session, None)
        boot = cloud.wait_ended(iid, timeout=20)
        assert (boot.reason, boot.exit_code) == ("watchdog", 0)  # not "exit"
        assert _state(aws_session, iid) == "terminated"
        _wait(lambda: getattr(cloud.boot(none), "phase", None) == "idle", what="no user data")
        assert "no user data: nothing to run" in cloud.console_output(none)
        assert _state(aws_session, none) == "running"


def test_one_script_at_a_time_by_default(
    aws_session: AwsSession, cloud: CloudInit, tmp_path: Path
) -> None:
    """The second instance waits ('running' in EC2) until the first has powered off."""
    gate, lock, log = tmp_path / "go", tmp_path / "lock", tmp_path / "log"
    body = f"""
mkdir {lock} 2>/dev/null || echo overlap >> {log}
echo "start $(basename "$PWD")" >> {log}
while [ ! -e {gate} ]; do sleep 0.05; done
rmdir {lock}
shutdown -h now
"""
    first = _launch(aws_session, _script(body))
    _wait(lambda: getattr(cloud.boot(first), "phase", None) == "running", what="first running")
    second = _launch(aws_session, _script(body))
    _wait(lambda: cloud.boot(second) is not None, what="second seen")
    time.sleep(0.6)  # six polls: room for a wrong second start
    assert getattr(cloud.boot(second), "phase", None) == "queued"
    assert _state(aws_session, second) == "running"
    gate.touch()
    one, two = cloud.wait_ended(first, 20), cloud.wait_ended(second, 20)
    assert one.ended_at is not None and two.started_at is not None
    assert two.started_at >= one.ended_at
    assert log.read_text().splitlines() == [f"start {first}", f"start {second}"]


def test_max_parallel_runs_scripts_together(aws_session: AwsSession, tmp_path: Path) -> None:
    gate = tmp_path / "go"
    body = _script(f"while [ ! -e {gate} ]; do sleep 0.05; done\nshutdown -h now")
    with CloudInit(aws_session, tmp_path / "c", poll_interval=0.1, max_parallel=2) as cloud:
        ids = [_launch(aws_session, body), _launch(aws_session, body)]
        _wait(
            lambda: all(getattr(cloud.boot(i), "phase", None) == "running" for i in ids),
            what="both running at once",
        )
        gate.touch()
        for iid in ids:
            assert cloud.wait_ended(iid, 20).reason == "shutdown"


def test_terminated_from_outside_kills_the_script(
    aws_session: AwsSession, cloud: CloudInit
) -> None:
    iid = _launch(
        aws_session,
        _script('sleep 600 &\necho $! > "$INSTBENCH_SANDBOX_DIR/../sleep.pid"\nwait'),
    )
    pid_file = cloud.instance_dir(iid) / "sleep.pid"
    _wait(lambda: pid_file.exists() and pid_file.read_text().strip() != "", what="script")
    pid = int(pid_file.read_text())
    assert _alive(pid)
    aws_session.ec2().terminate_instances(InstanceIds=[iid])
    boot = cloud.wait_ended(iid, timeout=20)
    assert (boot.reason, boot.action) == ("external", None)
    _wait(lambda: not _alive(pid), timeout=5, what="the script's children to die")


_ESCAPE = """
import os, socket, sys, time
if sys.argv[1] == "group":
    os.setpgid(0, 0)  # as timeout(1) or a shell's job control would
sock = socket.socket()
sock.bind(("127.0.0.1", 0))
sock.listen(1)
out = os.path.join(os.environ["INSTBENCH_SANDBOX_DIR"], "..", sys.argv[1])
with open(out + ".tmp", "w") as fh:
    fh.write(f"{os.getpid()} {sock.getsockname()[1]}")
os.rename(out + ".tmp", out)
time.sleep(600)
"""


def test_terminated_instance_loses_processes_that_left_its_group_and_their_ports(
    aws_session: AwsSession, cloud: CloudInit, tmp_path: Path
) -> None:
    """A child in a process group of its own and one in a session of its own (setsid) are
    the instance's too: both die with it, and the ports they listened on are free by the
    time the sandbox reports the instance done."""
    helper = tmp_path / "escape.py"
    helper.write_text(_ESCAPE)
    iid = _launch(
        aws_session,
        _script(f"python3 {helper} group &\nsetsid python3 {helper} session &\nsleep 600"),
    )
    root = cloud.instance_dir(iid)
    _wait(lambda: (root / "group").exists() and (root / "session").exists(), what="listeners")
    listeners = [
        tuple(map(int, (root / name).read_text().split())) for name in ("group", "session")
    ]
    for pid, _port in listeners:
        assert _alive(pid) and os.getpgid(pid) != os.getpgid(os.getpid())
    assert os.getsid(listeners[1][0]) == listeners[1][0]  # its own session
    aws_session.ec2().terminate_instances(InstanceIds=[iid])
    boot = cloud.wait_ended(iid, timeout=30)
    assert (boot.reason, boot.action) == ("external", None)
    for pid, port in listeners:
        assert not _alive(pid)
        with socket.socket() as probe:  # no SO_REUSEADDR: fails on any socket bound there
            probe.bind(("127.0.0.1", port))


def test_instance_gone_before_boot_is_skipped(aws_session: AwsSession, tmp_path: Path) -> None:
    with CloudInit(aws_session, tmp_path / "c", poll_interval=0.1, boot_delay=30) as cloud:
        iid = _launch(aws_session, _script("touch /should/not/run"))
        _wait(lambda: cloud.boot(iid) is not None, what="instance seen")
        aws_session.ec2().terminate_instances(InstanceIds=[iid])
        boot = cloud.wait_ended(iid, timeout=10)
        assert boot.phase == "skipped" and boot.started_at is None
        assert cloud.console_output(iid) == ""


def test_stop_kills_running_scripts(aws_session: AwsSession, tmp_path: Path) -> None:
    cloud = CloudInit(aws_session, tmp_path / "c", poll_interval=0.1).start()
    try:
        iid = _launch(
            aws_session,
            _script('sleep 600 &\necho $! > "$INSTBENCH_SANDBOX_DIR/../sleep.pid"\nwait'),
        )
        pid_file = cloud.instance_dir(iid) / "sleep.pid"
        _wait(lambda: pid_file.exists() and pid_file.read_text().strip() != "", what="script")
    finally:
        cloud.stop()
    boot = cloud.boot(iid)
    assert boot is not None and (boot.phase, boot.reason) == ("done", "sandbox stopped")
    _wait(lambda: not _alive(int(pid_file.read_text())), timeout=5, what="script killed")
    assert _state(aws_session, iid) == "running"  # the cloud outlives its cloud-init


def test_real_user_data_template_and_agent(
    aws_session: AwsSession, cloud: CloudInit, bucket: str, agent_pyz: Path
) -> None:
    """The contract with fleet/userdata.py: the rendered script and the real agent (quick)."""
    import hashlib

    from instbench.fleet.userdata import UserDataParams, render_user_data

    digest = hashlib.sha256(agent_pyz.read_bytes()).hexdigest()
    aws_session.s3().put_object(Bucket=BUCKET, Key="agent.pyz", Body=agent_pyz.read_bytes())
    agent_url = aws_session.s3().generate_presigned_url(
        "get_object", Params={"Bucket": BUCKET, "Key": "agent.pyz"}, ExpiresIn=600
    )
    script = render_user_data(
        UserDataParams(
            run_id="sbx-run",
            task_id="t0",
            sample=0,
            instance_type="c7g.large",
            region="us-east-1",
            benchmarks=("stream",),
            agent_url=agent_url,
            agent_sha256=digest,
            result_url=_put_url(aws_session, "result.json", "application/json"),
            log_url=_put_url(aws_session, "agent.log", "text/plain"),
            watchdog_minutes=600,  # 300 s with this fixture's half-second minutes
            collection_method="sandbox",
            quick=True,
            agent_args=("--array-size", "2000000", "--ntimes", "3"),
        )
    )
    iid = _launch(aws_session, script, instance_type="c7g.large")
    boot = cloud.wait_ended(iid, timeout=120)
    console = cloud.console_output(iid)
    assert (boot.reason, boot.exit_code, boot.action) == ("shutdown", 0, "terminate"), console
    result = json.loads(_get_object(aws_session, "result.json"))
    assert result["metadata"]["collection_method"] == "sandbox"
    ec2 = result["system_info"]["ec2"]
    assert (ec2["instance_id"], ec2["instance_type"]) == (iid, "c7g.large")
    assert b"finished with status 0" in _get_object(aws_session, "agent.log")
    assert _state(aws_session, iid) == "terminated"


# -- the shims on their own -------------------------------------------------------------


@pytest.fixture(scope="module")
def shims(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shims as the cloud-init installs them (one copy per command name)."""
    target = tmp_path_factory.mktemp("shims")
    install_shims(target)
    return target


def _shim(
    shims: Path, name: str, args: list[str], sandbox_dir: Path | None, path: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {"PATH": path or os.environ["PATH"], "LANG": "C.UTF-8"}
    if sandbox_dir is not None:
        env["INSTBENCH_SANDBOX_DIR"] = str(sandbox_dir)
    return subprocess.run(
        [str(shims / name), *args], env=env, capture_output=True, text=True, timeout=10
    )


def test_shutdown_shim_requests(shims: Path, tmp_path: Path) -> None:
    box = tmp_path / "box"
    box.mkdir()
    assert _shim(shims, "shutdown", ["-h", "+5", "watchdog"], box).returncode == 0
    assert (box / "watchdog").read_text() == "5\n"
    assert _shim(shims, "shutdown", ["-c"], box).returncode == 0
    assert not (box / "watchdog").exists()
    reboot = _shim(shims, "shutdown", ["-r", "now"], box)
    assert reboot.returncode == 1 and "reboot is not supported" in reboot.stderr
    bad = _shim(shims, "shutdown", ["-h", "soon"], box)
    assert bad.returncode == 1 and "invalid time soon" in bad.stderr
    assert not (box / "poweroff").exists()
    assert _shim(shims, "poweroff", [], box).returncode == 0
    assert (box / "poweroff").exists()


def test_shims_refuse_to_run_outside_the_sandbox(shims: Path) -> None:
    result = _shim(shims, "shutdown", ["-h", "now"], None)
    assert result.returncode == 1
    assert "only works inside the instbench sandbox" in result.stderr


def test_package_shim_without_a_compiler(shims: Path, tmp_path: Path) -> None:
    """A host without gcc: the install fails and says to install gcc on this machine."""
    bare = tmp_path / "bin"
    bare.mkdir()
    for tool in ("bash", "dirname", "basename"):
        found = subprocess.run(["which", tool], capture_output=True, text=True).stdout.strip()
        (bare / tool).symlink_to(found)
    result = _shim(shims, "dnf", ["install", "-y", "gcc"], tmp_path, path=str(bare))
    assert result.returncode == 1
    assert "this machine has no cc or gcc" in result.stderr
    assert "install gcc on this machine" in result.stderr
    other = _shim(shims, "yum", ["-y", "install", "htop"], tmp_path, path=str(bare))
    assert other.returncode == 0 and "yum install htop: skipped" in other.stderr
    assert _shim(shims, "apt-get", ["update", "-q"], tmp_path, path=str(bare)).returncode == 0


def test_sudo_shim_never_escalates(shims: Path, tmp_path: Path) -> None:
    result = _shim(shims, "sudo", ["-u", "root", "-E", "id", "-u"], tmp_path)
    assert result.returncode == 0 and result.stdout.strip() == str(os.getuid())


# -- the Sandbox object -----------------------------------------------------------------


def test_sandbox_provides_what_the_fleet_needs(moto_endpoint: str) -> None:
    """moto already has AL2023 parameters, images, offerings and a default VPC: if a moto
    upgrade drops one, this fails (and the sandbox would have to seed it)."""
    with Sandbox(endpoint=moto_endpoint, poll_interval=0.1) as sb:
        session = AwsSession(sb.aws_settings())
        assert sb.bucket == DEFAULT_BUCKET and sb.region == "us-east-1"
        session.s3().head_bucket(Bucket=sb.bucket)
        ec2 = session.ec2()
        for arch in ("x86_64", "arm64"):
            image = ec2.describe_images(ImageIds=[_ami(session, arch)])["Images"][0]
            assert image["Architecture"] == arch and image["State"] == "available"
        for itype, maker in (("m7i.large", "Intel"), ("m7a.large", "AMD"), ("c7g.large", "AWS")):
            offered = ec2.describe_instance_type_offerings(
                LocationType="availability-zone",
                Filters=[{"Name": "instance-type", "Values": [itype]}],
            )["InstanceTypeOfferings"]
            assert {o["Location"] for o in offered} >= {"us-east-1a", "us-east-1b"}
            kinds: Any = [itype]
            info: Any = ec2.describe_instance_types(InstanceTypes=kinds)["InstanceTypes"][0]
            assert info["ProcessorInfo"]["Manufacturer"] == maker
        subnets = ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])
        assert len(subnets["Subnets"]) >= 2
        assert sb.environ()["AWS_ENDPOINT_URL"] == moto_endpoint
        workdir = sb.workdir
        assert workdir.is_dir()
    assert not workdir.exists()


def test_sandbox_refuses_remote_endpoints_and_taken_ports() -> None:
    with pytest.raises(UserError, match="loopback endpoint"):
        Sandbox(endpoint="https://ec2.us-east-1.amazonaws.com")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(UserError, match=f"cannot serve the sandbox on 127.0.0.1:{port}"):
            Sandbox(port=port).start()


def test_scripts_launched_together_start_boot_spacing_apart(
    aws_session: AwsSession, tmp_path: Path
) -> None:
    """Three instances seen in one tick still start one after another.

    (In which order is not asserted: EC2's LaunchTime, which orders them, has whole seconds.)
    """
    gate = tmp_path / "go"
    body = _script(f"while [ ! -e {gate} ]; do sleep 0.05; done\nshutdown -h now")
    with CloudInit(
        aws_session, tmp_path / "c", poll_interval=0.1, max_parallel=3, boot_spacing=0.5
    ) as cloud:
        ids = [_launch(aws_session, body) for _ in range(3)]
        _wait(
            lambda: all(getattr(cloud.boot(i), "phase", None) == "running" for i in ids),
            what="all three running",
        )
        gate.touch()
        boots = [cloud.wait_ended(iid, 20) for iid in ids]
    starts = sorted(b.started_at for b in boots if b.started_at is not None)
    assert len(starts) == 3
    # started_at is wall-clock time and the spacing is kept on the monotonic clock:
    # allow a few milliseconds between the two.
    assert all(later - earlier >= 0.45 for earlier, later in itertools.pairwise(starts))


def test_only_the_coremark_url_reaches_the_scripts_from_the_controller(
    aws_session: AwsSession, cloud: CloudInit, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A loopback mirror of the pinned CoreMark sources: what a sandbox run fetches instead
    # of GitHub. Everything else of the controller's environment stays behind.
    monkeypatch.setenv("INSTBENCH_COREMARK_URL", "http://127.0.0.1:9/coremark")
    monkeypatch.setenv("INSTBENCH_NOT_FORWARDED", "secret")
    iid = _launch(
        aws_session,
        _script(
            """
W=$(mktemp -d /tmp/instbench.XXXXXX)
echo "url=${INSTBENCH_COREMARK_URL:-none} other=${INSTBENCH_NOT_FORWARDED:-none}" > "$W/env.txt"
"""
        ),
    )
    cloud.wait_ended(iid, timeout=20)
    (env,) = cloud.instance_dir(iid).glob("tmp/instbench.*/env.txt")
    assert env.read_text() == "url=http://127.0.0.1:9/coremark other=none\n"
