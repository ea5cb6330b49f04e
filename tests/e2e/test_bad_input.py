"""Fault scenario 7: bad input to every command exits 2 with one line, and creates nothing.

Injected: malformed or impossible arguments and environments (bad instance type names,
shell metacharacters, zero counts, a region typo, a subnet of another region, an AMI of
the wrong architecture, a missing bucket, no credentials, unknown runs and benchmarks,
paths that do not exist). Every command runs as its own process against one served
sandbox (`instbench sandbox serve`, reached through AWS_ENDPOINT_URL as if it were AWS).
Expected: exit code 2 and one ``error:`` line on stderr (or Click's usage message, also
exit 2), never a traceback; afterwards the moto server holds no instance, no security
group beyond the default ones, no new bucket and no new object.

All cases run in parallel (each is a CLI process started in ~1-2 s) inside one module
fixture; the parametrized tests then only look at the outcomes.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.factories import result_document, store_documents
from tests.procs import read_until

from instbench.aws.session import AwsSession, AwsSettings
from instbench.journal import Journal

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("bad_input")]

INSTBENCH = str(Path(sys.executable).parent / "instbench")
AL2023 = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-{}"
MISSING_BUCKET = "instbench-no-such-bucket"
CASE_TIMEOUT_S = 60
"""A bad invocation that is still running after this long has not refused its input."""


@dataclass(frozen=True)
class Case:
    """One bad invocation. `usage`: a Click usage error (its own message, exit 2)."""

    id: str
    argv: tuple[str, ...]
    usage: bool = False
    env: str = "aws"
    """aws: the served sandbox's credentials; nocreds: endpoint, no credentials;
    empty: no AWS_* at all (but metadata disabled, config files /dev/null)."""
    xfail: str | None = None
    bounded: bool = False
    """Run with a 4 GiB address-space limit: a missing bound on what it reads or expands
    then fails this case instead of exhausting the machine."""


@dataclass(frozen=True)
class World:
    """What the cases refer to (filled in once the sandbox serves)."""

    arm_ami: str
    x86_ami: str
    other_region_subnet: str
    journal: Path
    bucket: str
    empty_store: Path
    """A valid local store with no results (publish exits 0 on it)."""
    damaged: Path
    """A folder of damaged journals: truncated.sqlite, zero.sqlite, page.sqlite."""
    read_only: Path
    """A folder nothing can write into, not even root (a link into /sys)."""
    store_ro_cache: Path
    """A store with results whose ingest cache folder is read-only."""
    mirror_ro: Path
    """A mirror whose raw/ is read-only."""
    a_file: Path
    """A regular file (as a folder in a path, nothing can be created under it)."""


SYNC_RO, SYNC_CLASH, SYNC_LONG = "i21-sync-ro", "i21-sync-clash", "i21-sync-long"
"""Buckets for the sync cases: one object; raw/x beside raw/x/a.json; a 300-character key."""
UNKNOWN_RUN = "20260101T000000Z-abcdef"


def _cases(w: World) -> list[Case]:
    j = ("--journal", str(w.journal))
    b = ("--bucket", w.bucket)
    fleet = ("run", *b, *j, "--quick")
    run1 = (*fleet, "-t", "m7i.large")
    publish = ("publish", "--input", str(w.empty_store), "--output", str(w.empty_store / "pub"))
    return [
        # --- run: what to run and how -------------------------------------------------
        Case("run-nothing", ("run", *j)),
        Case("run-local-and-types", ("run", "--local", "-t", "m7i.large")),
        Case("run-local-and-sandbox", ("run", "--local", "--sandbox")),
        Case("run-local-unknown-benchmark", ("run", "--local", "-b", "nope")),
        Case("run-local-empty-benchmarks", ("run", "--local", "-b", "")),
        Case("run-local-timeout-word", ("run", "--local", "--timeout", "xyz")),
        Case("run-local-timeout-zero", ("run", "--local", "--timeout", "0")),
        Case("run-local-timeout-25h", ("run", "--local", "--timeout", "25h")),
        Case("run-local-timeout-negative", ("run", "--local", "--timeout", "-5m")),
        Case("run-local-samples-0", ("run", "--local", "--samples", "0"), usage=True),
        Case("run-local-concurrency-0", ("run", "--local", "--max-concurrency", "0"), usage=True),
        Case("run-local-array-size-0", ("run", "--local", "--array-size", "0"), usage=True),
        Case("run-local-ntimes-1", ("run", "--local", "--ntimes", "1"), usage=True),
        Case("run-local-threads-0", ("run", "--local", "--threads", "0"), usage=True),
        Case("run-samples-word", ("run", "--local", "--samples", "many"), usage=True),
        Case("run-unknown-option", ("run", "--local", "--turbo"), usage=True),
        # --- run --sandbox ---------------------------------------------------------------
        Case("sandbox-type-no-size", ("run", "--sandbox", *j, "-t", "m7i")),
        Case("sandbox-type-shell", ("run", "--sandbox", *j, "-t", "m7i.large;rm -rf /")),
        Case("sandbox-type-empty", ("run", "--sandbox", *j, "-t", "")),
        Case("sandbox-types-duplicate", ("run", "--sandbox", *j, "-t", "m7i.large,m7i.large")),
        Case("sandbox-region-typo", ("run", "--sandbox", *j, "-t", "m7i.large", "-r", "eu-west-9")),
        Case(
            "sandbox-param-range", ("run", "--sandbox", *j, "-t", "m7i.large", "--ntimes", "9999")
        ),
        Case(
            "sandbox-param-not-run",
            ("run", "--sandbox", *j, "-t", "m7i.large", "--param", "linpack.n=3000"),
        ),
        Case("sandbox-samples-0", ("run", "--sandbox", "-t", "m7i.large", "--samples", "0"), True),
        # --- run against the endpoint (as on AWS) -----------------------------------------
        Case("fleet-no-bucket", ("run", *j, "-t", "m7i.large")),
        Case("fleet-type-no-size", (*fleet, "-t", "m7i")),
        Case("fleet-type-huge", (*fleet, "-t", "m7i.huge")),
        Case("fleet-type-shell", (*fleet, "-t", "m7i.large;rm -rf /")),
        Case("fleet-type-empty", (*fleet, "-t", "")),
        Case("fleet-type-commas", (*fleet, "-t", ",,")),
        Case("fleet-type-duplicate", (*fleet, "-t", "m7i.large,m7i.large")),
        Case("fleet-type-unknown-family", (*fleet, "-t", "zz9.large")),
        Case("fleet-type-spaces", (*fleet, "-t", "m7i large")),
        Case("fleet-type-unicode", (*fleet, "-t", "m7i.lаrge")),
        Case("fleet-unknown-benchmark", (*run1, "-b", "nope")),
        # --- run --param (any benchmark's parameters, checked against the registry) -------
        Case("fleet-param-shape", (*run1, "--param", "linpack")),
        Case("fleet-param-unknown-benchmark", (*run1, "--param", "linpak.n=3000")),
        Case("fleet-param-unknown-name", (*run1, "-b", "linpack", "--param", "linpack.m=3")),
        Case("fleet-param-wrong-type", (*run1, "-b", "linpack", "--param", "linpack.n=big")),
        Case("fleet-param-out-of-range", (*run1, "-b", "linpack", "--param", "linpack.n=5")),
        Case("fleet-param-not-run", (*run1, "-b", "stream", "--param", "linpack.n=3000")),
        Case("fleet-param-bool", (*run1, "--param", "stream.single_thread=maybe")),
        Case(
            "fleet-param-twice", (*run1, "--param", "stream.ntimes=3", "--param", "stream.ntimes=4")
        ),
        Case("fleet-param-alias-too", (*run1, "--ntimes", "3", "--param", "stream.ntimes=4")),
        Case("fleet-param-alias-not-run", (*run1, "-b", "linpack", "--threads", "2")),
        Case(
            "fleet-param-shell",
            (*run1, "-b", "linpack", "--param", "linpack.library=/x;reboot"),
        ),
        Case("local-param-out-of-range", ("run", "--local", "--param", "stream.ntimes=1")),
        Case(
            "fleet-network-peer-by-hand",
            (*run1, "-b", "network", "--param", "network.peer=10.0.0.9"),
        ),
        Case(
            "fleet-network-role-by-hand",
            (*run1, "-b", "network", "--param", "network.role=server"),
        ),
        Case(
            "fleet-network-peer-shell",
            (*run1, "-b", "network", "--param", "network.peer=10.0.0.9;reboot"),
        ),
        Case("fleet-timeout-word", (*run1, "--timeout", "soon")),
        Case("fleet-timeout-25h", (*run1, "--timeout", "25h")),
        Case("fleet-samples-0", (*run1, "--samples", "0"), usage=True),
        Case("fleet-concurrency-0", (*run1, "--max-concurrency", "0"), usage=True),
        Case("fleet-region-typo", (*run1, "-r", "us-east-9")),
        Case("fleet-region-shell", (*run1, "-r", "us-east-1;ls")),
        Case("fleet-subnet-missing", (*run1, "--subnet", "subnet-0123456789abcdef0")),
        Case("fleet-subnet-malformed", (*run1, "--subnet", "subnet;ls")),
        Case("fleet-subnet-other-region", (*run1, "--subnet", w.other_region_subnet)),
        Case("fleet-sg-missing", (*run1, "--security-group", "sg-0123456789abcdef0")),
        Case("fleet-sg-malformed", (*run1, "--security-group", "default")),
        Case(
            "fleet-key-pair-missing",
            (*run1, "--dry-run", "--key-pair", "no-such-key"),
        ),
        Case("fleet-ami-wrong-arch", (*run1, "--ami", w.arm_ami)),
        Case("fleet-ami-wrong-arch-arm", (*fleet, "-t", "c7g.large", "--ami", w.x86_ami)),
        Case("fleet-ami-missing", (*run1, "--ami", "ami-0123456789abcdef0")),
        Case("fleet-ami-malformed", (*run1, "--ami", "ami-;reboot")),
        Case("fleet-bucket-missing", ("run", *j, "-t", "m7i.large", "--bucket", MISSING_BUCKET)),
        Case("fleet-bucket-malformed", ("run", *j, "-t", "m7i.large", "--bucket", "Bad_Bucket!")),
        Case("fleet-no-credentials", run1, env="nocreds"),
        Case("fleet-empty-env", (*run1, "-r", "us-east-1"), env="empty"),
        # --- run --resume --------------------------------------------------------------
        Case("resume-unknown-run", ("run", *j, "--resume", "20260101T000000Z-abcdef")),
        Case("resume-bad-id", ("run", *j, "--resume", "a;b")),
        Case("resume-no-journal", ("run", "--journal", "/nonexistent/j.sqlite", "--resume", "x")),
        Case("resume-with-types", ("run", *j, "--resume", "x", "-t", "m7i.large")),
        Case("resume-with-param", ("run", *j, "--resume", "x", "--param", "stream.ntimes=3")),
        # --- runs ------------------------------------------------------------------------
        Case("runs-show-unknown", ("runs", "show", "20260101T000000Z-abcdef", *j)),
        Case("runs-show-bad-id", ("runs", "show", "a;b", *j)),
        Case("runs-show-no-journal", ("runs", "show", "x", "--journal", "/nonexistent/j")),
        Case("runs-list-no-journal", ("runs", "list", "--journal", "/nonexistent/j")),
        Case("runs-show-missing-arg", ("runs", "show", *j), usage=True),
        Case("runs-unknown-command", ("runs", "delete", "x"), usage=True),
        # --- cleanup ---------------------------------------------------------------------
        Case("cleanup-older-than-word", ("cleanup", "--older-than", "xyz")),
        Case("cleanup-older-than-negative", ("cleanup", "--older-than", "-2h")),
        Case("cleanup-older-than-unit", ("cleanup", "--older-than", "2w")),
        Case("cleanup-run-id-shell", ("cleanup", "--run-id", "a;b")),
        Case("cleanup-run-id-empty", ("cleanup", "--run-id", "")),
        Case("cleanup-region-typo", ("cleanup", "--run-id", "x", "-r", "us-east-9")),
        Case("cleanup-no-credentials", ("cleanup", "--run-id", "x"), env="nocreds"),
        # --- types / benchmarks ------------------------------------------------------------
        Case("types-parse-no-size", ("types", "parse", "m7i")),
        Case("types-parse-huge", ("types", "parse", "m7i.huge")),
        Case("types-parse-empty", ("types", "parse", "")),
        Case("types-parse-shell", ("types", "parse", "m7i.large;rm -rf /")),
        Case("types-parse-no-args", ("types", "parse"), usage=True),
        Case("types-describe-bad-name", ("types", "describe", "m7i.huge")),
        Case("types-unknown-command", ("types", "explain", "m7i.large"), usage=True),
        Case("benchmarks-describe-nope", ("benchmarks", "describe", "nope")),
        Case("benchmarks-describe-empty", ("benchmarks", "describe", "")),
        Case("benchmarks-unknown-command", ("benchmarks", "run"), usage=True),
        # --- sync / aggregate / publish ----------------------------------------------------
        Case("sync-bucket-missing", ("sync", "--bucket", MISSING_BUCKET)),
        Case("sync-bucket-malformed", ("sync", "--bucket", "Bad_Bucket!")),
        Case("sync-no-bucket", ("sync",), usage=True),
        Case("sync-region-typo", ("sync", *b, "-r", "us-east-9")),
        Case("sync-no-credentials", ("sync", *b), env="nocreds"),
        Case("aggregate-input-missing", ("aggregate", "--input", "/nonexistent")),
        Case("publish-input-missing", ("publish", "--input", "/nonexistent")),
        Case("publish-memory-limit-word", (*publish, "--memory-limit", "lots")),
        Case("aggregate-memory-limit-no-unit", ("aggregate", "--memory-limit", "512")),
        Case("publish-prices-missing", (*publish, "--prices", "/nonexistent/prices.json")),
        Case(
            "publish-price-region-typo",
            (*publish, "--price-region", "us-east-9"),
        ),
        Case("publish-min-effect-above-one", (*publish, "--min-effect", "5")),
        # --- issue 21: numbers out of range (one line, exit 2, nothing created) ----------
        Case("run-local-timeout-5000-digits", ("run", "--local", "--timeout", "9" * 5000)),
        Case("fleet-timeout-5000-digits", (*run1, "--timeout", "9" * 5000)),
        Case(
            "fleet-samples-1e20-dry-run",
            (*run1, "--samples", "1" + "0" * 20, "--dry-run"),
            bounded=True,
        ),
        Case(
            "sandbox-samples-1e20-dry-run",
            ("run", "--sandbox", *j, "-t", "m7i.large", "--samples", "1" + "0" * 20, "--dry-run"),
            bounded=True,
        ),
        Case("fleet-samples-1e20-word", (*run1, "--samples", "1e20"), usage=True),
        Case("fleet-samples-100000", (*run1, "--samples", "100000"), bounded=True),
        Case("fleet-array-size-1e29", (*run1, "--array-size", "1" + "0" * 29)),
        Case("fleet-array-size-1e29-word", (*run1, "--array-size", "1e29"), usage=True),
        Case("fleet-array-size-over-memory", (*run1, "--array-size", "100000000000")),
        Case("run-local-array-size-1e29", ("run", "--local", "--array-size", "1" + "0" * 29)),
        Case("run-local-ntimes-huge", ("run", "--local", "--ntimes", "9" * 30)),
        Case("fleet-concurrency-huge", (*run1, "--max-concurrency", "9" * 30)),
        Case("fleet-threads-huge", (*run1, "--threads", "99999")),
        Case("cleanup-older-than-huge", ("cleanup", "--older-than", "99999999999d")),
        Case("cleanup-older-than-5000-digits", ("cleanup", "--older-than", "9" * 5000 + "d")),
        # --- issue 21: inputs read with a bound ---------------------------------------
        Case("run-local-suite-dev-zero", ("run", "--local", "--suite", "/dev/zero"), bounded=True),
        Case("fleet-suite-dev-zero", (*run1, "--suite", "/dev/zero"), bounded=True),
        Case("publish-prices-dev-zero", (*publish, "--prices", "/dev/zero"), bounded=True),
        # --- issue 21: journals damaged or unusable -----------------------------------
        Case(
            "runs-list-journal-truncated",
            ("runs", "list", "--journal", str(w.damaged / "truncated.sqlite")),
        ),
        Case(
            "runs-list-journal-zero", ("runs", "list", "--journal", str(w.damaged / "zero.sqlite"))
        ),
        Case(
            "runs-show-journal-page",
            ("runs", "show", UNKNOWN_RUN, "--journal", str(w.damaged / "page.sqlite")),
        ),
        Case(
            "resume-journal-corrupt-page",
            ("run", "--resume", UNKNOWN_RUN, "--journal", str(w.damaged / "page.sqlite")),
        ),
        Case(
            "resume-journal-zero",
            ("run", "--resume", UNKNOWN_RUN, "--journal", str(w.damaged / "zero.sqlite")),
        ),
        Case("runs-list-journal-directory", ("runs", "list", "--journal", str(w.empty_store))),
        Case(
            "fleet-journal-directory",
            ("run", *b, "--quick", "-t", "m7i.large", "--journal", str(w.empty_store)),
        ),
        Case(
            "fleet-journal-under-a-file",
            ("run", *b, "--quick", "-t", "m7i.large", "--journal", str(w.a_file / "j.sqlite")),
        ),
        Case(
            "fleet-journal-read-only",
            ("run", *b, "--quick", "-t", "m7i.large", "--journal", str(w.read_only / "j.sqlite")),
        ),
        # --- issue 21: unknown runs, read-only targets, odd keys, bad names -----------
        Case("cleanup-run-id-unknown", ("cleanup", "--run-id", UNKNOWN_RUN)),
        Case("cleanup-run-id-unknown-journal", ("cleanup", "--run-id", UNKNOWN_RUN, *j)),
        Case("serve-bucket-bad", ("sandbox", "serve", "--port", "0", "--bucket", "BAD BUCKET")),
        Case("sync-read-only-target", ("sync", "--bucket", SYNC_RO, "-o", str(w.mirror_ro))),
        Case(
            "sync-key-clash", ("sync", "--bucket", SYNC_CLASH, "-o", str(w.a_file.parent / "clash"))
        ),
        Case(
            "sync-key-300-chars",
            ("sync", "--bucket", SYNC_LONG, "-o", str(w.a_file.parent / "long")),
        ),
        Case("aggregate-read-only-cache", ("aggregate", "--input", str(w.store_ro_cache))),
        Case(
            "run-local-output-read-only",
            ("run", "--local", "--quick", "-o", str(w.read_only / "out")),
        ),
        # --- sandbox serve / the root ------------------------------------------------------
        Case("serve-port-too-big", ("sandbox", "serve", "--port", "70000"), usage=True),
        Case("serve-max-parallel-0", ("sandbox", "serve", "--max-parallel", "0"), usage=True),
        Case("serve-boot-delay-negative", ("sandbox", "serve", "--boot-delay", "-1"), usage=True),
        Case("root-unknown-command", ("frobnicate",), usage=True),
        Case("root-unknown-option", ("--frobnicate",), usage=True),
    ]


READ_ONLY_TARGET = Path("/sys/kernel")
"""Not writable by anyone, root included (sysfs refuses new files): stands in for a
read-only mount without needing to mount one."""
MEMORY_LIMIT = 4 * 1024**3


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def _damaged_journals(folder: Path) -> None:
    """A journal truncated to half, one of zero bytes, and one with a page overwritten."""
    folder.mkdir()
    whole = folder / "whole.sqlite"
    journal = Journal(whole)
    for i in range(100):
        journal.create_run(f"r{i}", "us-east-1", "aws", {"pad": "x" * 500}, [])
    journal.close()
    data = whole.read_bytes()
    (folder / "truncated.sqlite").write_bytes(data[: len(data) // 2])
    (folder / "zero.sqlite").write_bytes(b"")
    page = 4096
    (folder / "page.sqlite").write_bytes(data[: 3 * page] + b"\xff" * page + data[4 * page :])


@dataclass(frozen=True)
class Outcome:
    case: Case
    returncode: int
    stdout: str
    stderr: str
    seconds: float = 0.0


def _snapshot(session: AwsSession) -> dict[str, object]:
    """Everything a bad invocation must not create, in every region it could name."""
    s3 = session.s3()
    buckets = sorted(b["Name"] for b in s3.list_buckets()["Buckets"])
    objects = {
        name: sorted(o["Key"] for o in s3.list_objects_v2(Bucket=name).get("Contents", []))
        for name in buckets
    }
    ec2 = session.ec2()
    instances = [
        i["InstanceId"] for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]
    ]
    groups = sorted(
        (g["GroupId"], g["GroupName"]) for g in ec2.describe_security_groups()["SecurityGroups"]
    )
    return {"buckets": buckets, "objects": objects, "instances": instances, "groups": groups}


@dataclass(frozen=True)
class Ran:
    outcomes: dict[str, Outcome]
    before: dict[str, dict[str, object]]
    after: dict[str, dict[str, object]]


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ran]:
    """Serve the sandbox, run every case against it (4 at a time), check nothing appeared."""
    root = tmp_path_factory.mktemp("bad-input")
    proc = subprocess.Popen(
        [INSTBENCH, "sandbox", "serve", "--port", "0", "--workdir", str(root / "work")],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        lines = read_until(proc, r"^export ", timeout=60)
        info = dict(line.partition(": ")[::2] for line in lines if ": " in line)
        endpoint, region, bucket = info["endpoint"], info["region"], info["bucket"]

        def session(name: str) -> AwsSession:
            return AwsSession(
                AwsSettings(
                    region=name,
                    endpoint_url=endpoint,
                    access_key_id="sandbox",
                    secret_access_key="sandbox",
                )
            )

        here, there = session(region), session("us-west-2")
        ssm = here.ssm()
        world = World(
            arm_ami=ssm.get_parameter(Name=AL2023.format("arm64"))["Parameter"]["Value"],
            x86_ami=ssm.get_parameter(Name=AL2023.format("x86_64"))["Parameter"]["Value"],
            other_region_subnet=there.ec2().describe_subnets()["Subnets"][0]["SubnetId"],
            journal=root / "journal.sqlite",
            bucket=bucket,
            empty_store=root / "empty-store",
            damaged=root / "damaged",
            read_only=root / "read-only",
            store_ro_cache=root / "store-ro-cache",
            mirror_ro=root / "mirror-ro",
            a_file=root / "a-file",
        )
        (world.empty_store / "raw").mkdir(parents=True)
        Journal(world.journal).close()  # an existing, empty journal
        _damaged_journals(world.damaged)
        world.a_file.write_text("a file, not a folder\n")
        for link in (world.read_only, world.store_ro_cache / ".instbench", world.mirror_ro / "raw"):
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(READ_ONLY_TARGET)
        store_documents(world.store_ro_cache, [result_document("m7i.large", sample=0)])
        s3 = here.s3()
        for name, keys in (
            (SYNC_RO, ["raw/x/a.json"]),
            (SYNC_CLASH, ["raw/x", "raw/x/a.json"]),
            (SYNC_LONG, ["raw/" + "a" * 300 + ".json"]),
        ):
            s3.create_bucket(Bucket=name)
            for key in keys:
                s3.put_object(Bucket=name, Key=key, Body=b"{}")
        before = {name: _snapshot(session(name)) for name in (region, "us-west-2")}

        base = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        base |= {
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
            "XDG_STATE_HOME": str(root / "state"),
            "COLUMNS": "200",
        }
        base.pop("INSTBENCH_JOURNAL", None)
        envs = {
            "empty": base,
            "nocreds": base | {"AWS_ENDPOINT_URL": endpoint, "AWS_REGION": region},
            "aws": base
            | {
                "AWS_ENDPOINT_URL": endpoint,
                "AWS_REGION": region,
                "AWS_DEFAULT_REGION": region,
                "AWS_ACCESS_KEY_ID": "sandbox",
                "AWS_SECRET_ACCESS_KEY": "sandbox",
            },
        }
        cwd = root / "cwd"
        cwd.mkdir()

        def run(case: Case) -> Outcome:
            start = time.monotonic()
            try:
                done = subprocess.run(
                    [INSTBENCH, *case.argv],
                    env=envs[case.env],
                    cwd=cwd,
                    capture_output=True,
                    text=True,
                    timeout=CASE_TIMEOUT_S,
                    stdin=subprocess.DEVNULL,
                    preexec_fn=_limit_memory if case.bounded else None,
                )
            except subprocess.TimeoutExpired as exc:
                err = exc.stderr.decode() if isinstance(exc.stderr, bytes) else exc.stderr or ""
                return Outcome(case, -1, "", f"{err}\n(still running after {exc.timeout}s)")
            took = time.monotonic() - start
            return Outcome(case, done.returncode, done.stdout, done.stderr, took)

        cases = _cases(world)
        with ThreadPoolExecutor(max_workers=4) as pool:
            results = {o.case.id: o for o in pool.map(run, cases)}
        after = {name: _snapshot(session(name)) for name in (region, "us-west-2")}
        yield Ran(results, before, after)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


_PLACEHOLDER = World(
    "ami-arm", "ami-x86", "subnet-other", Path("/j"), "b", Path("/e"), *[Path("/p")] * 5
)
CASES = _cases(_PLACEHOLDER)


def _param(case: Case) -> object:
    marks = [pytest.mark.xfail(strict=True, reason=case.xfail)] if case.xfail else []
    return pytest.param(case.id, id=case.id, marks=marks)


def test_there_are_at_least_fifty_cases() -> None:
    assert len({c.id for c in CASES}) == len(CASES) >= 50
    commands = {c.argv[0] for c in CASES if not c.argv[0].startswith("-")}
    assert {"run", "runs", "cleanup", "types", "benchmarks", "sync", "aggregate"} <= commands
    assert {"publish", "sandbox"} <= commands


@pytest.mark.parametrize("case_id", [_param(c) for c in CASES])
def test_bad_input_exits_2_with_one_line(case_id: str, ran: Ran) -> None:
    out = ran.outcomes[case_id]
    shown = f"argv={out.case.argv!r}\nrc={out.returncode}\nstderr:\n{out.stderr[-3000:]}"
    assert "Traceback" not in out.stderr, shown
    assert out.returncode == 2, shown
    if out.case.usage:
        assert "Usage" in out.stderr or "Error" in out.stderr, shown
        return
    errors = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, shown
    assert out.stderr.rstrip("\n").splitlines()[-1] == errors[0], shown


def test_the_cloud_shows_nothing_created(ran: Ran) -> None:
    """No instance, no security group beyond the defaults, no new bucket or object."""
    assert ran.after == ran.before
    for snapshot in ran.after.values():
        assert snapshot["instances"] == []
        assert all(name == "default" for _gid, name in snapshot["groups"])  # type: ignore[attr-defined]
