"""Build agent.pyz: the stdlib-only agent and benchmarks as one reproducible zipapp.

The archive holds `instbench/__init__.py`, `instbench/agent/`, `instbench/benchmarks/`
(Python modules and C kernels) and a `__main__.py`. Entries are sorted and stamped with a
fixed date, so the same sources always give the same bytes and the same sha256: the
controller uploads it once per run under `artifacts/{sha256}.pyz` and the user data checks
the digest before running it.

    python -m instbench.agentpkg OUTPUT.pyz
"""

from __future__ import annotations

import hashlib
import io
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import instbench

_PACKAGE_ROOT = Path(instbench.__file__).parent
_INCLUDED_DIRS = ("agent", "benchmarks")
_SUFFIXES = {".py", ".c", ".h"}
_FIXED_DATE = (1980, 1, 1, 0, 0, 0)
_MAIN = (
    b"# instbench agent zipapp entry point\n"
    b"import sys\n"
    b"from instbench.agent.cli import main\n"
    b"sys.exit(main())\n"
)


@dataclass(frozen=True)
class AgentArchive:
    """The built zipapp and its digest."""

    data: bytes
    sha256: str


def _members() -> list[tuple[str, Path]]:
    files = [("instbench/__init__.py", _PACKAGE_ROOT / "__init__.py")]
    for sub in _INCLUDED_DIRS:
        for path in sorted((_PACKAGE_ROOT / sub).rglob("*")):
            if path.is_file() and path.suffix in _SUFFIXES and "__pycache__" not in path.parts:
                files.append((path.relative_to(_PACKAGE_ROOT.parent).as_posix(), path))
    return sorted(files)


def build_agent() -> AgentArchive:
    """Build the zipapp in memory."""
    buf = io.BytesIO()
    buf.write(b"#!/usr/bin/env python3\n")
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        entries = [("__main__.py", _MAIN)] + [(n, p.read_bytes()) for n, p in _members()]
        for name, content in entries:
            info = zipfile.ZipInfo(name, date_time=_FIXED_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, content)
    data = buf.getvalue()
    return AgentArchive(data=data, sha256=hashlib.sha256(data).hexdigest())


def write_agent(path: Path) -> AgentArchive:
    """Build and write the zipapp to `path` (executable)."""
    archive = build_agent()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(archive.data)
    path.chmod(0o755)
    return archive


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "build/agent.pyz")
    built = write_agent(target)
    print(f"{target} sha256={built.sha256} bytes={len(built.data)}")
