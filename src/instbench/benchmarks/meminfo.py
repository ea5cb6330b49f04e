"""MemAvailable from /proc/meminfo: what every benchmark sizes its arrays against.

Stdlib-only, Python 3.9 (part of agent.pyz).
"""

from __future__ import annotations

from typing import Optional


def mem_available_bytes(path: str = "/proc/meminfo") -> Optional[int]:
    """MemAvailable in bytes, or None when the file is missing or unreadable."""
    try:
        with open(path, encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None
