"""Which files are published: file_status, accepted_rows and held_rows in the ingest
cache, derived whole on a new cache or again where files came, went or changed.

`file_status` says for each file: ok, duplicate or rejected, with the reason. The rows
of a validated file are stored once: in `accepted_rows` when it is ok (every published
number is computed from it), else in `held_rows`. analysis/ingest.py loads the files
and their rows and calls these; digest_memo.py reads the changes they record.
"""

from __future__ import annotations

import duckdb

# Both are materialised (tables, not views): publication reads them a dozen times, and as
# views each read re-ran the window functions and the join. They are kept in the cache;
# when `files` changed, file_status is derived again and accepted_rows updated
# (`derive_again`): at 100,000 results that is 0.9 s saved on a publication with nothing
# new.
STATUS_SELECT = """
WITH ok AS (
    SELECT *, row_number() OVER (PARTITION BY sha256 ORDER BY key) AS dup_rank
    FROM files WHERE status = 'ok' {ok_filter}
),
fp AS (
    SELECT fingerprint, count(DISTINCT instance_type) AS ntypes,
           string_agg(DISTINCT instance_type, ', ' ORDER BY instance_type) AS types
    FROM ok WHERE dup_rank = 1 GROUP BY fingerprint
)
SELECT ok.key, ok.sha256, ok.instance_type,
       CASE WHEN dup_rank > 1 THEN 'duplicate'
            WHEN fp.ntypes > 1 THEN 'rejected' ELSE 'ok' END AS status,
       CASE WHEN dup_rank > 1 THEN 'same content as ' || first_value(ok.key) OVER (
                PARTITION BY ok.sha256 ORDER BY ok.key)
            WHEN fp.ntypes > 1 THEN 'identical figures for ' || fp.ntypes
                || ' instance types (' || fp.types || '): copied or placeholder numbers'
            ELSE NULL END AS reason
FROM ok JOIN fp USING (fingerprint)
UNION ALL
SELECT key, NULL, NULL, 'rejected', reason FROM files WHERE status = 'rejected' {rejected_filter}
"""
"""Each file's status. A file's status depends only on the files sharing its figures'
fingerprint (documents with the same content sha256 have the same figures, so
duplicates share a fingerprint too): `derive_again` recomputes it for the fingerprints
a change touched only (`ok_filter`, `rejected_filter`)."""

_STATUS_WHOLE = "CREATE OR REPLACE TABLE file_status AS " + STATUS_SELECT.format(
    ok_filter="", rejected_filter=""
)

_ACCEPTED_WHOLE = """
CREATE OR REPLACE TABLE accepted_rows AS
SELECT r.* FROM rows r JOIN file_status s ON s.key = r.key AND s.status = 'ok'
"""

_HELD_WHOLE = """
CREATE OR REPLACE TABLE held_rows AS
SELECT * FROM rows WHERE key NOT IN (SELECT key FROM file_status WHERE status = 'ok')
"""
"""The rows of validated files that are not published (duplicates, placeholders): kept
so that a file becoming ok (its duplicate's first key gone) need not be read again.
Each row is stored once, in accepted_rows or here: keeping every row in a table of its
own as well doubled what a sync writes (8 MB of write-ahead log for 1,000 results, and
its checkpoint)."""


def derive_whole(con: duckdb.DuckDBPyConnection) -> None:
    """file_status, accepted_rows and held_rows from `files` and the table `rows` (every
    validated file's rows, a new cache's landing table)."""
    con.execute(_STATUS_WHOLE)
    con.execute(_ACCEPTED_WHOLE)
    con.execute(_HELD_WHOLE)


