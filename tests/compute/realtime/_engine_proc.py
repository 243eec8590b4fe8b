"""A child process for the SIGKILL test: identity + realtime engine over a store, on a fixed clock."""

from __future__ import annotations

import sys
import time

from traitsync.compute.realtime import RealtimeEngine
from traitsync.config.yaml_lines import load_yaml_file
from traitsync.definitions import load_definitions
from traitsync.identity import IdentityWorker, default_identity_config
from traitsync.store.database import Database


def main() -> None:
    url, config, clock_ms, pause = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    db = Database(url)
    identity = IdentityWorker(db, default_identity_config(), chunk_size=7)
    engine = RealtimeEngine(db, load_definitions(load_yaml_file(config)), clock=lambda: clock_ms / 1000)
    print("ready", flush=True)
    while True:
        n = identity.run_once(7) + engine.run_once(5)
        if n == 0:
            break
        time.sleep(pause)
    engine.fire_due(clock_ms)
    print("done", flush=True)


if __name__ == "__main__":
    main()
