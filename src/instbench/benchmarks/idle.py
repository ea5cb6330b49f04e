"""`idle`: a fixed-duration test benchmark that measures nothing about the machine.

It exists so that orchestration can be measured with a known task time
(bench/orchestrate.py: parallel efficiency = N x task time / (C x wall)) and so that fault
tests have a benchmark whose duration they control. Its results are never published.
Stdlib-only, Python 3.9.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Dict, Tuple

VERSION = "1.0.0"
DEFAULT_SECONDS = 5
QUICK_SECONDS = 1


def run_idle(seconds: int, log: Callable[[str], None]) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """Wait `seconds` (monotonic clock) and report how long the wait really took."""
    log(f"idle: waiting {seconds} s")
    start = time.monotonic()
    deadline = start + seconds
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        time.sleep(left)
    elapsed = time.monotonic() - start
    section = {"version": VERSION, "seconds_requested": seconds, "seconds_elapsed": elapsed}
    return section, {}
