"""Which block devices the storage benchmark may write to, and why not the others.

fio with a write job destroys whatever the target holds, so before any write the agent
answers one question about a device: is it ours to destroy? It is not when it

* is the root volume's disk, or any disk holding a mounted filesystem or active swap
  (/proc/self/mounts, /proc/swaps, also for its partitions);
* has partitions, or is held by another device (LVM, md, dm-crypt: /sys/block/X/holders);
* is read-only (/sys/block/X/ro);
* holds a filesystem, partition table or volume signature. instbench never creates one,
  so any signature means someone else's data. The signatures are read here from the
  device's first 68 KiB (the same magic numbers blkid and the kernel use; no libblkid
  on the instance is needed).

Each refusal carries a one-line reason the result records. Discovery (`data_devices`)
lists the disks an EC2 instance has beside its root volume: NVMe EBS volumes report the
model "Amazon Elastic Block Store" and their volume id as serial; instance-store NVMe
disks "Amazon EC2 NVMe Instance Storage".

Stdlib-only, Python 3.9 (shipped inside agent.pyz).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

EBS_MODEL = "Amazon Elastic Block Store"
INSTANCE_STORE_MODEL = "Amazon EC2 NVMe Instance Storage"

_SKIP_PREFIXES = ("loop", "ram", "zram", "dm-", "md", "sr", "fd", "nbd")
"""Virtual or removable devices discovery never offers (an explicit path may still name a
loop device, which is how the tests exercise the checks)."""

SIGNATURES: Tuple[Tuple[str, int, bytes], ...] = (
    ("ext2/3/4", 0x438, b"\x53\xef"),
    ("xfs", 0, b"XFSB"),
    ("btrfs", 0x10040, b"_BHRfS_M"),
    ("swap", 4086, b"SWAPSPACE2"),
    ("swap (old)", 4086, b"SWAP-SPACE"),
    ("gpt partition table", 512, b"EFI PART"),
    ("lvm2 physical volume", 512 + 24, b"LVM2 001"),
    ("luks", 0, b"LUKS\xba\xbe"),
    ("squashfs", 0, b"hsqs"),
    ("iso9660", 0x8001, b"CD001"),
    ("ntfs", 3, b"NTFS    "),
    ("vfat", 0x52, b"FAT32   "),
    ("vfat", 0x36, b"FAT16   "),
    ("vfat", 0x36, b"FAT12   "),
    ("dos partition table", 510, b"\x55\xaa"),
)
"""(name, byte offset, magic). The DOS/MBR boot signature comes last: an ext4 or vfat
volume may carry it too, and the more specific name is the better reason."""

_READ_BYTES = 0x10048


@dataclass(frozen=True)
class Verdict:
    """Whether the agent may write to `path`; `reason` says why not (one line)."""

    path: str
    allowed: bool
    reason: str = ""


def _read(path: str) -> Optional[str]:
    try:
        with open(path, encoding="ascii", errors="replace") as fh:
            return fh.read().strip()
    except OSError:
        return None


def signature(path: str) -> Optional[str]:
    """The name of the first filesystem/partition signature found on `path`, else None."""
    with open(path, "rb") as fh:
        head = fh.read(_READ_BYTES)
    for name, offset, magic in SIGNATURES:
        if head[offset : offset + len(magic)] == magic:
            return name
    return None


def _mount_sources(mounts_text: str) -> Dict[str, str]:
    """Mounted device path -> mount point, from /proc/self/mounts text."""
    out: Dict[str, str] = {}
    for line in mounts_text.splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[0].startswith("/dev/"):
            out[fields[0]] = fields[1].replace("\\040", " ")
    return out


def _swaps(text: str) -> List[str]:
    return [line.split()[0] for line in text.splitlines()[1:] if line.split()]


def _sys_name(path: str) -> Optional[str]:
    """The /sys/class/block name of a block device path (follows symlinks like
    /dev/disk/by-id/...), or None."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    if not stat.S_ISBLK(st.st_mode):
        return None
    major, minor = os.major(st.st_rdev), os.minor(st.st_rdev)
    link = f"/sys/dev/block/{major}:{minor}"
    try:
        return os.path.basename(os.path.realpath(link))
    except OSError:
        return None


def _disk_of(name: str) -> str:
    """The whole disk a /sys/class/block name belongs to (itself for a disk)."""
    if os.path.exists(f"/sys/class/block/{name}/partition"):
        parent = os.path.basename(os.path.dirname(os.path.realpath(f"/sys/class/block/{name}")))
        return parent
    return name


