"""What the machine says about itself that the latency benchmark needs: cache sizes and
line size per CPU (sysfs), the CPUs the agent may use, and the NUMA nodes, with the plan
of which node's memory to measure from where.

Read from a root directory (default "/") so the tests run on recorded /sys trees.

Stdlib-only, Python 3.9 (shipped inside agent.pyz).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from instbench.agent.sysinfo import parse_cpu_list, parse_size

DEFAULT_STRIDE = 64

# ----------------------------------------------------------------- machine facts


def _read(root: str, rel: str) -> Optional[str]:
    try:
        with open(os.path.join(root, rel), encoding="ascii", errors="replace") as fh:
            return fh.read().strip()
    except OSError:
        return None


def cache_hints(cpu: int, root: str = "/") -> Dict[str, int]:
    """Data/unified cache sizes the OS reports for `cpu`: {'l1': bytes, 'l2': ..., 'l3': ...}.

    Only levels the OS reports are present (Graviton kernels sometimes report none). One
    instance's size: what the measuring core can hold, not the machine's total.
    """
    base = f"sys/devices/system/cpu/cpu{cpu}/cache"
    try:
        indexes = sorted(os.listdir(os.path.join(root, base)))
    except OSError:
        return {}
    hints: Dict[str, int] = {}
    for index in indexes:
        if not index.startswith("index"):
            continue
        kind = _read(root, f"{base}/{index}/type")
        level = _read(root, f"{base}/{index}/level")
        size = parse_size(_read(root, f"{base}/{index}/size"))
        if kind not in ("Data", "Unified") or level not in ("1", "2", "3") or not size:
            continue
        hints[f"l{level}"] = size
    return hints


def line_size(cpu: int, root: str = "/") -> int:
    """Coherency line size of the L1 data cache of `cpu`; 64 when not reported."""
    base = f"sys/devices/system/cpu/cpu{cpu}/cache/index0/coherency_line_size"
    text = _read(root, base)
    try:
        value = int(text) if text else DEFAULT_STRIDE
    except ValueError:
        return DEFAULT_STRIDE
    if value < 16 or value > 1024 or value & (value - 1):
        return DEFAULT_STRIDE
    return value


def _allowed_cpus() -> List[int]:
    getter = getattr(os, "sched_getaffinity", None)
    if getter is not None:
        return sorted(getter(0))
    return list(range(os.cpu_count() or 1))


@dataclass(frozen=True)
class NumaTopology:
    """NUMA nodes and sockets as sysfs describes them."""

    socket_count: int
    node_cpus: Dict[int, List[int]]
    """Online nodes with their CPUs (nodes without CPUs have an empty list)."""
    node_has_memory: Dict[int, bool]
    distances: Dict[int, List[int]]
    """node -> distance to every online node, in node order, when reported."""
    cpu_package: Dict[int, int]


def numa_topology(root: str = "/") -> NumaTopology:
    """Read nodes, their CPUs, memory and distances, and CPU packages from sysfs."""
    node_dir = "sys/devices/system/node"
    nodes = parse_cpu_list(_read(root, f"{node_dir}/online")) or [0]
    with_memory = set(parse_cpu_list(_read(root, f"{node_dir}/has_memory")))
    node_cpus: Dict[int, List[int]] = {}
    distances: Dict[int, List[int]] = {}
    for node in nodes:
        cpus = parse_cpu_list(_read(root, f"{node_dir}/node{node}/cpulist"))
        node_cpus[node] = cpus
        text = _read(root, f"{node_dir}/node{node}/distance")
        try:
            distances[node] = [int(x) for x in text.split()] if text else []
        except ValueError:
            distances[node] = []
    if len(nodes) == 1 and not node_cpus[nodes[0]]:
        node_cpus[nodes[0]] = _allowed_cpus()
    if not with_memory:
        with_memory = set(nodes)
    cpu_package: Dict[int, int] = {}
    online = parse_cpu_list(_read(root, "sys/devices/system/cpu/online"))
    for cpu in online or _allowed_cpus():
        text = _read(root, f"sys/devices/system/cpu/cpu{cpu}/topology/physical_package_id")
        try:
            if text is not None:
                cpu_package[cpu] = int(text)
        except ValueError:
            continue
    sockets = max(1, len(set(cpu_package.values())))
    return NumaTopology(
        socket_count=sockets,
        node_cpus=node_cpus,
        node_has_memory={n: n in with_memory for n in nodes},
        distances=distances,
        cpu_package=cpu_package,
    )


@dataclass(frozen=True)
class NumaPlan:
    """Which node's CPU measures which node's memory, or why nothing remote is measured."""

    cpu_node: Optional[int]
    memory_node: Optional[int]
    run_cpu: Optional[int]
    mem_cpu: Optional[int]
    inter_socket: bool
    reason: str


def plan_numa(topo: NumaTopology, allowed: Sequence[int]) -> NumaPlan:
    """Pick a local node (the first with usable CPUs and memory) and the farthest other node.

    "Farthest" by the distance table, preferring a node on another socket: that pair is
    what `inter_socket_latency_ns` means. The memory node must have memory and a CPU we may
    run on, because placement is by first touch from that CPU.
    """
    usable = {
        node: [c for c in cpus if c in allowed]
        for node, cpus in sorted(topo.node_cpus.items())
        if topo.node_has_memory.get(node, False)
    }
    usable = {node: cpus for node, cpus in usable.items() if cpus}
    nodes = sorted(topo.node_cpus)
    if len(nodes) < 2:
        return NumaPlan(None, None, None, None, False, "one NUMA node: nothing remote")
    if len(usable) < 2:
        return NumaPlan(
            None,
            None,
            None,
            None,
            False,
            f"{len(nodes)} NUMA nodes, but fewer than two have both memory and CPUs this "
            "process may run on (first-touch placement needs a CPU on the memory's node)",
        )
    local = min(usable)
    run_cpu = usable[local][-1]
    local_package = topo.cpu_package.get(run_cpu)

    def key(node: int) -> Tuple[int, int, int]:
        mem_cpu = usable[node][-1]
        other_socket = int(
            local_package is not None
            and topo.cpu_package.get(mem_cpu) is not None
            and topo.cpu_package.get(mem_cpu) != local_package
        )
        row = topo.distances.get(local, [])
        distance = row[nodes.index(node)] if len(row) == len(nodes) else 0
        return (other_socket, distance, -node)

    remote = max((n for n in usable if n != local), key=key)
    inter_socket = key(remote)[0] == 1
    reason = (
        f"CPU {run_cpu} (node {local}) reading memory first-touched from CPU "
        f"{usable[remote][-1]} (node {remote}"
        + (", another socket)" if inter_socket else ", same socket)")
    )
    return NumaPlan(local, remote, run_cpu, usable[remote][-1], inter_socket, reason)
