"""Every `instbench` command, `--help` included, imports the whole CLI first: a heavy
library imported at module load is paid by all of them. scipy.stats alone took ~0.6 s of
a 1.07 s `instbench --help`; change detection now imports it when it first tests."""

from __future__ import annotations

import subprocess
import sys


def test_the_cli_loads_without_scipy() -> None:
    code = (
        "import sys, instbench.cli.app; "
        "print(sorted(m for m in sys.modules if m.startswith('scipy')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
