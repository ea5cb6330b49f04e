"""What machine is this? An lscpu equivalent from /proc and /sys (stdlib, Python 3.9).

Why not run ``lscpu``: util-linux versions differ across AMIs in what they print and how,
and a parser of its human output breaks silently. The kernel's files are the source lscpu
reads anyway, they are stable ABI, and reading them relative to a ``root`` lets tests
replay recorded trees of machines we do not have (Graviton, two-socket Intel).

The returned dict follows ``SystemInfo`` in instbench/results/schema.py (the agent cannot
import pydantic; the controller validates). Every file may be missing or garbled (containers,
odd kernels, unreadable sysfs): each value then degrades to a documented default instead of
failing the benchmark run. ``root`` relocates file reads only; values that come from system
calls (architecture, page size, memory size, kernel release, CPU count) are taken from the
running system when the tree does not record them. Recorded trees may hold two files with
command output for that purpose: ``uname-m`` and ``getconf-PAGESIZE``.
"""

from __future__ import annotations

import os
import platform
import re
import shlex
from typing import Any, Dict, FrozenSet, List, Optional, Set, Tuple

from instbench.agent import imds

# Arm implementer codes and part numbers (MIDR_EL1 fields). The values come from Arm's
# public documentation: the Technical Reference Manual of each core ("Main ID Register,
# MIDR_EL1"), also collected in util-linux sys-utils/lscpu-arm.c.
_ARM_IMPLEMENTERS = {
    0x41: "ARM",
    0x42: "Broadcom",
    0x43: "Cavium",
    0x46: "Fujitsu",
    0x48: "HiSilicon",
    0x4E: "NVIDIA",
    0x50: "APM",
    0x51: "Qualcomm",
    0x61: "Apple",
    0xC0: "Ampere",
}
_ARM_PARTS = {
    0xD03: "Cortex-A53",
    0xD07: "Cortex-A57",
    0xD08: "Cortex-A72",
    0xD0C: "Neoverse-N1",
    0xD40: "Neoverse-V1",
    0xD49: "Neoverse-N2",
    0xD4F: "Neoverse-V2",
    0xD84: "Neoverse-V3",
    0xD8E: "Neoverse-N3",
}
"""Parts of implementer 0x41 (Arm Ltd) that appear in servers."""

_GRAVITON = {
    0xD08: "Graviton",  # a1: Cortex-A72
    0xD0C: "Graviton2",  # *6g: Neoverse-N1
    0xD40: "Graviton3",  # *7g, Graviton3E: Neoverse-V1
    0xD4F: "Graviton4",  # *8g: Neoverse-V2
}
"""Which AWS Graviton generation uses which Arm core (AWS Graviton documentation)."""

_X86_MANUFACTURERS = {"GenuineIntel": "Intel", "AuthenticAMD": "AMD"}
_CACHE_TYPES = ("Data", "Instruction", "Unified")
_CPU_DIR = "sys/devices/system/cpu"
_CHUNK = 64 * 1024
_MAX_FILE_BYTES = 8 * 1024 * 1024
"""Upper bound per file; /proc/cpuinfo of a 448-vCPU instance is well under 1 MiB."""


class _Tree:
    """Reads files relative to a root; optionally remembers what it read (for `record`)."""

    def __init__(self, root: str, trace: bool = False) -> None:
        self.root = root
        self.live = os.path.realpath(root) == os.path.realpath("/")
        self.trace: Optional[Dict[str, bytes]] = {} if trace else None

    def read(self, rel: str) -> Optional[str]:
        """Text of ``rel``, or None when it is missing or unreadable."""
        rel = rel.lstrip("/")
        chunks: List[bytes] = []
        try:
            # Small reads: /proc/sys files fail with ENOMEM when asked for megabytes at once.
            with open(os.path.join(self.root, rel), "rb", buffering=0) as fh:
                for _ in range(_MAX_FILE_BYTES // _CHUNK):
                    chunk = fh.read(_CHUNK)
                    if not chunk:
                        break
                    chunks.append(chunk)
        except OSError:
            return None
        data = b"".join(chunks)
        if self.trace is not None:
            self.trace[rel] = data
        return data.decode("utf-8", errors="replace")

    def recorded(self, name: str) -> Optional[str]:
        """A command-output file of a recorded tree; never consulted on the live root."""
        return None if self.live else self.read(name)

    def listdir(self, rel: str) -> List[str]:
        try:
            return sorted(os.listdir(os.path.join(self.root, rel.lstrip("/"))))
        except OSError:
            return []


# ------------------------------------------------------------------------- parsers


def parse_cpu_list(text: Optional[str]) -> List[int]:
    """CPU numbers of a kernel list such as ``0-3,8-11`` (empty list if unparsable)."""
    if not text:
        return []
    cpus: Set[int] = set()
    for part in text.strip().split(","):
        part = part.strip()
        if not part:
            continue
        lo, sep, hi = part.partition("-")
        try:
            if sep:
                cpus.update(range(int(lo), int(hi) + 1))
            else:
                cpus.add(int(part))
        except ValueError:
            return []
    return sorted(cpus)


def parse_size(text: Optional[str]) -> Optional[int]:
    """Bytes of a sysfs cache size such as ``32K``, ``1024K``, ``32M``; None if unparsable."""
    if not text:
        return None
    m = re.fullmatch(r"\s*(\d+)\s*([KMG]?)i?B?\s*", text, flags=re.IGNORECASE)
    if not m:
        return None
    scale = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}[m.group(2).upper()]
    return int(m.group(1)) * scale


