"""User-defined suites on a fleet: a sandbox fleet (moto over HTTP, the simulated cloud-init
running each instance's real user data and the real agent zipapp) runs a suite as its own
task, fetched by presigned URL and checked by sha256; the suite never enters the user data;
a resumed run launches the journalled suite, not whatever the TOML file says by then."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from instbench.aws.session import AwsSession
from instbench.errors import UserError
from instbench.fleet.plan import SUITE_BENCHMARK, FleetOptions, make_plan
from instbench.fleet.run import execute, options_from_journal, options_to_params, plan_run
from instbench.journal import Journal
from instbench.results.validate import parse_result
from instbench.sandbox.runtime import Sandbox
from instbench.storage.layout import artifact_key
from instbench.suites import SuiteArtifact, load_suite, parse_suite

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "suites"
INSTBENCH = str(Path(sys.executable).parent / "instbench")

# Everything a shell would act on, in every string the schema lets the user write. The
# schema refuses newlines everywhere (argv, units, descriptions, regexes: see
# test_a_newline_in_a_suite_string_is_refused), so they cannot be shipped at all.
HOSTILE = """
name = "hostile-chars"
version = "1.0+build.7"
description = "quotes ' \\" backquotes `id` $(touch /tmp/pwned) ${HOME} ; | & > <"

[requirements]
commands = ["python3"]

[[benchmarks]]
name = "literal_argv"
description = "$(reboot) `reboot` '; shutdown -h now; '"
command = [
    "python3",
    "-c",
    "import json,sys; print(json.dumps({'n': len(sys.argv[1])}))",
    "$(echo pwned); `id` '\\"; rm -rf ~ #",
]
parse = { kind = "json", path = "n" }
unit = "chars $(id)"
higher_is_better = true
timeout_s = 30
repeats = 2

[[benchmarks]]
name = "shell_pipeline"
command = ["printf 'value: %s\\\\n' $((6 * 7)) | cat"]
shell = true
parse = { kind = "regex", pattern = '^value: (?P<value>[0-9]+)$' }
unit = "x"
higher_is_better = false
timeout_s = 30
repeats = 1
"""

FRAGMENTS = (
    "hostile-chars",
    "literal_argv",
    "shell_pipeline",
    "$(id)",
    "`id`",
    "$(touch",
    "$(echo pwned)",
    "rm -rf",
    "value: %s",
    "6 * 7",
    "import json",
    "python3 -c",
    "reboot",
)
"""Pieces of the suite that must not appear anywhere in a suite task's user data."""


def _options(bucket: str, suite: SuiteArtifact, **changes: object) -> FleetOptions:
    base: dict[str, object] = {
        "instance_types": ["m7i.large"],
        "benchmarks": (),
        "bucket": bucket,
        "quick": True,
        "collection_method": "sandbox",
        "timeout_s": 300,
        "suite": suite,
    }
    base.update(changes)
    return FleetOptions(**base)  # type: ignore[arg-type]


def _user_data(session: AwsSession) -> list[str]:
    ec2 = session.ec2()
    scripts = []
    for reservation in ec2.describe_instances()["Reservations"]:
        for inst in reservation["Instances"]:
            attr = ec2.describe_instance_attribute(
                InstanceId=inst["InstanceId"], Attribute="userData"
            )
            scripts.append(base64.b64decode(attr["UserData"]["Value"]).decode())
    return scripts


def test_sandbox_fleet_runs_the_example_suite(moto_endpoint: str, tmp_path: Path) -> None:
    loaded = load_suite(EXAMPLES / "python-micro.toml")
    suite = SuiteArtifact.from_loaded(loaded)
    with Sandbox(endpoint=moto_endpoint, workdir=tmp_path / "cloud") as sb:
        session = AwsSession(sb.aws_settings())
        plan = plan_run(session, _options(sb.bucket, suite), datetime.now(UTC))
        assert [(t.task_id, t.benchmark) for t in plan.tasks] == [
            ("m7i.large-suite-0", SUITE_BENCHMARK)
        ]
        journal = Journal(tmp_path / "journal.sqlite")
        try:
            outcome = execute(session, plan, journal, tmp_path / "data", lambda s: None, True)
        finally:
            journal.close()
        assert outcome.succeeded, [(s.task.task_id, s.detail) for s in outcome.failures]

        s3 = session.s3()
        # Uploaded once, next to agent.pyz, under its digest: exactly the validated bytes.
        key = artifact_key(suite.sha256, "json")
        assert key == f"artifacts/{suite.sha256}.json"
        assert s3.get_object(Bucket=sb.bucket, Key=key)["Body"].read() == suite.data

        (status,) = outcome.statuses
        assert status.result_key is not None
        assert status.result_key.startswith("raw/suite/m7i.large/")
        raw = (tmp_path / "data" / status.result_key).read_bytes()
        assert s3.get_object(Bucket=sb.bucket, Key=status.result_key)["Body"].read() == raw
        doc = parse_result(raw)
        assert doc.metadata.benchmark_suite == ["suite"]
        assert doc.metadata.collection_method == "sandbox"
        section = doc.performance_data.suite
        assert section is not None and section.name == "python-micro"
        assert section.artifact_sha256 == suite.sha256
        assert section.source_sha256 == loaded.source_sha256
        values = {b.name: (b.status, b.value, b.unit) for b in section.benchmarks}
        assert set(values) == {"int_loop", "sha256"}
        assert values["int_loop"][0] == "ok" and values["int_loop"][2] == "ops/s"
        assert values["sha256"][0] == "ok" and values["sha256"][2] == "MiB/s"
        assert all(v[1] is not None and v[1] > 0 for v in values.values())

        manifest = json.loads(
            (tmp_path / "data" / "runs" / plan.run_id / "manifest.json").read_text()
        )
        assert manifest["suite"] == {
            "name": "python-micro",
            "version": "1.0",
            "artifact_sha256": suite.sha256,
            "artifact_key": key,
        }
        (script,) = _user_data(session)
        assert "--suite-url" in script and f"--suite-sha256 {suite.sha256}" in script
        assert "python-micro" not in script and "int_loop" not in script


