#!/usr/bin/env python3
"""The SQLite reference for the embedded flagship: the same rows, upserted the same way, by
Python's sqlite3 in one transaction (or, with COMMIT_EVERY, in transactions of that many rows,
as a sink that commits as it goes), timed.

Reads the JSON lines each of the flagship's sql sinks received (captured by
scripts/bench-sqlite.sh, one file per sink, named after the sink), creates the tables from
migrations/, and upserts every row as the sink does (INSERT ... ON CONFLICT (key) DO UPDATE
SET every other column = excluded), with the pragmas the sink sets (WAL, synchronous=NORMAL,
64 MiB page cache, a checkpoint every 10,000 pages of log). Prints the seconds the upserts
took (reading the files not included).

    scripts/sqlite_reference.py PIPELINE.toml CAPTURE_DIR DATABASE_FILE [COMMIT_EVERY]
"""

import json
import sqlite3
import sys
import time
import tomllib
from pathlib import Path


def main() -> None:
    pipeline, captured, database = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    commit_every = int(sys.argv[4]) if len(sys.argv) > 4 else None
    sinks = tomllib.loads(pipeline.read_text())["sinks"]
    db = sqlite3.connect(database, isolation_level=None)
    pragmas = ("journal_mode = WAL", "synchronous = NORMAL", "cache_size = -65536",
               "wal_autocheckpoint = 10000")
    for pragma in pragmas:
        db.execute(f"PRAGMA {pragma}")
    migrations = pipeline.parent / "../migrations"
    for sql in sorted(migrations.glob("*.sql")):
        db.executescript(sql.read_text())

    plans = []
    for name, sink in sinks.items():
        if sink.get("type") != "sql":
            continue
        rows = [json.loads(l) for l in (captured / f"{name}.jsonl").read_text().splitlines() if l]
        table = sink["table"]
        columns = [c[1] for c in db.execute(f"PRAGMA table_info({table})")]
        mapping = sink.get("columns") or {c: c for c in columns}
        wanted = [c for c in columns if c in mapping]
        key = sink.get("key", [])
        others = [c for c in wanted if c not in key]
        update = ", ".join(f"{c} = excluded.{c}" for c in others)
        statement = (
            f"INSERT INTO {table} ({', '.join(wanted)}) VALUES ({', '.join('?' * len(wanted))})"
            + (f" ON CONFLICT ({', '.join(key)}) DO UPDATE SET {update}" if key else "")
        )
        values = [tuple(row.get(mapping[c]) for c in wanted) for row in rows]
        plans.append((statement, values))

    started = time.perf_counter()
    transactions = 0
    for statement, values in plans:
        step = commit_every or len(values) or 1
        for start in range(0, len(values), step):
            db.execute("BEGIN")
            db.executemany(statement, values[start : start + step])
            db.execute("COMMIT")
            transactions += 1
    took = time.perf_counter() - started
    print(f"{took:.3f} s for {sum(len(v) for _, v in plans)} upserts in {transactions} transactions")


if __name__ == "__main__":
    main()
