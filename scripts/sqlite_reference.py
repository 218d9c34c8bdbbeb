#!/usr/bin/env python3
"""The SQLite reference for the embedded flagship: the same rows, upserted the same way, by
Python's sqlite3 in one transaction, timed.

Reads the JSON lines each of the flagship's sql sinks received (captured by
scripts/bench-sqlite.sh, one file per sink, named after the sink), creates the tables from
migrations/, and upserts every row as the sink does (INSERT ... ON CONFLICT (key) DO UPDATE
SET every other column = excluded), with the pragmas the sink sets (WAL, synchronous=NORMAL,
64 MiB page cache). Prints the seconds the upserts took (reading the files not included).

    scripts/sqlite_reference.py PIPELINE.toml CAPTURE_DIR DATABASE_FILE
"""

import json
import sqlite3
import sys
import time
import tomllib
from pathlib import Path


def main() -> None:
    pipeline, captured, database = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    sinks = tomllib.loads(pipeline.read_text())["sinks"]
    db = sqlite3.connect(database, isolation_level=None)
    for pragma in ("journal_mode = WAL", "synchronous = NORMAL", "cache_size = -65536"):
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
    db.execute("BEGIN")
    for statement, values in plans:
        db.executemany(statement, values)
    db.execute("COMMIT")
    took = time.perf_counter() - started
    print(f"{took:.3f} s for {sum(len(v) for _, v in plans)} upserts")


if __name__ == "__main__":
    main()
