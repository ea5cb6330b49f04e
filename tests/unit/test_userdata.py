"""User data: validated, quoted, under 16 KB, and it does what it says when bash runs it.

The script is executed for real under bash with a PATH holding only fake `shutdown`,
`curl`, `dnf`, `python3` (each records its argv as JSON) plus the few coreutils the script
needs, so the tests see the exact argv every value arrived as.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jinja2
import pytest

from instbench.errors import UserDataTooLarge, UserError
from instbench.fleet import userdata
from instbench.fleet.userdata import UserDataParams, render_user_data

AGENT_BYTES = b"PK fake agent zipapp\n"
AGENT_SHA = hashlib.sha256(AGENT_BYTES).hexdigest()
BASH = shutil.which("bash") or "/bin/bash"


def params(**changes: Any) -> UserDataParams:
    base = UserDataParams(
        run_id="r-20260101-abc",
        task_id="m7i.large-stream-0",
        sample=0,
        instance_type="m7i.large",
        region="us-east-1",
        benchmarks=("stream",),
        agent_url="https://bkt.s3.amazonaws.com/artifacts/a.pyz?X-Amz-Signature=ab%2Fc&X-Amz-Expires=60",
        agent_sha256=AGENT_SHA,
        result_url="https://bkt.s3.amazonaws.com/incoming/r/t/result.json?X-Amz-Signature=1",
        log_url="https://bkt.s3.amazonaws.com/logs/r/t.log?X-Amz-Signature=2",
        watchdog_minutes=21,
    )
    return dataclasses.replace(base, **changes)


# ---------------------------------------------------------------- fakes


FAKE = """#!{python} -I
import json, os, sys
name = os.path.basename(sys.argv[0])
with open(os.environ["FAKE_RECORD"], "a") as fh:
    fh.write(json.dumps([name] + sys.argv[1:]) + "\\n")
args = sys.argv[1:]
if name == "curl" and "-o" in args:
    with open(args[args.index("-o") + 1], "wb") as fh:
        fh.write(os.environb[b"FAKE_AGENT"])
if name == "curl" and "--upload-file" in args:
    src = args[args.index("--upload-file") + 1]
    up = os.environ["FAKE_UPLOADS"]
    with open(src, "rb") as fh, open(os.path.join(up, str(len(os.listdir(up)))), "wb") as out:
        out.write(fh.read())
if name == "python3":
    if os.environ.get("FAKE_AGENT_FAIL"):
        print("agent: benchmark exploded", file=sys.stderr)
        sys.exit(1)
    with open(args[args.index("--output") + 1], "w") as fh:
        fh.write('{{"ok": true}}')
