"""``traitsync demo`` in a fresh directory: exits 0 within a minute and shows entries and exits."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest


@pytest.mark.slow
def test_demo_runs_in_a_fresh_directory(tmp_path: Path) -> None:
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "traitsync.cli", "demo"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=90, env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"})
    elapsed = time.monotonic() - started
    out = proc.stdout
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert elapsed < 60
    # 8 live users enter the 10-second audience and all 8 leave it; each has a userId and an email.
    row = re.search(r"viewed_product_last_10s\s*│\s*(\d+)\s*│\s*(\d+)\s*│\s*(\d+)\s*│", out)
    assert row is not None, out
    assert row.groups() == ("8", "8", "32")
    assert re.search(r"order_completed_last_30days\s*│\s*(\d+)\s*│\s*0\s*│", out)
    assert "track: Audience Entered" in out and "track: Audience Exited" in out
    assert "list sync now (as `traitsync destinations sync dst_lists`): viewed_product_last_10s: +16 -0" in out
    assert "list sync now: viewed_product_last_10s: +0 -16" in out
    assert '"event": "Audience Entered"' in out and '"total_revenue_180_days":' in out
    assert re.search(r"dst_events\s*│\s*\d+\s*│\s*0\s*│\s*0\s*│\s*0\s*│\s*0\s*│", out)
    assert (tmp_path / ".traitsync" / "demo" / "traitsync.db").exists()