def _partitions(disk: str) -> List[str]:
    base = f"/sys/block/{disk}"
    try:
        entries = os.listdir(base)
    except OSError:
        return []
    return sorted(
        e for e in entries if e.startswith(disk) and os.path.exists(f"{base}/{e}/partition")
    )


def _dev_names(mounts: Dict[str, str], swaps: List[str]) -> Dict[str, str]:
    """sys name -> what uses it ('mounted at /x' or 'active swap')."""
    used: Dict[str, str] = {}
    for dev, where in mounts.items():
        name = _sys_name(dev)
        if name:
            used.setdefault(name, f"mounted at {where}")
    for dev in swaps:
        name = _sys_name(dev)
        if name:
            used.setdefault(name, "active swap")
    return used


def root_disk(mounts_text: Optional[str] = None) -> Optional[str]:
    """The sys name of the disk holding '/', or None when it cannot be told (overlay)."""
    text = mounts_text if mounts_text is not None else (_read("/proc/self/mounts") or "")
    for dev, where in _mount_sources(text).items():
        if where == "/":
            name = _sys_name(dev)
            return _disk_of(name) if name else None
    return None


def check_device(path: str) -> Verdict:
    """May the agent write to block device `path`? Reads mounts, swaps, sysfs and the
    device's first bytes; never writes."""
    name = _sys_name(path)
    if name is None:
        return Verdict(path, False, f"{path} is not a block device")
    disk = _disk_of(name)
    if disk != name:
        return Verdict(path, False, f"{path} is a partition of {disk}; only whole, empty disks")
    mounts_text = _read("/proc/self/mounts") or ""
    swaps_text = _read("/proc/swaps") or ""
    if disk == root_disk(mounts_text):
        return Verdict(path, False, f"{path} is the root volume's disk")
    used = _dev_names(_mount_sources(mounts_text), _swaps(swaps_text))
    for part in [disk, *_partitions(disk)]:
        if part in used:
            return Verdict(path, False, f"{path}: /dev/{part} is {used[part]}")
    if _partitions(disk):
        return Verdict(path, False, f"{path} has partitions ({', '.join(_partitions(disk))})")
    try:
        holders = os.listdir(f"/sys/block/{disk}/holders")
    except OSError:
        holders = []
    if holders:
        return Verdict(path, False, f"{path} is held by {', '.join(sorted(holders))}")
    if _read(f"/sys/block/{disk}/ro") == "1":
        return Verdict(path, False, f"{path} is read-only")
    if (_read(f"/sys/block/{disk}/size") or "0") == "0":
        return Verdict(path, False, f"{path} has no media (size 0)")
    try:
        found = signature(path)
    except OSError as exc:
        return Verdict(path, False, f"{path} cannot be read: {exc.strerror}")
    if found is not None:
        return Verdict(
            path, False, f"{path} holds a {found} signature that instbench did not create"
        )
    return Verdict(path, True)


@dataclass(frozen=True)
class DataDevice:
    """A whole disk beside the root volume."""

    path: str
    kind: str
    """'ebs', 'instance-store' or 'unknown' (from the NVMe model string)."""
    model: Optional[str]
    serial: Optional[str]
    size_bytes: int


def device_facts(path: str) -> DataDevice:
    """Model, serial and size of block device `path` from sysfs."""
    name = _sys_name(path) or os.path.basename(path)
    model = _read(f"/sys/block/{name}/device/model")
    serial = _read(f"/sys/block/{name}/device/serial")
    sectors = int(_read(f"/sys/block/{name}/size") or "0")
    kind = "unknown"
    if model == EBS_MODEL:
        kind = "ebs"
    elif model == INSTANCE_STORE_MODEL:
        kind = "instance-store"
    elif name.startswith("xvd"):
        kind = "ebs"  # Xen instances: EBS volumes appear as xvdX
    if kind == "ebs" and serial and serial.startswith("vol") and "-" not in serial:
        serial = "vol-" + serial[3:]  # NVMe reports vol0123..., the API vol-0123...
    return DataDevice(f"/dev/{name}", kind, model, serial, sectors * 512)


def data_devices() -> List[DataDevice]:
    """Every whole disk except the root volume's and virtual ones, sorted by name."""
    root = root_disk()
    try:
        names = sorted(os.listdir("/sys/block"))
    except OSError:
        return []
    return [
        device_facts(f"/dev/{n}")
        for n in names
        if n != root and not n.startswith(_SKIP_PREFIXES) and os.path.exists(f"/dev/{n}")
    ]


__all__ = [
    "EBS_MODEL",
    "INSTANCE_STORE_MODEL",
    "SIGNATURES",
    "DataDevice",
    "Verdict",
    "check_device",
    "data_devices",
    "device_facts",
    "root_disk",
    "signature",
]