def test_resume_runs_the_journalled_suite_and_no_suite_text_reaches_user_data(
    moto_endpoint: str, tmp_path: Path
) -> None:
    path = tmp_path / "hostile.toml"
    path.write_text(HOSTILE)
    suite = SuiteArtifact.from_loaded(load_suite(path))
    with Sandbox(endpoint=moto_endpoint, workdir=tmp_path / "cloud") as sb:
        session = AwsSession(sb.aws_settings())
        opts = _options(sb.bucket, suite, benchmarks=("idle",))
        plan = plan_run(session, opts, datetime.now(UTC))
        assert [t.benchmark for t in plan.tasks] == ["idle", SUITE_BENCHMARK]
        journal = Journal(tmp_path / "journal.sqlite")
        try:
            # The controller journalled the run and died before launching anything;
            # meanwhile the suite file changed. The resume must not read it.
            journal.create_run(
                plan.run_id,
                plan.region,
                "endpoint",
                options_to_params(plan.options),
                [(t.task_id, t.instance_type, t.benchmark, t.sample) for t in plan.tasks],
            )
            path.write_text(HOSTILE.replace('version = "1.0+build.7"', 'version = "2.0"'))
            restored, _region, mode = options_from_journal(journal, plan.run_id)
            assert mode == "endpoint" and restored.suite == suite
            replanned = plan_run(session, restored, datetime.now(UTC), run_id=plan.run_id)
            outcome = execute(
                session, replanned, journal, tmp_path / "data", lambda s: None, True, resume=True
            )
        finally:
            journal.close()
        assert outcome.succeeded, [(s.task.task_id, s.detail) for s in outcome.failures]

        by_benchmark = {s.task.benchmark: s for s in outcome.statuses}
        doc = by_benchmark[SUITE_BENCHMARK].document
        assert doc is not None and doc.performance_data.suite is not None
        section = doc.performance_data.suite
        assert section.version == "1.0+build.7" and section.artifact_sha256 == suite.sha256
        values = {b.name: b.value for b in section.benchmarks}
        # the hostile argument reached python as one literal argv element
        assert values == {
            "literal_argv": float(len("$(echo pwned); `id` '\"; rm -rf ~ #")),
            "shell_pipeline": 42.0,
        }
        assert by_benchmark["idle"].result_key is not None
        assert by_benchmark["idle"].result_key.startswith("raw/idle/")

        scripts = _user_data(session)
        assert len(scripts) == 2
        for script in scripts:
            leaked = [f for f in FRAGMENTS if f in script]
            assert leaked == [], leaked
        suite_scripts = [s for s in scripts if "--suite-url" in s]
        assert len(suite_scripts) == 1
        assert f"--suite-sha256 {suite.sha256}" in suite_scripts[0]
        assert "--benchmarks" not in suite_scripts[0]


def test_a_newline_in_a_suite_string_is_refused() -> None:
    text = HOSTILE.replace('unit = "x"', 'unit = "x\\ny"')
    with pytest.raises(UserError, match="NUL or newline"):
        parse_suite(text.encode(), "newline.toml")


def test_a_tampered_journal_suite_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text(HOSTILE)
    suite = SuiteArtifact.from_loaded(load_suite(path))
    params = suite.as_params()
    assert SuiteArtifact.from_params(params) == suite
    tampered = dict(params, artifact=params["artifact"].replace("python3", "python4"))
    with pytest.raises(UserError, match="does not match"):
        SuiteArtifact.from_params(tampered)
    with pytest.raises(UserError, match="lacks its artifact"):
        SuiteArtifact.from_params({"sha256": suite.sha256})


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([INSTBENCH, *args], capture_output=True, text=True, timeout=300, cwd=cwd)


def test_cli_bad_suite_with_sandbox_exits_2_and_creates_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    # a regex without the named group the value is read from
    bad.write_text(HOSTILE.replace("(?P<value>[0-9]+)", "([0-9]+)"))
    journal = tmp_path / "journal.sqlite"
    out = tmp_path / "data"
    proc = _cli(
        "run",
        "--sandbox",
        "--quick",
        "--instance-types",
        "m7i.large",
        "--suite",
        str(bad),
        "--output-dir",
        str(out),
        "--journal",
        str(journal),
        cwd=tmp_path,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: suite "), proc.stderr
    assert "regex has no named group" in lines[0]
    # Refused before the sandbox started, the plan was made or anything was written.
    assert proc.stdout == ""
    assert not out.exists() and not journal.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.toml"]


def test_a_plan_needs_benchmarks_or_a_suite(aws_session: AwsSession) -> None:
    opts = FleetOptions(instance_types=["m7i.large"], benchmarks=(), bucket="b")
    with pytest.raises(UserError, match="nothing to run"):
        make_plan(aws_session, opts, "r-1", datetime.now(UTC))


def test_resume_refuses_a_new_suite_or_benchmarks(tmp_path: Path) -> None:
    for extra in (["--suite", str(EXAMPLES / "python-micro.toml")], ["--benchmarks", "stream"]):
        proc = _cli("run", "--resume", "r-1", *extra, cwd=tmp_path)
        assert proc.returncode == 2
        assert "--resume keeps the run's --benchmarks and --suite" in proc.stderr
