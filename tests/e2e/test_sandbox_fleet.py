"""The whole flow in the sandbox: real user data, real agent, moto over HTTP.

Three types of different architectures/vendors (Intel, AMD, Graviton) run quick STREAM;
then every result must be stored and valid, every instance terminated, the run's security
group gone, and nothing stored outside the layout.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from instbench.journal import Journal
from instbench.results.validate import parse_result

INSTBENCH = str(Path(sys.executable).parent / "instbench")
TYPES = ["m7i.large", "m7a.large", "c7g.large"]
RAW = re.compile(
    r"^raw/stream/(?P<type>[a-z0-9.-]+)/us-east-1/\d{4}/\d{2}/\d{2}/(?P<run>[\w.-]+)-0\.json$"
)


def test_sandbox_run_three_architectures(tmp_path: Path) -> None:
    journal = tmp_path / "journal.sqlite"
    proc = subprocess.run(
        [
            INSTBENCH,
            "run",
            "--sandbox",
            "--instance-types",
            ",".join(TYPES),
            "--quick",
            "--output-dir",
            str(tmp_path / "data"),
            "--journal",
            str(journal),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads(proc.stdout[proc.stdout.index("{\n") :])
    assert summary["succeeded"] is True
    run_id = summary["run_id"]

    data = tmp_path / "data"
    keys = sorted(p.relative_to(data).as_posix() for p in data.rglob("*") if p.is_file())
    raw = [k for k in keys if k.startswith("raw/")]
    assert len(raw) == 3
    seen = set()
    for key in raw:
        match = RAW.match(key)
        assert match, key
        assert match["run"] == run_id
        doc = parse_result((data / key).read_bytes())
        assert doc.metadata.collection_method == "sandbox"
        assert doc.metadata.instance_type == match["type"]
        assert doc.metadata.quick is True
        assert doc.system_info.ec2 is not None
        assert doc.system_info.ec2.instance_type == match["type"]
        seen.add(match["type"])
    assert seen == set(TYPES)
    others = [k for k in keys if not k.startswith(("raw/", f"runs/{run_id}/", f"logs/{run_id}/"))]
    assert others == []

    j = Journal(journal)
    tasks = j.tasks(run_id)
    assert {t.state for t in tasks} == {"result_stored"}
    assert all(t.terminated for t in tasks)
    assert j.run(run_id).security_group_id is None
    assert j.run(run_id).status == "succeeded"
    manifest = json.loads((data / "runs" / run_id / "manifest.json").read_text())
    assert manifest["status"] == "succeeded"
