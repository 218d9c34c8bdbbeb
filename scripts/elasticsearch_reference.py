#!/usr/bin/env python3
"""The Elasticsearch reference for the elasticsearch sink, prepared for curl: the very
documents the sink sends, cut into `_bulk` bodies of 1000 as the sink cuts them, and a curl
config that sends each body to an index (run it with `curl --parallel --parallel-max N -K`).

    scripts/elasticsearch_reference.py bodies DOCUMENTS.jsonl OUT_DIR
    scripts/elasticsearch_reference.py config OUT_DIR ELASTICSEARCH_URL INDEX > curl.config

DOCUMENTS.jsonl holds one document a line, as a file sink in the elasticsearch sink's place
writes them; each body indexes its documents by their `transactionId`.
"""

import json
import sys
from pathlib import Path

BATCH = 1000


def bodies(documents: Path, out: Path) -> None:
    lines = [line for line in documents.read_bytes().splitlines() if line]
    out.mkdir(parents=True, exist_ok=True)
    for start in range(0, len(lines), BATCH):
        body = bytearray()
        for line in lines[start : start + BATCH]:
            key = json.dumps(json.loads(line)["transactionId"]).encode()
            body += b'{"index":{"_id":' + key + b"}}\n" + line + b"\n"
        (out / f"{start // BATCH:06}.ndjson").write_bytes(body)


def config(out: Path, url: str, index: str) -> None:
    entries = []
    for body in sorted(out.glob("*.ndjson")):
        entries.append(
            f'url = "{url}/{index}/_bulk?filter_path=items.*.status,items.*.error"\n'
            f'data-binary = "@{body}"\n'
            'header = "Content-Type: application/x-ndjson"\n'
            'output = "/dev/null"\nsilent\n'
        )
    sys.stdout.write("next\n".join(entries))


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "bodies":
        bodies(Path(sys.argv[2]), Path(sys.argv[3]))
    elif len(sys.argv) == 5 and sys.argv[1] == "config":
        config(Path(sys.argv[2]), sys.argv[3], sys.argv[4])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
