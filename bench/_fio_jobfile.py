"""The reference side of the storage fidelity scripts: a fio job file run by plain fio.

bench/storage_fidelity.py and bench/storage_burst_fidelity.py both check instbench's fio
command line against the same job written out by hand. Their job files share one [global]
header (one preconditioned file from offset 0, direct I/O, time based, one job), so it is
written here once, and so is running the file and reading fio's JSON. Not a script: the
two scripts import it (their own directory is first on sys.path when run as
`python bench/NAME.py`).
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from collections.abc import Mapping
from typing import Any


def job_file(
    path: str,
    size: int,
    engine: str,
    runtime: int,
    name: str,
    global_options: Mapping[str, object],
    job_options: Mapping[str, object],
) -> str:
    """A job file: the shared [global] header, then `global_options`, then job `name`.

    The options keep their order; each is written as `key=value` on a line of its own.
    """
    lines = [
        "[global]",
        f"filename={path}",
        f"size={size}",
        "offset=0",
        f"ioengine={engine}",
        "direct=1",
        "time_based=1",
        f"runtime={runtime}",
        *(f"{key}={value}" for key, value in global_options.items()),
        "numjobs=1",
        "",
        f"[{name}]",
        *(f"{key}={value}" for key, value in job_options.items()),
    ]
    return "\n".join(lines) + "\n"


def run_job_file(fio: str, text: str, timeout: float | None = None) -> dict[str, Any]:
    """Run `text` as a job file with plain `fio --output-format=json`; fio's JSON document.

    The job file lives in a temporary file for the run only. Anything fio prints before
    the JSON (warnings) is skipped.
    """
    with tempfile.NamedTemporaryFile("w", suffix=".fio", delete=False) as fh:
        fh.write(text)
        jobfile = fh.name
    try:
        out = subprocess.run(
            [fio, "--output-format=json", jobfile],
            capture_output=True,
            text=True,
            check=True,
            timeout=timeout,
        ).stdout
    finally:
        os.unlink(jobfile)
    doc: dict[str, Any] = json.loads(out[out.index("{") :])
    return doc
