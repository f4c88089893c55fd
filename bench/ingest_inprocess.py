"""Loupe's ingest without HTTP, for the CPU breakdown that ``bench.ingest`` prints.

``bench.ingest`` starts this module in a process of its own, with the environment of a
migrated Loupe on the bench's PostgreSQL cluster::

    python -m bench.ingest_inprocess --postgres-pid PID --series PATH [--warmup N]

It sets Django up, loads the series, ingests ``--warmup`` objects, prints ``ready`` and
then runs one round for every line it reads on its standard input. A round makes a fresh
copy of the series and times, one object after another on one thread:

* ``ingest.read_and_index``: the pydicom parse, the checks and the index fields;
* ``storage.sha256_hex``: the content address;
* ``ingest.ingest_bytes`` on the same bytes, the whole ingest as ``POST /api/instances``
  runs it (write, fsync, parse, link, the row), with the CPU of this process (its fsync
  worker thread included) and of the PostgreSQL processes (the tree under PID).

Each round is printed as one JSON line, per object. Why the rounds are interleaved with
the HTTP rounds: bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest_inprocess")
    parser.add_argument("--postgres-pid", type=int, required=True)
    parser.add_argument("--series", type=Path, required=True, help="a folder of .dcm files")
    parser.add_argument("--warmup", type=int, default=12, help="objects ingested before ready")
    args = parser.parse_args(argv)

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from bench.harness import fresh_copy, load_series, process_tree_cpu
    from viewer.services import ingest, storage

    datasets = load_series(args.series, "bench.ingest_inprocess")

    def ingest_all(payloads: list[bytes]) -> None:
        for number, payload in enumerate(payloads):
            result = ingest.ingest_bytes(payload, source=f"{number:06d}.dcm")
            if result.status != ingest.STORED:
                raise RuntimeError(f"object {number}: {result.status} {result.reason}")

    def one_round() -> dict[str, float]:
        payloads = fresh_copy(datasets)
        count = len(payloads)

        started = time.thread_time()
        for payload in payloads:
            ingest.read_and_index(payload)
        parse = time.thread_time() - started

        started = time.thread_time()
        for payload in payloads:
            storage.sha256_hex(payload)
        sha = time.thread_time() - started

        # This process's CPU (all threads: the fsync workers too) from os.times(), read
        # next to the timed loop; the PostgreSQL tree is read outside that window.
        database = process_tree_cpu(args.postgres_pid)
        own = sum(os.times()[:2])
        wall = time.perf_counter()
        ingest_all(payloads)
        wall = time.perf_counter() - wall
        own = sum(os.times()[:2]) - own
        database = process_tree_cpu(args.postgres_pid) - database
        return {
            "instances_per_second": round(count / wall, 2),
            "parse_validate_index_ms": round(1000 * parse / count, 3),
            "sha256_ms": round(1000 * sha / count, 3),
            "ingest_process_ms": round(1000 * own / count, 3),
            "postgres_ms": round(1000 * database / count, 3),
            "total_ms": round(1000 * (own + database) / count, 3),
        }

    ingest_all(fresh_copy(datasets, args.warmup))
    print("ready", flush=True)
    for _ in sys.stdin:
        print(json.dumps(one_round()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