def scalar(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    """The first column of the first row of `sql`, as an int (0 when none or NULL)."""
    row = con.execute(sql).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def log_changed(
    con: duckdb.DuckDBPyConnection, generation: int, keys: str, tables: tuple[str, ...]
) -> None:
    """Record in changed_docs the timestamp of each document of the temp table `keys`,
    read from its rows in `tables` (digest_memo.py: its windows are computed again)."""
    rows = " UNION ALL ".join(
        f"SELECT key, timestamp FROM {t} WHERE key IN (SELECT key FROM {keys})" for t in tables
    )
    con.execute(
        f"INSERT INTO changed_docs SELECT {int(generation)}, any_value(timestamp) "
        f"FROM ({rows}) GROUP BY key"
    )


def derive_again(con: duckdb.DuckDBPyConnection, generation: int) -> None:
    """Bring file_status, accepted_rows and held_rows up to date after files came, went
    or changed (temp tables: `gone`, the keys removed from `files`, whose rows are gone
    already; `fresh`, the keys (re-)added, with their rows in `fresh_rows`; `touched`,
    the fingerprints of both).

    Only the files that share a touched fingerprint, and the fresh and gone keys, can
    have a different status now (see STATUS_SELECT): their rows of file_status are
    derived again, the others kept. accepted_rows (800,000 rows at 100,000 results)
    gives the rows of files no longer ok to held_rows and takes those of held files now
    ok; the fresh rows go to one or the other. Deriving both whole was 1.5 s of a
    publication after a sync of 1,000 results, and then most of the checkpoint at close
    (every row of file_status written again).
    """
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE redo AS
        SELECT key FROM files WHERE fingerprint IN (SELECT fingerprint FROM touched)
        UNION SELECT key FROM gone UNION SELECT key FROM fresh
        """
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE was_ok AS SELECT key FROM file_status "
        "WHERE status = 'ok' AND key IN (SELECT key FROM redo)"
    )
    con.execute("DELETE FROM file_status WHERE key IN (SELECT key FROM redo)")
    con.execute(
        "INSERT INTO file_status "
        + STATUS_SELECT.format(
            ok_filter="AND fingerprint IN (SELECT fingerprint FROM touched)",
            rejected_filter="AND key IN (SELECT key FROM fresh)",
        )
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE now_ok AS SELECT key FROM file_status "
        "WHERE status = 'ok' AND key IN (SELECT key FROM redo)"
    )
    # Files still here that are no longer ok, and held files that became ok: their rows
    # move between the two tables (a sync only adds: then both are empty, and neither
    # table is scanned).
    con.execute(
        "CREATE OR REPLACE TEMP TABLE moved_out AS SELECT key FROM was_ok "
        "WHERE key NOT IN (SELECT key FROM now_ok) AND key NOT IN (SELECT key FROM gone)"
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE moved_in AS SELECT key FROM now_ok "
        "WHERE key NOT IN (SELECT key FROM was_ok) AND key NOT IN (SELECT key FROM fresh)"
    )
    for moved, source, target in (
        ("moved_out", "accepted_rows", "held_rows"),
        ("moved_in", "held_rows", "accepted_rows"),
    ):
        if scalar(con, f"SELECT count(*) FROM {moved}"):
            keys = f"key IN (SELECT key FROM {moved})"
            con.execute(f"INSERT INTO {target} SELECT * FROM {source} WHERE {keys}")
            con.execute(f"DELETE FROM {source} WHERE {keys}")
    # The files validated now (new, or changed and re-added: their old rows went with
    # `gone`): published when ok, held otherwise.
    con.execute(
        "INSERT INTO accepted_rows SELECT * FROM fresh_rows WHERE key IN (SELECT key FROM now_ok)"
    )
    con.execute(
        "INSERT INTO held_rows SELECT * FROM fresh_rows WHERE key NOT IN (SELECT key FROM now_ok)"
    )
    # Every document whose status may have changed (digest_memo.py): the fresh ones'
    # timestamps from their rows, the others' (rarely any) from the stored rows.
    log_changed(con, generation, "fresh", ("fresh_rows",))
    con.execute(
        "CREATE OR REPLACE TEMP TABLE redo_kept AS SELECT key FROM redo "
        "WHERE key NOT IN (SELECT key FROM fresh) AND key NOT IN (SELECT key FROM gone)"
    )
    if scalar(con, "SELECT count(*) FROM redo_kept"):
        log_changed(con, generation, "redo_kept", ("accepted_rows", "held_rows"))
    con.execute(
        "DROP TABLE redo; DROP TABLE was_ok; DROP TABLE now_ok; "
        "DROP TABLE moved_out; DROP TABLE moved_in; DROP TABLE redo_kept"
    )


def has_derived(con: duckdb.DuckDBPyConnection) -> bool:
    tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    return {"file_status", "accepted_rows", "held_rows"} <= tables