def selected_value(text: Optional[str]) -> Optional[str]:
    """The ``[bracketed]`` choice of a sysfs policy file such as THP ``enabled``."""
    if text is None:
        return None
    m = re.search(r"\[([^\]]+)\]", text)
    if m:
        return m.group(1).strip()
    words = text.split()
    return words[0] if len(words) == 1 else None


def parse_os_release(text: str) -> Dict[str, str]:
    """KEY=value pairs of os-release(5); values may be quoted shell-style."""
    out: Dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        try:
            words = shlex.split(value)
        except ValueError:
            words = [value.strip().strip("\"'")]
        out[key.strip()] = " ".join(words)
    return out


def parse_cpuinfo(text: str) -> List[Dict[str, str]]:
    """Blank-line separated blocks of ``key : value`` lines, in file order."""
    blocks: List[Dict[str, str]] = []
    current: Dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if current:
                blocks.append(current)
                current = {}
            continue
        key, sep, value = line.partition(":")
        if sep:
            current.setdefault(key.strip(), value.strip())
    if current:
        blocks.append(current)
    return blocks


def parse_midr(text: Optional[str]) -> Optional[Tuple[int, int]]:
    """(implementer, part) of a MIDR_EL1 value such as ``0x00000000413fd0c1``.

    Layout (Arm ARM, MIDR_EL1): implementer bits 31:24, variant 23:20, architecture
    19:16, part number 15:4, revision 3:0.
    """
    value = _to_int(text)
    if value is None or value < 0:
        return None
    return (value >> 24) & 0xFF, (value >> 4) & 0xFFF


def normalise_architecture(name: str) -> str:
    """EC2's names: aarch64/arm64 -> arm64, x86_64/amd64 -> x86_64; others lowercased."""
    n = name.strip().lower()
    if n in ("aarch64", "arm64", "aarch64_be"):
        return "arm64"
    if n in ("x86_64", "amd64", "x64", "x86-64"):
        return "x86_64"
    return n or "unknown"


def _to_int(text: Optional[str]) -> Optional[int]:
    if text is None:
        return None
    text = text.strip()
    try:
        return int(text, 16) if text.lower().startswith("0x") else int(text)
    except ValueError:
        return None


def _sysconf(name: str) -> Optional[int]:
    try:
        value = os.sysconf(name)
    except (AttributeError, ValueError, OSError):
        return None
    return value if value > 0 else None


# ------------------------------------------------------------------------ sections


def _architecture(tree: _Tree, cpuinfo: Dict[str, str]) -> str:
    """Recorded ``uname-m``, else inferred from cpuinfo (recorded trees); else platform."""
    if not tree.live:
        recorded = tree.recorded("uname-m")
        if recorded and recorded.strip():
            return normalise_architecture(recorded)
        if "CPU implementer" in cpuinfo:
            return "arm64"
        if "vendor_id" in cpuinfo:
            return "x86_64"
    return normalise_architecture(platform.machine())


def _cpu_ids(tree: _Tree, name: str) -> List[int]:
    return parse_cpu_list(tree.read(f"{_CPU_DIR}/{name}"))


def _cpu_dirs(tree: _Tree) -> List[int]:
    found = [int(n[3:]) for n in tree.listdir(_CPU_DIR) if re.fullmatch(r"cpu\d+", n)]
    return sorted(found)


