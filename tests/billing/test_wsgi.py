"""The WSGI entry point (gunicorn's `billing.wsgi`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_worker_freezes_the_loaded_application_and_collects_less_often():
    code = (
        "import gc, billing.wsgi as w; "
        "print(callable(w.application), gc.get_freeze_count() > 0, gc.get_threshold()[0])"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, check=True
    )
    assert result.stdout.split() == ["True", "True", "50000"]
