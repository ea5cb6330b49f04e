"""Who made a publication, in the words index.json records.

A publication may reuse files of the previous one only when the same generator made it
with the same layout (`previous.read_previous`), so both names live here, apart from the
stages that write and read them.
"""

from __future__ import annotations

from instbench import __version__

PUBLICATION_VERSION = "2.0.0"
"""Version of the publication layout (index.json, exports); independent of data_version.
1.1.0: change points replace the per-pair regression flags (index.json `regressions`,
`improvements`, `cpuMixChanges`, `untested`, `changeDetection`); window summaries carry
the median's interval and `notes`, no `regressions`. 2.0.0: the tidy table as Hive
partitions (latest/tidy/) instead of tidy.parquet, tidy.csv optional, monthly aggregates
partitions (latest/aggregates/). A previous publication of another format is never
reused (its files are of the old form)."""

GENERATOR = f"instbench {__version__}"