def _topology(
    tree: _Tree, cpus: List[int], blocks: List[Dict[str, str]], online_count: int
) -> Tuple[int, int, int]:
    """(sockets, cores_per_socket, threads_per_core).

    From sysfs topology of the online CPUs: packages are distinct physical_package_id,
    cores distinct core_cpus_list (thread_siblings_list on older kernels, else the pair
    package/core_id). Fallback: x86 cpuinfo "physical id"/"core id". Last resort: one
    socket, one core per online CPU, no SMT.
    """
    packages: Set[Optional[int]] = set()
    cores: Set[Any] = set()
    seen = 0
    for cpu in cpus:
        base = f"{_CPU_DIR}/cpu{cpu}/topology/"
        pkg = _to_int(tree.read(base + "physical_package_id"))
        core_id = _to_int(tree.read(base + "core_id"))
        siblings = parse_cpu_list(
            tree.read(base + "core_cpus_list") or tree.read(base + "thread_siblings_list")
        )
        if pkg is None and core_id is None and not siblings:
            continue
        seen += 1
        packages.add(pkg)
        key: Any = (
            frozenset(siblings) if siblings else (pkg, core_id, cpu if core_id is None else -1)
        )
        cores.add(key)
    if not seen:
        procs = [b for b in blocks if "processor" in b]
        ids = {(b.get("physical id"), b.get("core id")) for b in procs}
        if procs and all(p is not None and c is not None for p, c in ids):
            packages = {_to_int(p) for p, _ in ids}
            cores = set(ids)
            seen = len(procs)
    if not seen:
        return 1, max(1, online_count), 1
    sockets = max(1, len(packages))
    ncores = max(1, len(cores))
    threads = max(1, round(seen / ncores))
    return sockets, max(1, ncores // sockets), threads


def _arm_cpu(info: Dict[str, str], on_ec2: bool) -> Dict[str, Any]:
    impl_text = info.get("CPU implementer", "").lower()
    part_text = info.get("CPU part", "").lower()
    impl = _to_int(impl_text)
    part = _to_int(part_text)
    vendor = _ARM_IMPLEMENTERS.get(impl if impl is not None else -1, impl_text or "unknown")
    part_name = _ARM_PARTS.get(part if part is not None else -1) if impl == 0x41 else None
    core = part_name or f"Arm part {part_text or 'unknown'}"
    if impl == 0x41 and on_ec2:
        # Arm Ltd cores on EC2 are Graviton; the same cores elsewhere (Ampere Altra is a
        # Neoverse-N1) are not, hence the EC2 condition.
        manufacturer = "AWS"
        generation = _GRAVITON.get(part if part is not None else -1, "Graviton")
        model_name = f"AWS {generation} ({core})"
    elif impl == 0x61:
        manufacturer = "Apple"
        model_name = info.get("model name") or f"Apple part {part_text or 'unknown'}"
    else:
        manufacturer = "Other"
        model_name = info.get("model name") or f"{vendor} {core}"
    return {
        "vendor": vendor,
        "manufacturer": manufacturer,
        "model_name": model_name,
        "family": impl_text or None,
        "model": part_text or None,
        "stepping": info.get("CPU revision") or None,
        "flags": info.get("Features", "").split(),
    }


def _x86_cpu(info: Dict[str, str]) -> Dict[str, Any]:
    vendor = info.get("vendor_id") or "unknown"
    return {
        "vendor": vendor,
        "manufacturer": _X86_MANUFACTURERS.get(vendor, "Other"),
        "model_name": info.get("model name") or vendor,
        "family": info.get("cpu family") or None,
        "model": info.get("model") or None,
        "stepping": info.get("stepping") or None,
        "flags": info.get("flags", "").split(),
    }


def _max_mhz(tree: _Tree, first_cpu: int, info: Dict[str, str]) -> Optional[float]:
    """cpufreq cpuinfo_max_freq (kHz); else cpuinfo "cpu MHz" (what a VM reports); else None."""
    khz = _to_int(tree.read(f"{_CPU_DIR}/cpu{first_cpu}/cpufreq/cpuinfo_max_freq"))
    if khz and khz > 0:
        return khz / 1000.0
    try:
        mhz = float(info.get("cpu MHz", ""))
    except ValueError:
        return None
    return mhz if mhz > 0 else None


def _cpu(
    tree: _Tree, blocks: List[Dict[str, str]], info: Dict[str, str], on_ec2: bool
) -> Tuple[Dict[str, Any], List[int]]:
    """CPU section and the online CPU numbers.

    logical_cpus: ``present``, else cpuN directories, else cpuinfo processors, else
    os.cpu_count() on the live system, else 1. online_cpus: ``online``, else logical_cpus.
    """
    dirs = _cpu_dirs(tree)
    if "CPU implementer" not in info and "vendor_id" not in info:
        # Arm kernels also expose MIDR_EL1 in sysfs; some cpuinfo variants (containers,
        # old kernels) lack the implementer/part lines the core is identified by.
        for n in [0, *dirs][:2]:
            midr = parse_midr(tree.read(f"{_CPU_DIR}/cpu{n}/regs/identification/midr_el1"))
            if midr is not None:
                info = {
                    **info,
                    "CPU implementer": f"0x{midr[0]:02x}",
                    "CPU part": f"0x{midr[1]:03x}",
                }
                break
    cpu = _arm_cpu(info, on_ec2) if "CPU implementer" in info else _x86_cpu(info)
    present = _cpu_ids(tree, "present") or dirs
    logical = len(present) or len([b for b in blocks if "processor" in b])
    if not logical:
        logical = (os.cpu_count() or 1) if tree.live else 1
    online = _cpu_ids(tree, "online") or present or dirs
    online_count = len(online) or logical
    sockets, cores_per_socket, threads = _topology(tree, online or dirs, blocks, online_count)
    first = online[0] if online else 0
    cpu.update(
        sockets=sockets,
        cores_per_socket=cores_per_socket,
        threads_per_core=threads,
        logical_cpus=logical,
        online_cpus=online_count,
        max_mhz=_max_mhz(tree, first, info),
    )
    return cpu, online


def _caches(tree: _Tree, online: List[int]) -> List[Dict[str, Any]]:
    """Caches of CPU 0 (first online CPU if cpu0 has none), ordered L1 to LLC.

    ``instances`` counts distinct shared_cpu_list groups of the same index over the online
    CPUs. Entries without a level or with a type other than Data/Instruction/Unified are
    skipped; an unknown size is 0; a missing shared_cpu_list counts as one CPU.
    """
    first = 0 if tree.listdir(f"{_CPU_DIR}/cpu0/cache") else (online[0] if online else 0)
    base = f"{_CPU_DIR}/cpu{first}/cache"
    indexes = [n for n in tree.listdir(base) if re.fullmatch(r"index\d+", n)]
    caches: List[Dict[str, Any]] = []
    for index in sorted(indexes, key=lambda n: int(n[5:])):
        d = f"{base}/{index}/"
        level = _to_int(tree.read(d + "level"))
        ctype = (tree.read(d + "type") or "").strip()
        if level is None or not 1 <= level <= 4 or ctype not in _CACHE_TYPES:
            continue
        shared = parse_cpu_list(tree.read(d + "shared_cpu_list"))
        groups: Set[FrozenSet[int]] = set()
        for cpu in online:
            if cpu == first:
                members = shared
            else:
                members = parse_cpu_list(
                    tree.read(f"{_CPU_DIR}/cpu{cpu}/cache/{index}/shared_cpu_list")
                )
            if members:
                groups.add(frozenset(members))
        line = _to_int(tree.read(d + "coherency_line_size"))
        caches.append(
            {
                "level": level,
                "type": ctype,
                "size_bytes": parse_size(tree.read(d + "size")) or 0,
                "instances": max(1, len(groups)),
                "shared_cpu_count": max(1, len(shared)),
                "line_size_bytes": line if line and line > 0 else None,
            }
        )
    caches.sort(key=lambda c: (c["level"], _CACHE_TYPES.index(c["type"])))
    return caches


def _numa_nodes(tree: _Tree) -> int:
    """Count of /sys/devices/system/node/online; 1 when absent (no NUMA support exposed)."""
    return max(1, len(parse_cpu_list(tree.read("sys/devices/system/node/online"))))


def _page_size(tree: _Tree) -> int:
    """sysconf(SC_PAGE_SIZE) live; a recorded ``getconf-PAGESIZE``; else sysconf; else 4096."""
    recorded = _to_int(tree.recorded("getconf-PAGESIZE"))
    if recorded and recorded > 0:
        return recorded
    return _sysconf("SC_PAGE_SIZE") or 4096


def _memory(tree: _Tree, page_size: int) -> Dict[str, Any]:
    """MemTotal / MemAvailable / Hugepagesize from meminfo (kB -> bytes).

    Missing MemTotal: physical pages x page size from sysconf (1 byte if even that fails,
    so the document stays valid and the oddity visible). Missing MemAvailable: MemFree,
    else sysconf available pages, else 0. Missing Hugepagesize: None.
    """
    values: Dict[str, int] = {}
    for line in (tree.read("proc/meminfo") or "").splitlines():
        key, sep, rest = line.partition(":")
        words = rest.split()
        if sep and words and words[0].isdigit():
            scale = 1024 if len(words) > 1 and words[1].lower() == "kb" else 1
            values[key.strip()] = int(words[0]) * scale
    total = values.get("MemTotal")
    if not total:
        pages = _sysconf("SC_PHYS_PAGES")
        total = pages * page_size if pages else 1
    available = values.get("MemAvailable", values.get("MemFree"))
    if available is None:
        pages = _sysconf("SC_AVPHYS_PAGES")
        available = pages * page_size if pages else 0
    return {
        "total_bytes": total,
        "available_bytes": available,
        "hugepage_size_bytes": values.get("Hugepagesize"),
    }


def _os(tree: _Tree) -> Dict[str, Any]:
    """/etc/os-release, else /usr/lib/os-release (os-release(5)); ID defaults to "linux".

    Kernel: /proc/sys/kernel/osrelease, else platform.release(), else "unknown".
    """
    text = tree.read("etc/os-release") or tree.read("usr/lib/os-release") or ""
    fields = parse_os_release(text)
    kernel = (tree.read("proc/sys/kernel/osrelease") or "").strip() or platform.release()
    return {
        "id": fields.get("ID") or "linux",
        "version_id": fields.get("VERSION_ID") or None,
        "pretty_name": fields.get("PRETTY_NAME") or None,
        "kernel": kernel or "unknown",
    }


def _collect(tree: _Tree, identity: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    blocks = parse_cpuinfo(tree.read("proc/cpuinfo") or "")
    # Fields of the first processor, completed by global lines (old Arm kernels put
    # "Hardware" etc. outside the per-CPU blocks).
    info: Dict[str, str] = {}
    for block in blocks:
        if "processor" not in block:
            info.update(block)
    first = next((b for b in blocks if "processor" in b), {})
    info.update(first)
    on_ec2 = identity is not None or imds.ec2_markers(tree.read)
    cpu, online = _cpu(tree, blocks, info, on_ec2)
    page_size = _page_size(tree)
    thp = "sys/kernel/mm/transparent_hugepage/"
    return {
        "architecture": _architecture(tree, info),
        "cpu": cpu,
        "numa_nodes": _numa_nodes(tree),
        "caches": _caches(tree, online),
        "memory": _memory(tree, page_size),
        "os": _os(tree),
        "page_size_bytes": page_size,
        "thp": {
            "enabled": selected_value(tree.read(thp + "enabled")),
            "defrag": selected_value(tree.read(thp + "defrag")),
        },
        "python_version": platform.python_version(),
        "ec2": dict(identity) if identity is not None else None,
    }


def collect(root: str = "/", identity: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """The ``system_info`` section for the machine whose files are under ``root``.

    ``identity`` is what imds.fetch_identity returned (None off EC2); it is stored as
    ``ec2`` and also tells that an Arm Ltd core is an AWS Graviton.
    """
    return _collect(_Tree(root), identity)


def record(dest: str, root: str = "/") -> List[str]:
    """Copy every file ``collect`` reads under ``root`` into ``dest``; return their paths.

    Why: a recorded tree replays this machine's detection anywhere (tests, bug reports).
    When ``root`` is the live system, the system-call values are written as ``uname-m`` and
    ``getconf-PAGESIZE`` so that the replay does not take them from the replaying machine.
    """
    tree = _Tree(root, trace=True)
    _collect(tree, None)
    files: Dict[str, bytes] = dict(tree.trace or {})
    if tree.live:
        files["uname-m"] = (platform.machine() + "\n").encode()
        page = _sysconf("SC_PAGE_SIZE")
        if page:
            files["getconf-PAGESIZE"] = f"{page}\n".encode()
    for rel, data in files.items():
        target = os.path.join(dest, rel)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "wb") as fh:
            fh.write(data)
    return sorted(files)