sys.exit(0)
"""

REAL_TOOLS = ("mktemp", "sha256sum", "cat", "date")


FAKES = ("shutdown", "curl", "dnf", "python3")


def run_script(
    script: str,
    tmp_path: Path,
    *,
    with_cc: bool = False,
    env: dict[str, str] | None = None,
    fake: str = FAKE,
    fakes: tuple[str, ...] = FAKES,
    tools: tuple[str, ...] = REAL_TOOLS,
    overrides: dict[str, str] | None = None,
) -> tuple[int, list[list[str]], Path]:
    """Run `script` under bash with fakes; (exit code, recorded argv lists, uploads dir).

    PATH holds only `fakes` (each the `fake` recorder, or its text from `overrides`) and
    links to the real `tools` (plus `cc` with `with_cc`). The other user data tests
    (container runtime, packages) call this with their own fakes and tools.
    """
    bindir = tmp_path / "bin"
    bindir.mkdir(parents=True)
    for name in fakes:
        path = bindir / name
        path.write_text((overrides or {}).get(name) or fake.format(python=sys.executable))
        path.chmod(0o755)
    for tool in tools + (("cc",) if with_cc else ()):
        real = shutil.which(tool)
        assert real, f"{tool} is needed by this test"
        (bindir / tool).symlink_to(real)
    record = tmp_path / "record.jsonl"
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    script_path = tmp_path / "userdata.sh"
    script_path.write_text(script)
    proc_env = {
        "PATH": str(bindir),
        "FAKE_RECORD": str(record),
        "FAKE_UPLOADS": str(uploads),
        "FAKE_AGENT": AGENT_BYTES.decode(),
        "TMPDIR": str(tmp_path),
        **(env or {}),
    }
    proc = subprocess.run(
        [BASH, str(script_path)],
        env=proc_env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    lines = record.read_text().splitlines() if record.exists() else []
    calls = [json.loads(line) for line in lines]
    for call in calls:  # the script's mktemp -d lives in /tmp: remove it
        if call[0] == "curl" and "--upload-file" in call:
            workdir = Path(call[call.index("--upload-file") + 1]).parent
            if workdir.name.startswith("instbench."):
                shutil.rmtree(workdir, ignore_errors=True)
    return proc.returncode, calls, uploads


def calls_of(calls: list[list[str]], name: str) -> list[list[str]]:
    return [c[1:] for c in calls if c[0] == name]


# ---------------------------------------------------------------- rendering


def test_rendered_script_is_valid_bash_and_small() -> None:
    script = render_user_data(params(quick=True, market="spot", agent_args=("--ntimes", "5")))
    assert script.startswith("#!/bin/bash\n")
    assert len(script.encode()) < userdata.USER_DATA_LIMIT
    subprocess.run([BASH, "-n"], input=script, text=True, check=True)


def test_full_flow_runs_in_order_with_exact_argv(tmp_path: Path) -> None:
    p = params(quick=True, market="on-demand", agent_args=("--ntimes", "5", "--array-size", "1000"))
    rc, calls, uploads = run_script(render_user_data(p), tmp_path)
    assert rc == 0
    order = [c[0] for c in calls]
    # watchdog first, compiler installed (no cc on PATH), agent fetched, run, result, log, off
    assert order == ["shutdown", "dnf", "curl", "python3", "curl", "curl", "shutdown"]
    assert calls[0][1:] == ["-h", "+21", "instbench watchdog"]
    assert calls_of(calls, "dnf") == [["install", "-y", "gcc"]]
    fetch, result_put, log_put = calls_of(calls, "curl")
    workdir = fetch[fetch.index("-o") + 1].rsplit("/", 1)[0]
    assert Path(workdir).name.startswith("instbench.")
    assert fetch == [
        "-fsS", "--retry", "5", "--retry-connrefused", "-o", f"{workdir}/agent.pyz", p.agent_url,
    ]  # fmt: skip
    assert result_put == [
        "-fsS", "--retry", "5", "--retry-connrefused", "-X", "PUT",
        "-H", "Content-Type: application/json",
        "--upload-file", f"{workdir}/result.json", p.result_url,
    ]  # fmt: skip
    assert log_put[-3:] == ["--upload-file", f"{workdir}/agent.log", p.log_url]
    assert log_put[log_put.index("-H") + 1] == "Content-Type: text/plain"
    (agent,) = calls_of(calls, "python3")
    assert agent == [
        "-I", "-S", f"{workdir}/agent.pyz", "run", "--benchmarks", "stream",
        "--output", f"{workdir}/result.json", "--run-id", p.run_id, "--sample", "0",
        "--task-id", p.task_id, "--instance-type", "m7i.large", "--region", "us-east-1",
        "--collection-method", "aws", "--quick", "--market", "on-demand",
        "--ntimes", "5", "--array-size", "1000",
    ]  # fmt: skip
    assert calls[-1][1:] == ["-h", "now"]
    assert (uploads / "0").read_text() == '{"ok": true}'
    log = (uploads / "1").read_text()
    assert "instbench: finished with status 0" in log


def test_compiler_present_skips_install(tmp_path: Path) -> None:
    if not shutil.which("cc"):
        pytest.skip("no cc on this machine")
    _, calls, _ = run_script(render_user_data(params()), tmp_path, with_cc=True)
    assert calls_of(calls, "dnf") == []


def test_agent_failure_still_uploads_log_and_shuts_down(tmp_path: Path) -> None:
    rc, calls, uploads = run_script(
        render_user_data(params()), tmp_path, env={"FAKE_AGENT_FAIL": "1"}
    )
    assert rc == 1
    puts = calls_of(calls, "curl")[1:]
    assert len(puts) == 1 and puts[0][-1] == params().log_url  # no result, only the log
    assert "agent: benchmark exploded" in (uploads / "0").read_text()
    assert calls[-1] == ["shutdown", "-h", "now"]


def test_checksum_mismatch_stops_before_running_the_agent(tmp_path: Path) -> None:
    script = render_user_data(params(agent_sha256="0" * 64))
    rc, calls, _ = run_script(script, tmp_path)
    assert rc == 31
    assert calls_of(calls, "python3") == []
    assert calls[-1] == ["shutdown", "-h", "now"]


# ---------------------------------------------------------------- hostile values

HOSTILE = [
    "x'; touch /tmp/pwned; '",
    "$(touch /tmp/pwned)",
    "`touch /tmp/pwned`",
    "a\nb",
    ";rm -rf /",
    'a"b',
    "a b",
    "${IFS}",
    "",
]


@pytest.mark.parametrize("value", HOSTILE)
@pytest.mark.parametrize("field", ["run_id", "task_id", "instance_type", "region"])
def test_hostile_identifiers_are_rejected(field: str, value: str) -> None:
    with pytest.raises(UserError):
        render_user_data(params(**{field: value}))


@pytest.mark.parametrize("value", [*HOSTILE[:-1], "ftp://h/x", "https://", "file:///etc/passwd"])
@pytest.mark.parametrize("field", ["agent_url", "result_url", "log_url"])
def test_hostile_urls_are_rejected(field: str, value: str) -> None:
    url = value if "://" in value else f"https://h/{value}"
    with pytest.raises(UserError):
        render_user_data(params(**{field: url}))


@pytest.mark.parametrize(
    "changes",
    [
        {"benchmarks": ("stream;id",)},
        {"benchmarks": ()},
        {"benchmarks": ("stream", "stream")},
        {"agent_args": ("--ntimes",)},
        {"agent_args": ("--output", "/etc/passwd")},
        {"agent_args": ("--ntimes", "5; id")},
        {"agent_args": ("--ntimes", "-1")},
        {"collection_method": "local"},
        {"market": "spot; id"},
        {"agent_sha256": "abc"},
        {"watchdog_minutes": 0},
        {"sample": -1},
        {"result_content_type": "application/json\r\nX-Evil: 1"},
    ],
)
def test_other_bad_values_are_rejected(changes: dict[str, Any]) -> None:
    with pytest.raises(UserError):
        render_user_data(params(**changes))


def test_shell_special_but_valid_url_arrives_verbatim(tmp_path: Path) -> None:
    """A URL may legally hold ; & ( ) * ! #: quoting must deliver it unchanged."""
    url = "https://h/a;b&c(d)*e!f#g?x=1&y=%24(id)"
    rc, calls, _ = run_script(render_user_data(params(result_url=url)), tmp_path)
    assert rc == 0
    assert calls_of(calls, "curl")[1][-1] == url


