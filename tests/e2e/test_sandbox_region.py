"""The sandbox is the same command: `--region R --profile P ... --sandbox` runs offline.

One sandbox run in eu-west-1 with a profile that exists nowhere (and AWS_PROFILE naming
another), two benchmarks and `--param linpack.n=3000`: the results are stored under the
region asked, record it (metadata, the instance's identity, the journal), the AMIs come
from eu-west-1's public SSM parameters, and the parameter reaches the LINPACK kernel (the
stored result solved n = 3000) and is recorded, for the linpack task only.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from tests.procs import read_until

from instbench.journal import Journal
from instbench.results.validate import parse_result

INSTBENCH = str(Path(sys.executable).parent / "instbench")
REGION = "eu-west-1"
RAW = re.compile(
    rf"^raw/(?P<bench>stream|linpack)/m7g\.large/{REGION}/\d{{4}}/\d{{2}}/\d{{2}}/"
    r"(?P<run>[\w.-]+)-0\.json$"
)
COMMAND = (
    "run",
    "--region",
    REGION,
    "--profile",
    "not-on-this-machine",
    "--instance-types",
    "m7g.large",
    "--benchmarks",
    "stream,linpack",
    "--param",
    "linpack.n=3000",
    "--quick",
)
"""What a user would run on AWS (less --bucket); the tests append --sandbox."""


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return env | {
        "AWS_PROFILE": "also-not-on-this-machine",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "COLUMNS": "200",
    }


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [INSTBENCH, *args],
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow
def test_sandbox_run_in_the_region_asked_with_a_parameter(tmp_path: Path) -> None:
    journal = tmp_path / "journal.sqlite"
    data = tmp_path / "data"
    proc = _cli(
        tmp_path, *COMMAND, "--sandbox", "--output-dir", str(data), "--journal", str(journal)
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert f"({REGION})" in proc.stdout  # the plan's title
    assert "parameters: linpack.n=3000" in proc.stdout

    keys = sorted(p.relative_to(data).as_posix() for p in (data / "raw").rglob("*.json"))
    assert len(keys) == 2, keys
    docs = {}
    for key in keys:
        match = RAW.match(key)
        assert match, key
        doc = parse_result((data / key).read_bytes())
        docs[match["bench"]] = doc
        assert doc.metadata.region == REGION
        assert doc.metadata.collection_method == "sandbox"
        assert (doc.metadata.availability_zone or "").startswith(REGION)
        assert doc.system_info.ec2 is not None and doc.system_info.ec2.region == REGION
    run_id = docs["linpack"].metadata.run_id

    linpack = docs["linpack"].performance_data.linpack
    assert linpack is not None and linpack.n == 3000 and linpack.calibration is None
    assert docs["linpack"].execution_context.parameters == {"linpack": {"n": 3000}}
    assert "linpack.n=3000" in docs["linpack"].execution_context.argv
    # The stream task's agent never saw linpack's parameter.
    assert docs["stream"].execution_context.parameters is None
    assert not any("linpack" in arg for arg in docs["stream"].execution_context.argv)

    j = Journal(journal)
    assert j.run(run_id).region == REGION
    assert j.run(run_id).params["params"] == {"linpack": {"n": 3000}}
    assert {t.state for t in j.tasks(run_id)} == {"result_stored"}


def test_dry_run_plans_in_the_region_and_shows_the_parameters(tmp_path: Path) -> None:
    proc = _cli(tmp_path, *COMMAND, "--ntimes", "4", "--sandbox", "--dry-run")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert f"({REGION})" in proc.stdout
    assert "parameters: linpack.n=3000, stream.ntimes=4" in proc.stdout
    assert f"zones: {REGION}a" in proc.stdout
    assert "dry run: nothing launched" in proc.stdout


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--region", "eu-west-9"), "unknown AWS region 'eu-west-9'"),
        (("--param", "linpack.trials=0"), "linpack.trials must be an integer from 1 to 20"),
        (("--param", "linpack.n=4000"), "--param linpack.n is given twice"),
        (("--param", "cpu.threads=2"), "cpu is not run"),
    ],
)
def test_bad_region_or_parameter_exits_2_before_the_sandbox_starts(
    tmp_path: Path, extra: tuple[str, ...], message: str
) -> None:
    proc = _cli(tmp_path, *COMMAND, *extra, "--sandbox", "--output-dir", str(tmp_path / "d"))
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], lines
    assert "sandbox" not in proc.stdout and not (tmp_path / "d").exists()


def test_sandbox_serve_simulates_the_region_asked(tmp_path: Path) -> None:
    """`instbench sandbox serve --region R` serves R (its first lines say so)."""
    proc = subprocess.Popen(
        [INSTBENCH, "sandbox", "serve", "--region", REGION, "--workdir", str(tmp_path / "w")],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=_env(tmp_path),
    )
    try:
        lines = read_until(proc, r"^export ", timeout=60)
        info = dict(line.partition(": ")[::2] for line in lines if ": " in line)
        assert info["region"] == REGION
        export = next(line for line in lines if line.startswith("export "))
        assert f"AWS_REGION={REGION}" in export
    finally:
        proc.terminate()
        proc.wait(timeout=30)
