"""manage.py jobs: every scheduled job listed with its beat row, and run by hand (ops)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import date
from io import StringIO
from pathlib import Path

import pytest
import redis
import time_machine
from celery import shared_task
from django.core.management import CommandError, call_command
from django_celery_beat.models import PeriodicTask

from billing import schedules
from billing.celery import app
from billing.schedules import SCHEDULES, Schedule
from invoicing.models import Invoice
from tests.invoicing.billing_helpers import bill, customer, plan, set_entity, subscribe, utc
from tests.invoicing.invoice_builders import build_invoice
from tests.wallets.factories import WalletFactory, fund_wallet

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture(autouse=True)
def _no_pdf(settings):
    settings.INVOICE_PDF_ON_FINALIZE = False


def jobs(*args: str) -> tuple[str, str]:
    """(stdout, stderr) of `manage.py jobs ARGS`."""
    out, err = StringIO(), StringIO()
    call_command("jobs", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def row(name: str) -> PeriodicTask:
    return PeriodicTask.objects.get(name=name)


def listed(output: str, slug: str) -> list[str]:
    """The cells of one job's line in `jobs list`."""
    [line] = [line for line in output.splitlines() if line.split()[0] == slug]
    return re.split(r"\s{2,}", line.strip())


# --------------------------------------------------------------------------------------------
# The schedule itself


def test_every_slug_is_unique_snake_case_and_the_documented_ones_exist():
    slugs = [schedule.slug for schedule in SCHEDULES]

    assert len(slugs) == len(set(slugs))
    assert all(re.fullmatch(r"[a-z][a-z0-9]*(_[a-z0-9]+)*", slug) for slug in slugs), slugs
    assert {
        "bill_customers",
        "finalize_drafts",
        "mark_invoices_overdue",
        "refresh_wallets_ongoing_balance",
    } <= set(slugs)


def test_every_beat_row_name_is_unique():
    names = [schedule.name for schedule in SCHEDULES]
    assert len(names) == len(set(names))


