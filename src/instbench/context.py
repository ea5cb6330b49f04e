"""What a command needs from the outside world, injected rather than global.

Tests build a `Context` with their own console (recording output) and settings, and run
the real command code in-process; the CLI builds one from flags and the environment.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from rich.console import Console


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Context:
    """Console for humans, stderr for errors, a clock, and the environment."""

    console: Console = field(default_factory=lambda: Console(highlight=False))
    err_console: Console = field(default_factory=lambda: Console(stderr=True, highlight=False))
    clock: Callable[[], datetime] = _utcnow
    environ: dict[str, str] = field(default_factory=lambda: dict(os.environ))

    @property
    def interactive(self) -> bool:
        """True when output goes to a terminal: live views instead of plain log lines."""
        return self.console.is_terminal and sys.stdout.isatty()