def test_quoting_alone_holds_against_hostile_values(tmp_path: Path) -> None:
    """Defence in depth: skip validation; every hostile value still arrives as one argv."""
    hostile_id = "x'; touch pwned; echo '$(touch pwned2)`touch pwned3`\n;rm -rf /"
    hostile_url = "https://h/$(touch pwned4)'\"`touch pwned5`;rm -rf / \n"
    p = params(
        run_id=hostile_id,
        task_id=hostile_id,
        instance_type=hostile_id,
        region=hostile_id,
        result_url=hostile_url,
        agent_args=("--ntimes", hostile_id),
    )
    script = userdata._render(p)
    subprocess.run([BASH, "-n"], input=script, text=True, check=True)
    rc, calls, _ = run_script(script, tmp_path)
    assert rc == 0
    (agent,) = calls_of(calls, "python3")
    for flag in ("--run-id", "--task-id", "--instance-type", "--region"):
        assert agent[agent.index(flag) + 1] == hostile_id
    assert agent[-2:] == ["--ntimes", hostile_id]
    assert calls_of(calls, "curl")[1][-1] == hostile_url
    assert not list(tmp_path.rglob("pwned*"))


def test_template_refuses_unquoted_output() -> None:
    """The environment's finalize rejects any {{ }} that skipped the shq filter."""
    template = userdata._template().environment.from_string("echo {{ value }}")
    with pytest.raises(jinja2.TemplateError):
        template.render(value="$(id)")
    assert userdata._template().environment.from_string("echo {{ v|shq }}").render(v="$(id)") == (
        "echo '$(id)'"
    )


def test_shq_refuses_surprising_types() -> None:
    with pytest.raises(TypeError):
        userdata.shq(["a"])
    with pytest.raises(TypeError):
        userdata.shq(True)
    with pytest.raises(ValueError):
        userdata.shq("a\0b")


def test_user_data_over_16kb_is_rejected() -> None:
    # Every value is valid; only the total size is wrong (moto would accept it).
    long_url = "https://h/" + "a" * 17000
    with pytest.raises(UserDataTooLarge):
        render_user_data(params(agent_url=long_url))
