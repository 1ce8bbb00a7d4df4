"""Prepaid credits applied to invoices at finalization (spec §17.5, §12.3 step 12), their
estimate in previews (§12.11) and their return when an invoice is voided (§12.8)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
import time_machine

from billing.actors import SYSTEM
from customers.services.applied_coupons import applied_coupon_create
from invoicing import calculation
from invoicing.models import Invoice
from invoicing.services.generation import invoice_preview
from invoicing.services.in_advance import in_advance_fees_create
from invoicing.services.lifecycle import invoice_finalize
from invoicing.services.one_off import OneOffFee, invoice_create_one_off
from invoicing.services.void import invoice_void
from plans.models import BillableMetric
from tests.invoicing.billing_helpers import (
    bill,
    customer,
    only_invoice,
    plan,
    send_event,
    set_entity,
    subscribe,
    tax,
    utc,
)
from tests.plans.factories import AddOnFactory, BillableMetricFactory, ChargeFactory, CouponFactory
from tests.wallets.factories import WalletFactory, fund_wallet
from wallets.models import Wallet, WalletTarget, WalletTransaction
from wallets.services import ledger
from wallets.services.consumption import WalletFunds, allocate, buckets

pytestmark = pytest.mark.django_db

Tx = WalletTransaction
GRANTED, PURCHASED = Tx.TransactionStatus.GRANTED, Tx.TransactionStatus.PURCHASED
JAN = utc(2024, 1, 1)
FEB_1 = date(2024, 2, 1)


@pytest.fixture(autouse=True)
def _no_pdf(settings):
    settings.INVOICE_PDF_ON_FINALIZE = False


@pytest.fixture
def acme(organization):
    return customer(organization, external_id="acme")


def usage_plan(organization, amount_cents: int, **charges: str):
    """A monthly plan in arrears with one standard charge per metric code (`code="2.00"`)."""
    monthly = plan(organization, amount_cents=amount_cents)
    for code, amount in charges.items():
        metric = BillableMetric.objects.filter(organization=organization, code=code).first()
        ChargeFactory(
            organization=organization,
            plan=monthly,
            billable_metric=metric
            or BillableMetricFactory(organization=organization, code=code, count=True),
            properties={"amount": amount},
        )
    return monthly


def january_invoice(organization, who, monthly, events: tuple[str, ...] = ()) -> Invoice:
    subscription = subscribe(organization, who, monthly, JAN)
    for index, code in enumerate(events):
        send_event(organization, subscription, code, utc(2024, 1, 10, index))
    return only_invoice(bill(who, FEB_1))


def wallet(organization, who, credits: str = "0", **fields) -> Wallet:
    made = WalletFactory(organization=organization, customer=who, **fields)
    if Decimal(credits):
        fund_wallet(made, credits)
    return made


def limit_to_metrics(made: Wallet, *codes: str) -> None:
    for code in codes:
        WalletTarget.objects.create(
            organization_id=made.organization_id,
            wallet=made,
            billable_metric=BillableMetric.objects.get(
                organization_id=made.organization_id, code=code
            ),
        )


def balance(made: Wallet) -> int:
    made.refresh_from_db()
    return made.balance_cents


def invoiced(made: Wallet) -> list[tuple[int, object]]:
    return list(
        Tx.objects.filter(wallet=made, transaction_status=Tx.TransactionStatus.INVOICED)
        .order_by("created_at")
        .values_list("amount_cents", "invoice_id")
    )


def v83_setup(organization, acme, credits: str) -> tuple[Wallet, object]:
    """V83 without credit notes: subscription 50.00 + usage 20.00 - coupon 10.00, tax 10%."""
    acme.taxes.add(tax(organization, "vat10", "10"))
    coupon = CouponFactory(organization=organization, amount_cents=1000, frequency="once")
    applied_coupon_create(customer=acme, coupon=coupon, actor=SYSTEM, now=JAN)
    return wallet(organization, acme, credits), usage_plan(organization, 5000, calls="20")


# --------------------------------------------------------------------------------------------
# V83: order of the totals


def test_v83_prepaid_credits_come_after_coupons_and_taxes(organization, acme):
    _, monthly = v83_setup(organization, acme, "30")

    invoice = january_invoice(organization, acme, monthly, ("calls",))

    assert (invoice.fees_amount_cents, invoice.coupons_amount_cents) == (7000, 1000)
    assert (invoice.sub_total_excluding_taxes_amount_cents, invoice.taxes_amount_cents) == (
        6000,
        600,
    )
    assert invoice.sub_total_including_taxes_amount_cents == 6600
    assert (invoice.prepaid_credit_amount_cents, invoice.total_amount_cents) == (3000, 3600)
    assert invoice.status == Invoice.Status.FINALIZED
    assert invoice.payment_status == Invoice.PaymentStatus.PENDING


def test_v83_draw_is_one_settled_invoiced_transaction_of_the_invoice(organization, acme):
    main, monthly = v83_setup(organization, acme, "30")

    invoice = january_invoice(organization, acme, monthly, ("calls",))

    [out] = Tx.objects.filter(wallet=main, transaction_type="outbound")
    assert (out.transaction_status, out.status, out.amount_cents) == ("invoiced", "settled", 3000)
    assert (out.invoice_id, out.credit_amount) == (invoice.pk, Decimal("30"))
    main.refresh_from_db()
    assert (main.balance_cents, main.credits_balance, main.consumed_credits) == (
        0,
        Decimal(0),
        Decimal("30"),
    )
    assert ledger.wallet_drifts(main) == []


def test_v83_wallet_covering_everything_pays_the_invoice(organization, acme):
    main, monthly = v83_setup(organization, acme, "100")

    invoice = january_invoice(organization, acme, monthly, ("calls",))

    assert (invoice.prepaid_credit_amount_cents, invoice.total_amount_cents) == (6600, 0)
    assert invoice.payment_status == Invoice.PaymentStatus.SUCCEEDED
    assert balance(main) == 3400


def test_granted_and_purchased_split_follows_the_inbound_consumed(organization, acme):
    main = wallet(organization, acme)
    fund_wallet(main, "20", status=PURCHASED)
    fund_wallet(main, "10", priority=1)  # granted, consumed first (priority 1)
    monthly = usage_plan(organization, 2500)

    invoice = january_invoice(organization, acme, monthly)

    assert invoice.prepaid_credit_amount_cents == 2500
    assert invoice.prepaid_granted_credit_amount_cents == 1000
    assert invoice.prepaid_purchased_credit_amount_cents == 1500


# --------------------------------------------------------------------------------------------
# Which wallets pay (spec §17.5 step 1)


def test_terminated_wallet_is_not_used(organization, acme):
    main = wallet(organization, acme, "30")
    main.status, main.terminated_at = Wallet.Status.TERMINATED, JAN
    main.save(update_fields=["status", "terminated_at"])

    invoice = january_invoice(organization, acme, usage_plan(organization, 5000))

    assert (invoice.prepaid_credit_amount_cents, invoice.total_amount_cents) == (0, 5000)
    assert balance(main) == 3000


def test_wallet_past_its_expiration_is_not_used_before_the_job_ends_it(organization, acme):
    main = wallet(organization, acme, "30", expiration_at=utc(2024, 1, 31))

    invoice = january_invoice(organization, acme, usage_plan(organization, 5000))

    assert invoice.prepaid_credit_amount_cents == 0
    assert balance(main) == 3000


def test_wallet_of_another_currency_is_not_used(organization, acme):
    dollars = wallet(organization, acme, "30", currency="USD")

    invoice = january_invoice(organization, acme, usage_plan(organization, 5000))

    assert invoice.prepaid_credit_amount_cents == 0
    assert balance(dollars) == 3000


def test_wallet_of_another_customer_is_not_used(organization, acme):
    other = wallet(organization, customer(organization, external_id="other"), "30")

    invoice = january_invoice(organization, acme, usage_plan(organization, 5000))

    assert invoice.prepaid_credit_amount_cents == 0
    assert balance(other) == 3000


def test_one_off_invoice_uses_no_prepaid_credits(organization, acme):
    main = wallet(organization, acme, "30")
    AddOnFactory(organization=organization, code="setup", amount_cents=2000)

    invoice = invoice_create_one_off(
        organization=organization,
        external_customer_id="acme",
        fees=[OneOffFee(add_on_code="setup")],
        actor=SYSTEM,
        now=utc(2024, 2, 1),
    )

    assert (invoice.prepaid_credit_amount_cents, invoice.total_amount_cents) == (0, 2000)
    assert balance(main) == 3000


# --------------------------------------------------------------------------------------------
# Priority and scope across wallets (spec §17.5 steps 2-4)


def three_wallets(organization, acme) -> tuple[Wallet, Wallet, Wallet]:
    """Subscription 50.00 + calls 20.00 + storage 30.00 (no tax) and three wallets: by fee type
    (priority 1), by metric (priority 2), unrestricted (priority 3)."""
    by_type = wallet(organization, acme, "40", priority=1, allowed_fee_types=["subscription"])
    by_metric = wallet(organization, acme, "50", priority=2)
    anything = wallet(organization, acme, "30", priority=3)
    return by_type, by_metric, anything


def test_wallets_pay_by_priority_within_their_scope(organization, acme):
    monthly = usage_plan(organization, 5000, calls="20", storage="30")
    by_type, by_metric, anything = three_wallets(organization, acme)
    limit_to_metrics(by_metric, "calls")

    invoice = january_invoice(organization, acme, monthly, ("calls", "storage"))

    # by_type: 40.00 of the subscription; by_metric: calls 20.00; anything: the 10.00 left of
    # the subscription, then 20.00 of the storage (largest buckets first)
    assert [a for a, _ in invoiced(by_type)] == [4000]
    assert [a for a, _ in invoiced(by_metric)] == [2000]
    assert [a for a, _ in invoiced(anything)] == [3000]
    assert (invoice.prepaid_credit_amount_cents, invoice.total_amount_cents) == (9000, 1000)


def test_metric_limited_wallet_pays_nothing_for_other_fees(organization, acme):
    monthly = usage_plan(organization, 5000, calls="20", storage="30")
    by_metric = wallet(organization, acme, "100")
    limit_to_metrics(by_metric, "calls")

    invoice = january_invoice(organization, acme, monthly, ("calls", "storage"))

    assert [a for a, _ in invoiced(by_metric)] == [2000]
    assert invoice.total_amount_cents == 8000


def test_equal_priorities_go_by_creation(organization, acme):
    first = wallet(organization, acme, "30", priority=5)
    second = wallet(organization, acme, "30", priority=5)

    january_invoice(organization, acme, usage_plan(organization, 4000))

    assert [a for a, _ in invoiced(first)] == [3000]
    assert [a for a, _ in invoiced(second)] == [1000]


def _line(key, fee_type, cents, metric=None, rate=None) -> calculation.FeeLine:
    taxes = (calculation.TaxRate("t", "t", Decimal(rate)),) if rate else ()
    return calculation.FeeLine(
        key=key, fee_type=fee_type, amount_cents=cents, taxes=taxes, charge_metric_code=metric
    )


def test_bucket_reconciliation_adds_the_rounding_cents_to_the_largest_bucket():
    lines = [_line("a", "charge", 1429, "count_1", "24"), _line("b", "subscription", 1000)]
    taxes = calculation.apply_taxes(lines)  # 342.96 -> invoice total 2,772

    caps = buckets(lines, 1000 + 1429 + taxes.taxes_amount_cents)

    assert caps == {("charge", "count_1"): Decimal(1772), ("subscription", None): Decimal(1000)}


def test_bucket_reconciliation_ignores_gaps_larger_than_a_cent_per_bucket():
    lines = [_line("a", "subscription", 1000)]

    assert buckets(lines, 1002) == {("subscription", None): Decimal(1000)}


def test_allocation_rounds_each_wallet_to_whole_cents():
    lines = [
        _line("a", "charge", 1000, "m1", "12.345"),  # cap 1,123.45
        _line("b", "charge", 1000, "m2", "12.345"),  # cap 1,123.45
    ]
    calculation.apply_taxes(lines)  # 246.90 -> 247: total 2,247, the m1 bucket 1,123.55
    only_m1 = WalletFunds(wallet_id="w1", balance_cents=5000, metric_codes=frozenset({"m1"}))
    rest = WalletFunds(wallet_id="w2", balance_cents=5000)

    assert allocate([only_m1, rest], lines, 2247) == [("w1", 1124), ("w2", 1123)]


# --------------------------------------------------------------------------------------------
# V84: pay-in-advance charges and a metric-limited wallet


def v84_setup(organization, acme):
    monthly = plan(organization, amount_cents=0)
    vat24 = tax(organization, "vat24", "24")
    for code, amount, taxed in (("count_1", "14.29", True), ("count_2", "14.27", True)):
        charge = ChargeFactory(
            organization=organization,
            plan=monthly,
            billable_metric=BillableMetricFactory(organization=organization, code=code, count=True),
            pay_in_advance=True,
            properties={"amount": amount},
        )
        if taxed:
            charge.taxes.add(vat24)
    ChargeFactory(
        organization=organization,
        plan=monthly,
        billable_metric=BillableMetricFactory(organization=organization, code="other", count=True),
        pay_in_advance=True,
        properties={"amount": "10"},
    )
    main = wallet(organization, acme, "39")
    limit_to_metrics(main, "count_1", "count_2")
    return main, subscribe(organization, acme, monthly, utc(2024, 3, 1))


def in_advance_invoice(organization, subscription, code: str, at) -> Invoice:
    event = send_event(organization, subscription, code, at)
    [fee] = in_advance_fees_create(
        organization_id=organization.id,
        external_subscription_id=subscription.external_id,
        transaction_id=event.transaction_id,
        actor=SYSTEM,
        now=at,
    )
    return Invoice.objects.get(pk=fee.invoice_id)


def test_v84_event_on_another_metric_uses_no_credits(organization, acme):
    main, subscription = v84_setup(organization, acme)

    invoice = in_advance_invoice(organization, subscription, "other", utc(2024, 3, 5, 10))

    assert (invoice.prepaid_credit_amount_cents, invoice.total_amount_cents) == (0, 1000)
    assert balance(main) == 3900


def test_v84_events_on_the_wallet_metrics_are_paid_by_the_wallet(organization, acme):
    main, subscription = v84_setup(organization, acme)
    in_advance_invoice(organization, subscription, "other", utc(2024, 3, 5, 10))

    first = in_advance_invoice(organization, subscription, "count_1", utc(2024, 3, 5, 11))
    assert (first.fees_amount_cents, first.taxes_amount_cents) == (1429, 343)
    assert (first.prepaid_credit_amount_cents, first.total_amount_cents) == (1772, 0)
    main.refresh_from_db()
    assert main.credits_balance == Decimal("21.28")

    second = in_advance_invoice(organization, subscription, "count_2", utc(2024, 3, 5, 12))
    assert (second.fees_amount_cents, second.taxes_amount_cents) == (1427, 342)
    assert (second.prepaid_credit_amount_cents, second.total_amount_cents) == (1769, 0)
    main.refresh_from_db()
    assert main.credits_balance == Decimal("3.59")
    assert ledger.wallet_drifts(main) == []


# --------------------------------------------------------------------------------------------
# Drafts, previews


def test_draft_consumes_no_credits_until_finalized(organization, acme):
    set_entity(organization, invoice_grace_period=3)
    main = wallet(organization, acme, "30")

    draft = january_invoice(organization, acme, usage_plan(organization, 5000))
    assert (draft.status, draft.prepaid_credit_amount_cents) == ("draft", 0)
    assert balance(main) == 3000

    final = invoice_finalize(invoice=draft, actor=SYSTEM, now=utc(2024, 2, 4))

    assert (final.prepaid_credit_amount_cents, final.total_amount_cents) == (3000, 2000)
    assert final.prepaid_granted_credit_amount_cents == 3000
    assert invoiced(main) == [(3000, final.pk)]


def test_preview_estimates_prepaid_credits_without_drawing(organization, acme):
    main = wallet(organization, acme, "30")
    subscription = subscribe(organization, acme, usage_plan(organization, 5000), JAN)

    with time_machine.travel(utc(2024, 1, 10), tick=False):
        preview = invoice_preview(customer=acme, subscriptions=[subscription], now=utc(2024, 1, 10))

    assert (preview.invoice.prepaid_credit_amount_cents, preview.invoice.total_amount_cents) == (
        3000,
        2000,
    )
    assert balance(main) == 3000
    assert invoiced(main) == []


# --------------------------------------------------------------------------------------------
# Void (spec §12.8)


def test_void_gives_the_credits_back_by_kind(organization, acme):
    main = wallet(organization, acme)
    fund_wallet(main, "20", status=PURCHASED)
    fund_wallet(main, "10", priority=1)
    invoice = january_invoice(organization, acme, usage_plan(organization, 2500))

    invoice_void(invoice=invoice, actor=SYSTEM, now=utc(2024, 2, 10), generate_credit_note=False)

    back = Tx.objects.filter(wallet=main, voided_invoice_id=invoice.pk).order_by(
        "transaction_status"
    )
    assert [(t.transaction_type, t.transaction_status, t.status, t.amount_cents) for t in back] == [
        ("inbound", "granted", "settled", 1000),
        ("inbound", "purchased", "settled", 1500),
    ]
    main.refresh_from_db()
    assert (main.balance_cents, main.consumed_credits) == (3000, Decimal(0))
    assert ledger.wallet_drifts(main) == []


def test_void_gives_nothing_back_to_a_terminated_wallet(organization, acme):
    main = wallet(organization, acme, "30")
    invoice = january_invoice(organization, acme, usage_plan(organization, 2000))
    main.status = Wallet.Status.TERMINATED
    main.save(update_fields=["status"])

    invoice_void(invoice=invoice, actor=SYSTEM, now=utc(2024, 2, 10), generate_credit_note=False)

    assert not Tx.objects.filter(wallet=main, voided_invoice_id=invoice.pk).exists()
    assert balance(main) == 1000


# --------------------------------------------------------------------------------------------
# §17.4: a finalized invoice refreshes the ongoing balance at once


def test_finalization_refreshes_the_wallets_ongoing_balance_at_once(
    organization, acme, django_capture_on_commit_callbacks
):
    main = wallet(organization, acme, "100")
    monthly = usage_plan(organization, 5000, calls="20")

    with django_capture_on_commit_callbacks(execute=True):
        january_invoice(organization, acme, monthly, ("calls",))

    main.refresh_from_db()
    assert main.last_balance_sync_at is not None
    assert (main.balance_cents, main.ongoing_balance_cents) == (3000, 3000)
