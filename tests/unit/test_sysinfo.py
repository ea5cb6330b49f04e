"""Machine detection replayed on recorded trees: this VM, a Graviton3, a two-socket Intel."""

from __future__ import annotations

import os
import platform
import shutil
from pathlib import Path
from typing import Any

import pytest

from instbench.agent import sysinfo
from instbench.results.schema import SystemInfo

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "sysinfo"
KiB, MiB = 1024, 1024 * 1024


def _valid(d: dict[str, Any]) -> SystemInfo:
    return SystemInfo.model_validate(d)


def _write(root: Path, rel: str, text: str) -> None:
    path = os.path.join(root, rel)
    parent = os.path.dirname(path)
    if not os.path.isdir(parent):
        os.makedirs(parent)
    with open(path, "w") as fh:
        fh.write(text)


def _caches(d: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [
        (
            c["level"],
            c["type"],
            c["size_bytes"],
            c["instances"],
            c["shared_cpu_count"],
            c["line_size_bytes"],
        )
        for c in d["caches"]
    ]


# --------------------------------------------------------------- recorded machines


def test_this_vm_recorded_tree() -> None:
    d = sysinfo.collect(str(FIXTURES / "kvm-amd-epyc"))
    _valid(d)
    cpu = d["cpu"]
    assert d["architecture"] == "x86_64"
    assert (cpu["vendor"], cpu["manufacturer"], cpu["model_name"]) == (
        "AuthenticAMD",
        "AMD",
        "AMD EPYC",
    )
    assert (cpu["family"], cpu["model"], cpu["stepping"]) == ("25", "1", "1")
    assert (cpu["sockets"], cpu["cores_per_socket"], cpu["threads_per_core"]) == (1, 2, 1)
    assert (cpu["logical_cpus"], cpu["online_cpus"]) == (2, 2)
    assert cpu["max_mhz"] == pytest.approx(2445.406)
    assert {"avx2", "sha_ni", "hypervisor"} <= set(cpu["flags"])
    assert d["numa_nodes"] == 1
    assert _caches(d) == [
        (1, "Data", 32 * KiB, 2, 1, 64),
        (1, "Instruction", 32 * KiB, 2, 1, 64),
        (2, "Unified", 512 * KiB, 2, 1, 64),
        (3, "Unified", 32 * MiB, 1, 2, 64),
    ]
    assert d["memory"] == {
        "total_bytes": 24683656 * KiB,
        "available_bytes": 22750964 * KiB,
        "hugepage_size_bytes": 2 * MiB,
    }
    assert d["os"]["id"] == "debian" and d["os"]["version_id"] == "12"
    assert d["os"]["pretty_name"] == "Debian GNU/Linux 12 (bookworm)"
    assert d["page_size_bytes"] == 4096
    assert d["thp"] == {"enabled": "madvise", "defrag": "madvise"}
    assert d["ec2"] is None


def test_graviton3_c7g_2xlarge() -> None:
    d = sysinfo.collect(str(FIXTURES / "c7g.2xlarge"))
    _valid(d)
    cpu = d["cpu"]
    assert d["architecture"] == "arm64"  # no uname-m in this tree: inferred from cpuinfo
    assert cpu["vendor"] == "ARM" and cpu["manufacturer"] == "AWS"
    assert cpu["model_name"] == "AWS Graviton3 (Neoverse-V1)"
    assert (cpu["family"], cpu["model"], cpu["stepping"]) == ("0x41", "0xd40", "1")
    assert {"sve", "svebf16", "i8mm", "atomics"} <= set(cpu["flags"])
    assert (cpu["sockets"], cpu["cores_per_socket"], cpu["threads_per_core"]) == (1, 8, 1)
    assert (cpu["logical_cpus"], cpu["online_cpus"]) == (8, 8)
    assert cpu["max_mhz"] is None  # Graviton reports neither cpufreq nor "cpu MHz"
    assert d["numa_nodes"] == 1
    assert _caches(d) == [
        (1, "Data", 64 * KiB, 8, 1, 64),
        (1, "Instruction", 64 * KiB, 8, 1, 64),
        (2, "Unified", 1 * MiB, 8, 1, 64),
        (3, "Unified", 32 * MiB, 1, 8, 64),
    ]
    assert d["memory"]["total_bytes"] == 15896212 * KiB
    assert d["os"] == {
        "id": "amzn",
        "version_id": "2023",
        "pretty_name": "Amazon Linux 2023.6.20241212",
        "kernel": "6.1.119-129.201.amzn2023.aarch64",
    }
    assert d["page_size_bytes"] == 4096
    assert d["thp"] == {"enabled": "madvise", "defrag": "madvise"}


def test_arm_core_off_ec2_is_not_called_graviton(tmp_path: Path) -> None:
    """Ampere Altra is a Neoverse-N1 too: without an EC2 signal, no AWS/Graviton label."""
    root = tmp_path / "arm"
    shutil.copytree(FIXTURES / "c7g.2xlarge", root)
    shutil.rmtree(root / "sys/devices/virtual/dmi")
    d = sysinfo.collect(str(root))
    _valid(d)
    assert (d["cpu"]["manufacturer"], d["cpu"]["model_name"]) == ("Other", "ARM Neoverse-V1")

    identity = {
        "instance_id": "i-0123456789abcdef0",
        "instance_type": "c7g.2xlarge",
        "availability_zone": "us-east-1a",
        "region": "us-east-1",
        "ami_id": "ami-0123456789abcdef0",
        "account_id": None,
    }
    d = sysinfo.collect(str(root), identity=identity)
    info = _valid(d)
    assert d["cpu"]["model_name"] == "AWS Graviton3 (Neoverse-V1)"
    assert info.ec2 is not None and info.ec2.instance_type == "c7g.2xlarge"


@pytest.mark.parametrize(
    ("part", "expected"),
    [
        ("0xd08", "AWS Graviton (Cortex-A72)"),
        ("0xd0c", "AWS Graviton2 (Neoverse-N1)"),
        ("0xd40", "AWS Graviton3 (Neoverse-V1)"),
        ("0xd4f", "AWS Graviton4 (Neoverse-V2)"),
        ("0xd84", "AWS Graviton (Neoverse-V3)"),
        ("0xfff", "AWS Graviton (Arm part 0xfff)"),
    ],
)
def test_graviton_generations(tmp_path: Path, part: str, expected: str) -> None:
    _write(
        tmp_path, "proc/cpuinfo", f"processor\t: 0\nCPU implementer\t: 0x41\nCPU part\t: {part}\n"
    )
    _write(tmp_path, "sys/hypervisor/uuid", "ec2e1916-9099-7caf-fd21-012345abcdef\n")
    d = sysinfo.collect(str(tmp_path))
    _valid(d)
    assert d["cpu"]["model_name"] == expected and d["cpu"]["manufacturer"] == "AWS"


# ------------------------------------------------ two-socket Intel with SMT (generated)


def build_m7i_48xlarge(root: Path) -> None:
    """An m7i.48xlarge-like tree: 2 sockets x 48 cores x 2 threads, 2 NUMA nodes.

    CPU numbering as Linux enumerates it on EC2: 0-47 first threads of socket 0, 48-95
    first threads of socket 1, 96-191 their SMT siblings in the same order. Topology is
    written the pre-5.x way (thread_siblings_list, no core_cpus_list). Only the files
    collect reads are written, to keep the test fast.
    """
    flags = "fpu sse sse2 ht avx avx2 avx512f avx512bw amx_tile amx_bf16 hypervisor"
    blocks = []
    for cpu in range(192):
        first = cpu % 96
        socket, core = first // 48, first % 48
        blocks.append(
            f"processor\t: {cpu}\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 143\n"
            f"model name\t: Intel(R) Xeon(R) Platinum 8488C\nstepping\t: 8\n"
            f"cpu MHz\t\t: 2400.000\nphysical id\t: {socket}\ncore id\t\t: {core}\n"
            f"flags\t\t: {flags}\n"
        )
        topo = f"sys/devices/system/cpu/cpu{cpu}/topology/"
        _write(root, topo + "physical_package_id", f"{socket}\n")
        _write(root, topo + "core_id", f"{core}\n")
        _write(root, topo + "thread_siblings_list", f"{first},{first + 96}\n")
        lo = 48 * socket
        llc = f"{lo}-{lo + 47},{lo + 96}-{lo + 143}\n"
        for index, (level, ctype, size, shared) in enumerate(
            [
                (1, "Data", "48K", f"{first},{first + 96}\n"),
                (1, "Instruction", "32K", f"{first},{first + 96}\n"),
                (2, "Unified", "2048K", f"{first},{first + 96}\n"),
                (3, "Unified", "107520K", llc),
            ]
        ):
            cache = f"sys/devices/system/cpu/cpu{cpu}/cache/index{index}/"
            _write(root, cache + "shared_cpu_list", shared)
            if cpu == 0:  # the other attributes are read from CPU 0 only
                _write(root, cache + "level", f"{level}\n")
                _write(root, cache + "type", f"{ctype}\n")
                _write(root, cache + "size", f"{size}\n")
                _write(root, cache + "coherency_line_size", "64\n")
    _write(root, "proc/cpuinfo", "\n".join(blocks))
    _write(root, "sys/devices/system/cpu/present", "0-191\n")
    _write(root, "sys/devices/system/cpu/online", "0-191\n")
    _write(root, "sys/devices/system/node/online", "0-1\n")
    _write(root, "proc/meminfo", "MemTotal:       790123456 kB\nMemAvailable:   780000000 kB\n")
    _write(root, "sys/kernel/mm/transparent_hugepage/enabled", "[always] madvise never\n")
    _write(root, "uname-m", "x86_64\n")
    _write(root, "sys/devices/virtual/dmi/id/sys_vendor", "Amazon EC2\n")


@pytest.fixture(scope="module")
def m7i_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("m7i.48xlarge")
    build_m7i_48xlarge(root)
    return root


def test_two_socket_intel_with_smt(m7i_tree: Path) -> None:
    d = sysinfo.collect(str(m7i_tree))
    _valid(d)
    cpu = d["cpu"]
    assert d["architecture"] == "x86_64"
    assert (cpu["vendor"], cpu["manufacturer"]) == ("GenuineIntel", "Intel")
    assert cpu["model_name"] == "Intel(R) Xeon(R) Platinum 8488C"
    assert (cpu["sockets"], cpu["cores_per_socket"], cpu["threads_per_core"]) == (2, 48, 2)
    assert (cpu["logical_cpus"], cpu["online_cpus"]) == (192, 192)
    assert cpu["max_mhz"] == 2400.0
    assert "amx_tile" in cpu["flags"]
    assert d["numa_nodes"] == 2
    assert _caches(d) == [
        (1, "Data", 48 * KiB, 96, 2, 64),
        (1, "Instruction", 32 * KiB, 96, 2, 64),
        (2, "Unified", 2 * MiB, 96, 2, 64),
        (3, "Unified", 105 * MiB, 2, 96, 64),
    ]
    assert d["thp"] == {"enabled": "always", "defrag": None}


def test_cpuinfo_topology_when_sysfs_has_none(m7i_tree: Path, tmp_path: Path) -> None:
    """Without sysfs topology, x86 cpuinfo "physical id"/"core id" still gives 2x48x2."""
    (tmp_path / "proc").mkdir()
    shutil.copy(m7i_tree / "proc/cpuinfo", tmp_path / "proc/cpuinfo")
    cpu = sysinfo.collect(str(tmp_path))["cpu"]
    assert (cpu["sockets"], cpu["cores_per_socket"], cpu["threads_per_core"]) == (2, 48, 2)
    assert cpu["logical_cpus"] == 192


def test_offline_cpus_and_cpufreq(tmp_path: Path) -> None:
    _write(tmp_path, "proc/cpuinfo", "processor\t: 0\nvendor_id\t: GenuineIntel\ncpu MHz\t: 1.0\n")
    _write(tmp_path, "sys/devices/system/cpu/present", "0-7\n")
    _write(tmp_path, "sys/devices/system/cpu/online", "0-3,6\n")
    _write(tmp_path, "sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq", "3500000\n")
    cpu = sysinfo.collect(str(tmp_path))["cpu"]
    assert (cpu["logical_cpus"], cpu["online_cpus"]) == (8, 5)
    assert cpu["max_mhz"] == 3500.0
    # no topology anywhere: one socket, one core per online CPU
    assert (cpu["sockets"], cpu["cores_per_socket"], cpu["threads_per_core"]) == (1, 5, 1)


# ---------------------------------------------------------------- degraded input


def test_empty_tree_degrades_to_documented_defaults(tmp_path: Path) -> None:
    d = sysinfo.collect(str(tmp_path))
    _valid(d)
    cpu = d["cpu"]
    assert (cpu["vendor"], cpu["manufacturer"], cpu["model_name"]) == (
        "unknown",
        "Other",
        "unknown",
    )
    assert (cpu["sockets"], cpu["cores_per_socket"], cpu["threads_per_core"]) == (1, 1, 1)
    assert (cpu["logical_cpus"], cpu["online_cpus"], cpu["max_mhz"]) == (1, 1, None)
    assert cpu["flags"] == []
    assert d["architecture"] == sysinfo.normalise_architecture(platform.machine())
    assert d["numa_nodes"] == 1 and d["caches"] == []
    assert d["os"]["id"] == "linux" and d["os"]["kernel"] == (platform.release() or "unknown")
    assert d["thp"] == {"enabled": None, "defrag": None}
    assert d["memory"]["total_bytes"] > 0 and d["memory"]["hugepage_size_bytes"] is None
    assert d["page_size_bytes"] > 0


def test_garbage_files_never_crash(tmp_path: Path) -> None:
    junk = "\x00\xff garbage :: -- 1-x,,\n"
    for rel in (
        "proc/meminfo",
        "etc/os-release",
        "uname-m",
        "getconf-PAGESIZE",
        "sys/devices/system/cpu/present",
        "sys/devices/system/cpu/online",
        "sys/devices/system/node/online",
        "sys/devices/system/cpu/cpu0/topology/physical_package_id",
        "sys/devices/system/cpu/cpu0/topology/core_cpus_list",
        "sys/devices/system/cpu/cpu0/cache/index0/level",
        "sys/devices/system/cpu/cpu0/cache/index0/size",
        "sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq",
        "sys/kernel/mm/transparent_hugepage/enabled",
    ):
        _write(tmp_path, rel, junk)
    (tmp_path / "proc/cpuinfo").write_bytes(os.urandom(2048))
    _write(tmp_path, "sys/devices/system/cpu/cpu0/cache/index1/level", "2\n")
    _write(tmp_path, "sys/devices/system/cpu/cpu0/cache/index1/type", "Unified\n")
    _write(tmp_path, "sys/devices/system/cpu/cpu0/cache/index1/size", "lots\n")
    d = sysinfo.collect(str(tmp_path))
    d["architecture"] = "x86_64"  # the garbage uname-m is reported as is; the rest validates
    _valid(d)
    assert _caches(d) == [(2, "Unified", 0, 1, 1, None)]


# -------------------------------------------------------------------- live system


def test_live_machine_matches_its_recording(tmp_path: Path) -> None:
    live = sysinfo.collect()
    _valid(live)
    written = sysinfo.record(str(tmp_path))
    assert "proc/cpuinfo" in written and "uname-m" in written
    replay = sysinfo.collect(str(tmp_path))
    for d in (live, replay):
        d["memory"].pop("available_bytes")
    assert replay == live
    assert live["python_version"] == platform.python_version()


# ------------------------------------------------------------------------- parsers


@pytest.mark.parametrize(
    ("text", "cpus"),
    [
        ("0-3,8-11", [0, 1, 2, 3, 8, 9, 10, 11]),
        ("0", [0]),
        ("0,2,4\n", [0, 2, 4]),
        ("", []),
        (None, []),
        ("x-3", []),
    ],
)
def test_parse_cpu_list(text: str | None, cpus: list[int]) -> None:
    assert sysinfo.parse_cpu_list(text) == cpus


@pytest.mark.parametrize(
    ("text", "size"),
    [("32K", 32 * KiB), ("1024K\n", MiB), ("32M", 32 * MiB), ("1G", 1024 * MiB), ("64", 64)],
)
def test_parse_size(text: str, size: int) -> None:
    assert sysinfo.parse_size(text) == size


def test_selected_value_and_os_release() -> None:
    assert sysinfo.selected_value("always [madvise] never\n") == "madvise"
    assert sysinfo.selected_value("always defer defer+madvise [madvise] never") == "madvise"
    assert sysinfo.selected_value("") is None
    fields = sysinfo.parse_os_release(
        "# comment\nID=ubuntu\nVERSION_ID=\"22.04\"\nPRETTY_NAME='Ubuntu 22.04.4 LTS'\nBAD\n"
    )
    assert fields == {"ID": "ubuntu", "VERSION_ID": "22.04", "PRETTY_NAME": "Ubuntu 22.04.4 LTS"}


@pytest.mark.parametrize(
    ("raw", "norm"),
    [("aarch64", "arm64"), ("arm64", "arm64"), ("x86_64", "x86_64"), ("AMD64", "x86_64")],
)
def test_normalise_architecture(raw: str, norm: str) -> None:
    assert sysinfo.normalise_architecture(raw) == norm
