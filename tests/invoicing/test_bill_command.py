"""`manage.py bill` and `manage.py finalize_drafts` (spec §27): what the hourly jobs do, by hand
for catch-up and backfills; progress on stderr, a summary on stdout, exit code 1 on failure."""

from datetime import date
from io import StringIO

import pytest
import time_machine
from django.core.management import call_command
from django.core.management.base import CommandError

from invoicing.models import Invoice
from tests.invoicing.billing_helpers import customer, plan, set_entity, subscribe, utc
from tests.plans.factories import FixedChargeFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_pdf(settings):
    settings.INVOICE_PDF_ON_FINALIZE = False


def run(*args: str, at=None):
    out, err = StringIO(), StringIO()
    with time_machine.travel(at or utc(2024, 4, 20, 12), tick=False):
        call_command("bill", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.fixture
def acme(organization):
    who = customer(organization, external_id="acme")
    subscribe(organization, who, plan(organization, amount_cents=3100), utc(2024, 1, 16))
    return who


def test_bill_a_past_date_as_if_the_clock_had_run(acme):
    out, err = run("--date", "2024-02-01")

    [invoice] = Invoice.objects.all()
    assert (invoice.issuing_date, invoice.total_amount_cents) == (date(2024, 2, 1), 1600)
    assert "billed 1 invoice(s) for 1 customer(s) due 2024-02-01; 0 already billed, 0 failed" in out
    assert "billing" in err  # the progress bar


def test_billing_the_same_date_again_bills_nothing(acme):
    run("--date", "2024-02-01")
    out, _ = run("--date", "2024-02-01")

    assert Invoice.objects.count() == 1
    assert "billed 0 invoice(s) for 0 customer(s)" in out


def test_without_a_date_bills_what_is_due_today(acme):
    out, _ = run(at=utc(2024, 3, 1, 0, 10))

    [invoice] = Invoice.objects.all()
    assert invoice.issuing_date == date(2024, 3, 1)
    assert "due today" in out


def test_customer_option_limits_the_run(organization, acme):
    other = customer(organization, external_id="other")
    subscribe(organization, other, plan(organization), utc(2024, 1, 1))

    run("--date", "2024-02-01", "--customer", "other")

    assert list(Invoice.objects.values_list("customer__external_id", flat=True)) == ["other"]


def test_unknown_customer_is_an_error(acme):
    with pytest.raises(CommandError, match="unknown customer"):
        run("--date", "2024-02-01", "--customer", "nobody")


def test_dry_run_prints_and_writes_nothing(acme):
    out, _ = run("--date", "2024-02-01", "--dry-run")

    assert not Invoice.objects.exists()
    assert "acme\t2024-02-01\t" in out
    assert "1600 EUR" in out
    assert "would bill 1 invoice(s)" in out
    assert "dry run" in out


def test_a_date_yet_to_start_everywhere_is_refused(acme):
    with pytest.raises(CommandError, match="has not started"):
        run("--date", "2024-04-22")


def test_failure_exits_non_zero_and_bills_the_others(organization, acme):
    broken = customer(organization, external_id="broken")
    broken_plan = plan(organization)
    FixedChargeFactory(organization=organization, plan=broken_plan, properties={"amount": "x"})
    subscribe(organization, broken, broken_plan, utc(2024, 1, 1))

    with pytest.raises(CommandError, match="1 customer"):
        run("--date", "2024-02-01")

    assert list(Invoice.objects.values_list("customer__external_id", flat=True)) == ["acme"]


def test_finalize_drafts_command(organization, acme):
    set_entity(organization, invoice_grace_period=2)
    run("--date", "2024-02-01")
    out = StringIO()

    with time_machine.travel(utc(2024, 2, 3, 0, 20), tick=False):
        call_command("finalize_drafts", stdout=out, stderr=StringIO())

    assert Invoice.objects.get().status == Invoice.Status.FINALIZED
    assert "1 draft(s) finalized, 0 failed." in out.getvalue()


def test_finalize_drafts_dry_run_changes_nothing(organization, acme):
    set_entity(organization, invoice_grace_period=2)
    run("--date", "2024-02-01")
    out = StringIO()

    with time_machine.travel(utc(2024, 2, 3, 0, 20), tick=False):
        call_command("finalize_drafts", "--dry-run", stdout=out, stderr=StringIO())

    assert Invoice.objects.get().status == Invoice.Status.DRAFT
    assert "1 draft(s) would be finalized (dry run)." in out.getvalue()
