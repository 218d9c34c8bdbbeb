#!/usr/bin/env python3
"""The PostgreSQL reference for the flagship's sql sinks, prepared for psql: the same rows,
upserted the way a DBA would load them by hand.

Reads the JSON lines each of the flagship's sql sinks received (captured by
scripts/capture-sql-rows.sh, one file per sink, named after the sink) and writes, into
OUT_DIR, one CSV file per table and `upsert.sql`: in one transaction, for each table, a
staging table like it, `\\copy` of its CSV (one row per key, the last, as the sink leaves
it) into the staging table, and one INSERT ... SELECT ... ON CONFLICT (key) DO UPDATE SET
every other column = excluded. Run it with `psql -f OUT_DIR/upsert.sql` on a database holding
the tables (migrations/).

    scripts/postgres_reference.py PIPELINE.toml CAPTURE_DIR OUT_DIR
"""

import csv
import json
import re
import sys
import tomllib
from pathlib import Path


def table_columns(migrations: Path) -> dict:
    """Each table's columns in order, from the CREATE TABLE statements of migrations/."""
    tables = {}
    text = "\n".join(p.read_text() for p in sorted(migrations.glob("*.sql")))
    for name, body in re.findall(r"CREATE TABLE IF NOT EXISTS (\w+) \((.*?)\n\);", text, re.S):
        columns = []
        for line in body.splitlines():
            word = line.strip().split(" ")[0]
            if word and word.upper() != "PRIMARY" and not word.startswith("--"):
                columns.append(word)
        tables[name] = columns
    return tables


def cell(value):
    """A JSON value as CSV: objects and arrays as their JSON, the rest as it is (None: NULL)."""
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return value


def main() -> None:
    pipeline, captured, out = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    out.mkdir(parents=True, exist_ok=True)
    sinks = tomllib.loads(pipeline.read_text())["sinks"]
    tables = table_columns(pipeline.parent / "../migrations")
    script = ["\\set ON_ERROR_STOP on", "BEGIN;"]
    for name, sink in sinks.items():
        if sink.get("type") != "sql":
            continue
        table = sink["table"]
        columns = tables[table]
        mapping = sink.get("columns") or {c: c for c in columns}
        wanted = [c for c in columns if c in mapping]
        key = sink.get("key", [])
        path = out / f"{table}.csv"
        rows = [
            [cell(json.loads(line).get(mapping[c])) for c in wanted]
            for line in (captured / f"{name}.jsonl").read_text().splitlines()
            if line
        ]
        if key:
            # One row per key, the last one, as the sink leaves it (one INSERT ... ON
            # CONFLICT cannot touch a row twice).
            at = [wanted.index(k) for k in key]
            last = {}
            for row in rows:
                last[tuple(json.dumps(row[i]) for i in at)] = row
            rows = list(last.values())
        with open(path, "w", newline="") as f:
            csv.writer(f, quoting=csv.QUOTE_NONNUMERIC).writerows(rows)
        others = [c for c in wanted if c not in key]
        update = ", ".join(f"{c} = excluded.{c}" for c in others)
        conflict = f" ON CONFLICT ({', '.join(key)}) DO UPDATE SET {update}" if key else ""
        script += [
            f"CREATE TEMPORARY TABLE stage_{table} (LIKE {table}) ON COMMIT DROP;",
            f"\\copy stage_{table} ({', '.join(wanted)}) FROM '{path}' CSV",
            f"INSERT INTO {table} ({', '.join(wanted)}) "
            f"SELECT {', '.join(wanted)} FROM stage_{table}{conflict};",
        ]
    script.append("COMMIT;")
    (out / "upsert.sql").write_text("\n".join(script) + "\n")


if __name__ == "__main__":
    main()
