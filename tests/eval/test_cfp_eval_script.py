"""scripts/cfp_eval.py reads CFP from a git snapshot through collection_sources.Repo: without the snapshot it
names the repository to fetch (a changed Repo signature once made it fail with a TypeError instead)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "cfp_eval.py"


def test_missing_snapshot_names_the_repository(tmp_path):
    r = subprocess.run([sys.executable, str(SCRIPT), "-e", str(tmp_path / "model.pt"), "--mirrors", str(tmp_path)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode != 0
    assert "no git snapshot of zhangjunh/DR-GAN-by-pytorch" in r.stderr
    assert "Traceback" not in r.stderr
