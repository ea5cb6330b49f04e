"""Rich renderings shared by commands (tables of results)."""

from __future__ import annotations

from rich.table import Table

from instbench.results.schema import STREAM_KERNELS, ResultDocument


def stream_table(doc: ResultDocument) -> Table:
    """Kernel x thread mode table of STREAM bandwidths, as STREAM users read them."""
    meta = doc.metadata
    title = f"STREAM — {meta.instance_type} ({doc.system_info.cpu.model_name})"
    if meta.quick:
        title += " — quick mode, not publishable"
    table = Table(title=title)
    for col in ("run", "kernel", "best GB/s", "avg GB/s", "min GB/s", "max GB/s", "threads"):
        table.add_column(col, justify="right" if "GB/s" in col or col == "threads" else "left")
    stream = doc.performance_data.stream
    if stream is None:
        return table
    for run in stream.runs:
        for name in STREAM_KERNELS:
            k = run.kernels[name]  # type: ignore[index]
            table.add_row(
                run.thread_mode,
                name.capitalize(),
                f"{k.best_gbps:.2f}",
                f"{k.avg_gbps:.2f}",
                f"{k.min_gbps:.2f}",
                f"{k.max_gbps:.2f}",
                str(run.threads),
            )
    return table
