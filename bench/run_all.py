"""Run every benchmark under ``bench/``, one after the other, as ``docs/benchmarks.md`` runs them.

``make bench`` calls this. Each benchmark runs in its own process with the arguments shown in
the docs (``--quick``: small sizes that finish in a few minutes, to check that all of them run);
a failing one does not stop the others, and the exit status says whether any failed.

    .venv/bin/python bench/run_all.py [--quick]
        [--only ingest,engine,e2e,delivery,profile_api,identity,batch,partitions]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent

#: name -> (script and arguments as documented, the same with --quick sizes)
BENCHMARKS: dict[str, tuple[list[str], list[str]]] = {
    "ingest": (["ingest.py", "--duration", "12"], ["ingest.py", "--duration", "3", "--only", "ceiling,sqlite"]),
    "engine": (["engine.py", "--events", "100000", "--profiles", "10000", "--exits", "2000",
                "--memory-profiles", "10000", "40000"],
               ["engine.py", "--events", "5000", "--profiles", "500", "--exits", "100"]),
    "e2e": (["e2e.py", "e2e", "--rate", "1000", "--seconds", "60"],
            ["e2e.py", "e2e", "--rate", "100", "--seconds", "5"]),
    "delivery": (["e2e.py", "delivery", "--cap", "100", "--messages", "3000"],
                 ["e2e.py", "delivery", "--cap", "100", "--messages", "200"]),
    "profile_api": (["profile_api.py", "--workers", "1,2"],
                    ["profile_api.py", "--profiles", "2000", "--workers", "1", "--duration", "2"]),
    "identity": (["identity.py", "--events", "1000000", "--backend", "sqlite"],
                 ["identity.py", "--events", "5000", "--backend", "sqlite"]),
    "batch": (["batch.py", "--scale", "0.1", "--realtime-events", "5000"],
              ["batch.py", "--scale", "0.001", "--realtime-events", "500", "--repeats", "1"]),
    "partitions": (["partitions.py", "--events", "100000", "--profiles", "10000"],
                   ["partitions.py", "--events", "3000", "--profiles", "300"]),
    "accounts_engine": (["accounts_engine.py", "--accounts", "1000", "--users", "100"],
                        ["accounts_engine.py", "--accounts", "20", "--users", "10", "--flips", "20"]),
    "accounts_e2e": (["accounts_e2e.py", "--accounts", "1000", "--users", "100", "--flips", "200"],
                     ["accounts_e2e.py", "--accounts", "20", "--users", "10", "--flips", "10"]),
    "accounts_batch": (["accounts.py", "batch", "--accounts", "1000"],
                       ["accounts.py", "batch", "--accounts", "20"]),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes: check that every benchmark runs")
    parser.add_argument("--only", default="", help="comma-separated subset of: " + ", ".join(BENCHMARKS))
    args = parser.parse_args()
    names = [n for n in args.only.split(",") if n] or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
    failed: list[str] = []
    for name in names:
        full, quick = BENCHMARKS[name]
        command = [sys.executable, str(BENCH / (quick if args.quick else full)[0]),
                   *(quick if args.quick else full)[1:]]
        print(f"\n## {name}: {' '.join(command[1:])}\n", flush=True)
        started = time.monotonic()
        code = subprocess.run(command, cwd=BENCH.parent, check=False).returncode
        print(f"\n({name}: {'ok' if code == 0 else f'FAILED with exit status {code}'} "
              f"in {time.monotonic() - started:.0f}s)", flush=True)
        if code != 0:
            failed.append(name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
        return 1
    print(f"\nall {len(names)} benchmark(s) ran")
    return 0


if __name__ == "__main__":
    sys.exit(main())
