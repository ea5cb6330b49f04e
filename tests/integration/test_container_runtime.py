"""The container runtime end to end in the sandbox: real user data, docker shim, real agent.

A fleet of one type runs quick STREAM with ``runtime="container"`` and a public image URI.
The sandbox's cloud-init executes the rendered user data; its `docker` shim plays the
image with the agent instbench ships (there is no docker daemon here), so what is proven
is the user data's path: docker checked, image pulled, the agent run with the zipapp
runtime's arguments through the /work mount, and the result uploaded, collected,
validated and stored like any other.

The script checked is the one the instance ran (its user-data file in the sandbox).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from instbench.aws.session import AwsSession
from instbench.cli.app import main
from instbench.fleet.plan import FleetOptions
from instbench.fleet.run import execute, plan_run
from instbench.journal import Journal
from instbench.results.validate import parse_result
from instbench.sandbox.runtime import Sandbox

IMAGE = "public.ecr.aws/example/instbench-agent:1.0"


def test_container_runtime_fleet_stores_a_valid_result(moto_endpoint: str, tmp_path: Path) -> None:
    opts = FleetOptions(
        instance_types=["m7i.large"],
        benchmarks=("stream",),
        bucket="",
        quick=True,
        collection_method="sandbox",
        timeout_s=300,
        runtime="container",
        image=IMAGE,
    )
    with Sandbox(endpoint=moto_endpoint, workdir=tmp_path / "cloud") as sb:
        opts.bucket = sb.bucket
        session = AwsSession(sb.aws_settings())
        plan = plan_run(session, opts, datetime.now(UTC))
        journal = Journal(tmp_path / "journal.sqlite")
        try:
            outcome = execute(session, plan, journal, tmp_path / "data", lambda s: None, True)
        finally:
            journal.close()
        [status] = outcome.statuses
        iid = status.instance_id
        assert iid
        console = sb.cloudinit.console_output(iid)
        assert outcome.succeeded, (status.detail, console[-4000:])
        pulled = (sb.cloudinit.instance_dir(iid) / "sandbox" / "docker" / "pulled").read_text()
        script = (sb.cloudinit.instance_dir(iid) / "user-data").read_text()

    assert f"IMAGE={IMAGE}\n" in script and "docker run --rm --network host" in script
    assert "agent.pyz" not in script  # nothing fetched by presigned URL
    assert pulled.splitlines() == [IMAGE]
    assert f"docker run {IMAGE}: simulated by the instbench agent" in console

    [raw] = sorted((tmp_path / "data" / "raw").rglob("*.json"))
    doc = parse_result(raw.read_bytes())
    assert doc.metadata.collection_method == "sandbox"
    assert doc.metadata.instance_type == "m7i.large"
    assert doc.metadata.run_id == plan.run_id
    assert doc.metadata.quick is True
    assert doc.performance_data.stream is not None
    assert doc.system_info.ec2 is not None and doc.system_info.ec2.instance_type == "m7i.large"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--image", IMAGE], "--image is only used with --runtime container"),
        (["--runtime", "container"], "--runtime container needs --image"),
        (["--runtime", "container", "--image", f"{IMAGE};id"], "invalid --image"),
        (["--runtime", "container", "--image", f"{IMAGE} x"], "invalid --image"),
        (
            ["--runtime", "container", "--image", "123456789012.dkr.ecr.us-east-1.amazonaws.com/a"],
            "private ECR registry",
        ),
        (["--runtime", "podman", "--image", IMAGE], "invalid --runtime"),
        (["--local", "--runtime", "container", "--image", IMAGE], "--local runs the agent"),
    ],
)
def test_bad_runtime_input_exits_2_with_one_line_and_creates_nothing(
    extra: list[str],
    message: str,
    moto_endpoint: str,
    aws_session: AwsSession,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    aws_session.s3().create_bucket(Bucket="results")
    base = ["run", "--bucket", "results", "--output-dir", str(tmp_path / "data")]
    if "--local" not in extra:
        base += ["--instance-types", "m7i.large"]
    with pytest.raises(SystemExit) as exited:
        main([*base, "--journal", str(tmp_path / "journal.sqlite"), *extra])
    assert exited.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and message in err, err
    ec2 = aws_session.ec2()
    assert ec2.describe_instances()["Reservations"] == []
    groups = ec2.describe_security_groups()["SecurityGroups"]
    assert {g["GroupName"] for g in groups} == {"default"}
    assert aws_session.s3().list_objects_v2(Bucket="results").get("KeyCount", 0) == 0
    assert not (tmp_path / "data").exists() and not (tmp_path / "journal.sqlite").exists()


def test_help_documents_the_runtime_and_the_public_image_rule(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["run", "--help"])
    assert exited.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--runtime" in text and "zipapp" in text and "container" in text
    assert "--image" in text and "public" in text and "private ECR" in text