def test_every_scheduled_task_is_registered_in_a_fresh_process():
    # a fresh interpreter imports no task module by itself: the lookup must discover them
    script = (
        "import django; django.setup()\n"
        "from billing.jobs import job_task\n"
        "from billing.schedules import SCHEDULES\n"
        "print([job_task(s).name for s in SCHEDULES])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=False
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str([schedule.task for schedule in SCHEDULES])


# --------------------------------------------------------------------------------------------
# jobs list


def test_list_shows_every_job_by_slug():
    out, _ = jobs()

    assert [line.split()[0] for line in out.splitlines()[1:]] == [s.slug for s in SCHEDULES]
    assert jobs("list")[0] == out


def test_list_shows_the_crontab_the_last_run_and_the_next_run_in_utc():
    PeriodicTask.objects.filter(name="Bill customers").update(last_run_at=utc(2024, 2, 1, 8, 10))

    with time_machine.travel(utc(2024, 2, 1, 9, 12), tick=False):
        out, _ = jobs("list")

    assert listed(out, "bill_customers") == [
        "bill_customers",
        "10 * * * *",
        "2024-02-01 08:10",
        "2024-02-01 10:10",
    ]
    assert listed(out, "purge_audit_logs")[1:] == [
        "0 1 * * *",
        "never",
        "2024-02-02 01:00",
    ]


def test_list_follows_the_crontab_edited_in_the_admin():
    PeriodicTask.objects.filter(name="Bill customers").update(
        crontab=row("Purge API request logs").crontab
    )

    with time_machine.travel(utc(2024, 2, 1, 9, 12), tick=False):
        out, _ = jobs("list")

    assert listed(out, "bill_customers")[1:] == ["0 1 * * *", "never", "2024-02-02 01:00"]


def test_list_shows_a_disabled_job_without_a_next_run():
    PeriodicTask.objects.filter(name="Finalize due draft invoices").update(enabled=False)

    out, _ = jobs("list")

    assert listed(out, "finalize_drafts")[-1] == "disabled"


# --------------------------------------------------------------------------------------------
# jobs run: the four jobs ops run by hand most


def test_run_bill_customers_bills_a_due_subscription(organization):
    acme = customer(organization, external_id="acme")
    subscribe(organization, acme, plan(organization, amount_cents=700), utc(2024, 1, 1))

    with time_machine.travel(utc(2024, 2, 1, 0, 15), tick=False):
        out, err = jobs("run", "bill_customers")

    invoice = Invoice.objects.get(customer=acme)
    assert invoice.total_amount_cents == 700
    assert re.fullmatch(r"bill_customers done in \d+\.\d\ds: 1 customer\(s\) billed\n", out)
    assert "running bill_customers" in err


def test_run_bills_inline_even_when_a_broker_is_configured(organization):
    acme = customer(organization, external_id="acme")
    subscribe(organization, acme, plan(organization, amount_cents=700), utc(2024, 1, 1))
    queue = redis.Redis.from_url(REDIS_URL)
    queued = queue.llen("celery")
    previous = (app.conf.broker_url, app.conf.task_always_eager)
    app.conf.broker_url, app.conf.task_always_eager = REDIS_URL, False
    try:
        with time_machine.travel(utc(2024, 2, 1, 0, 15), tick=False):
            jobs("run", "bill_customers")
        assert (app.conf.broker_url, app.conf.task_always_eager) == (REDIS_URL, False)
    finally:
        app.conf.broker_url, app.conf.task_always_eager = previous

    assert Invoice.objects.filter(customer=acme).count() == 1
    assert queue.llen("celery") == queued


def test_run_finalize_drafts_finalizes_a_draft_past_its_grace_period(organization):
    set_entity(organization, invoice_grace_period=3)
    acme = customer(organization, external_id="acme")
    subscribe(organization, acme, plan(organization, amount_cents=1000), utc(2024, 1, 1))
    draft = bill(acme, date(2024, 2, 1)).invoices[0]
    assert draft.status == Invoice.Status.DRAFT

    with time_machine.travel(utc(2024, 2, 4, 0, 20), tick=False):
        out, _ = jobs("run", "finalize_drafts")

    draft.refresh_from_db()
    assert draft.status == Invoice.Status.FINALIZED
    assert out.endswith(": 1 draft(s) finalized\n")


def test_run_mark_invoices_overdue_marks_an_unpaid_invoice_past_its_due_date(organization):
    invoice = build_invoice(organization, issuing_date=date(2026, 3, 1), net_payment_term=30)

    with time_machine.travel(utc(2026, 4, 1, 12), tick=False):
        out, _ = jobs("run", "mark_invoices_overdue")

    invoice.refresh_from_db()
    assert invoice.payment_overdue
    assert out.endswith(": 1 invoice(s) marked overdue\n")


def test_run_refresh_wallets_ongoing_balance_refreshes_a_flagged_wallet(organization):
    wallet = WalletFactory(organization=organization)
    fund_wallet(wallet, "100")
    type(wallet).objects.filter(pk=wallet.pk).update(ready_to_be_refreshed=True)

    with time_machine.travel(utc(2026, 3, 10, 12), tick=False):
        out, _ = jobs("run", "refresh_wallets_ongoing_balance")

    wallet.refresh_from_db()
    assert not wallet.ready_to_be_refreshed
    assert wallet.last_balance_sync_at == utc(2026, 3, 10, 12)
    assert wallet.ongoing_balance_cents == 10_000
    assert out.endswith(": 1 wallet(s) refreshed\n")


def test_a_run_is_recorded_as_the_last_run_of_its_beat_row():
    with time_machine.travel(utc(2026, 4, 1, 12, 3), tick=False):
        jobs("run", "mark_invoices_overdue")

    assert row("Mark invoices payment overdue").last_run_at == utc(2026, 4, 1, 12, 3)


# --------------------------------------------------------------------------------------------
# --dry-run


def test_dry_run_writes_nothing_and_fires_no_on_commit_callback(
    organization, django_capture_on_commit_callbacks
):
    acme = customer(organization, external_id="acme")
    subscribe(organization, acme, plan(organization, amount_cents=700), utc(2024, 1, 1))

    with (
        time_machine.travel(utc(2024, 2, 1, 0, 15), tick=False),
        django_capture_on_commit_callbacks() as callbacks,
    ):
        out, err = jobs("run", "bill_customers", "--dry-run")

    assert not Invoice.objects.exists()
    assert callbacks == []
    assert row("Bill customers").last_run_at is None
    assert out.endswith(": 1 customer(s) billed (rolled back, nothing written)\n")
    assert "dry run" in out
    assert "dry run, rolled back at the end" in err


def test_dry_run_reports_what_the_job_would_have_done(organization):
    invoice = build_invoice(organization, issuing_date=date(2026, 3, 1), net_payment_term=30)

    with time_machine.travel(utc(2026, 4, 1, 12), tick=False):
        out, _ = jobs("run", "mark_invoices_overdue", "--dry-run")

    invoice.refresh_from_db()
    assert not invoice.payment_overdue
    assert "1 invoice(s) marked overdue (rolled back, nothing written)" in out


# --------------------------------------------------------------------------------------------
# Failures


def test_an_unknown_slug_exits_2_and_lists_the_slugs():
    done = subprocess.run(
        [sys.executable, "manage.py", "jobs", "run", "bill_everyone"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )

    assert done.returncode == 2
    assert "unknown job 'bill_everyone'" in done.stderr
    assert all(schedule.slug in done.stderr for schedule in SCHEDULES)
    assert done.stdout == ""


@shared_task(name="tests.billing.test_jobs.failing_task")
def failing_task() -> int:
    raise RuntimeError("ledger unreachable")


def test_a_failing_job_exits_1_with_its_error(monkeypatch):
    broken = Schedule(slug="broken_job", name="Broken job", task=failing_task.name)
    monkeypatch.setattr(schedules, "SCHEDULES", [*SCHEDULES, broken])

    with pytest.raises(CommandError, match="RuntimeError: ledger unreachable") as failed:
        jobs("run", "broken_job")

    assert failed.value.returncode == 1
    assert str(failed.value).startswith("broken_job failed")
