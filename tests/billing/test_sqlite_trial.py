"""The embedded trial of `./scripts/run` (README, first command): on SQLite, with eager tasks,
the demo seeds, events are ingested and the current usage and a billing run read them.

The rest of the suite runs on PostgreSQL; this test runs the real commands in a subprocess
against a fresh SQLite file, so that a PostgreSQL-only path on the way is caught.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = r"""
import json
from django.test import Client
from integrations.management.commands.seed_demo import DEMO_API_KEY

client = Client(HTTP_AUTHORIZATION=f"Bearer {DEMO_API_KEY}")
sub = "demo_bergmann_business"
sent = client.post(
    "/api/v1/events/batch",
    {"events": [
        {"transaction_id": f"trial_{i}", "external_subscription_id": sub, "code": "api_calls",
         "properties": {"region": "us", "endpoint": "/v1/trial"}}
        for i in range(3)
    ]},
    content_type="application/json",
)
again = client.post(
    "/api/v1/events",
    {"event": {"transaction_id": "trial_0", "external_subscription_id": sub,
               "code": "api_calls", "properties": {}}},
    content_type="application/json",
)
usage = client.get(
    "/api/v1/customers/demo_bergmann_de/current_usage", {"external_subscription_id": sub}
).json()["customer_usage"]
calls = [c for c in usage["charges_usage"] if c["billable_metric"]["code"] == "api_calls"][0]
print(json.dumps({
    "batch": sent.status_code,
    "duplicate": again.status_code,
    "events_count": calls["events_count"],
    "breakdowns": calls["presentation_breakdowns"],
    "amount_cents": usage["amount_cents"],
}))
"""


def test_the_sqlite_trial_ingests_events_and_prices_the_current_usage(tmp_path):
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'trial.sqlite3'}",
        "STORAGE_DIR": str(tmp_path / "storage"),
    }
    env.pop("CELERY_BROKER_URL", None)  # tasks run eagerly, as in the trial

    def manage(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout + done.stderr

    manage("migrate", "--no-input", "-v0")
    seeded = manage("seed_demo")
    assert "usage events recorded" in seeded
    printed = manage("shell", "-c", SCRIPT).splitlines()
    result = json.loads(next(line for line in printed if line.startswith('{"batch"')))

    assert (result["batch"], result["duplicate"]) == (200, 422)
    # the demo's 60 calls plus the 3 sent here
    assert result["events_count"] == 63
    by_endpoint = {b["presentation_by"]["endpoint"]: b["units"] for b in result["breakdowns"]}
    assert by_endpoint["/v1/trial"] == "3.0"
    assert result["amount_cents"] > 0
