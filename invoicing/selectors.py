"""Reads of invoices and fees, scoped by organization (spec §12, §13)."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from django.db.models import (
    BooleanField,
    Count,
    ExpressionWrapper,
    F,
    Prefetch,
    Q,
    QuerySet,
    Sum,
)
from django.db.models.functions import Coalesce

from billing.admin_base import admin_change_url
from billing.errors import NotFound
from billing.models import Organization
from customers.models import Customer
from customers.ports import CouponCredit
from metering.ports import ProgressiveInvoiceRow
from metering.usage import ChargeUsage, charges_usage_payload
from metering.usage.current import iso
from plans.models import ChargeFilter
from wallets.ports import BilledFee, DraftFee, DraftInvoice

from .models import (
    AppliedUsageThreshold,
    Credit,
    Fee,
    FeeAppliedTax,
    Invoice,
    InvoiceSubscription,
    InvoicingReason,
)

# spec §12.1: `generating` and `closed` invoices are internal; a deleted draft is gone (404).
VISIBLE_STATUSES = (
    Invoice.Status.DRAFT,
    Invoice.Status.FINALIZED,
    Invoice.Status.VOIDED,
    Invoice.Status.FAILED,
    Invoice.Status.PENDING,
)

_FEE_RELATIONS = (
    "customer",
    "subscription__plan",
    "charge__billable_metric",
    "charge_filter",
    "fixed_charge__add_on",
    "add_on",
    "invoice",
    "true_up_fee",
)


def fees_for_rendering(queryset: QuerySet[Fee]) -> QuerySet[Fee]:
    """Fees with everything their Lago rendering reads (item, subscription, taxes)."""
    return queryset.select_related(*_FEE_RELATIONS).prefetch_related(
        Prefetch("applied_taxes", queryset=FeeAppliedTax.objects.order_by("created_at", "id"))
    )


def invoice_list(*, organization: Organization) -> QuerySet[Invoice]:
    """Visible invoices, newest issuing date first, ready for the list rendering."""
    return (
        Invoice.objects.for_organization(organization)
        .filter(status__in=VISIBLE_STATUSES)
        .select_related("customer__billing_entity", "customer__organization", "billing_entity")
        .prefetch_related(
            "customer__metadata",
            "customer__taxes",
            "metadata",
            "applied_taxes",
            "applied_usage_thresholds__usage_threshold",
        )
        .order_by("-issuing_date", "-created_at", "-id")
    )


def invoice_detail_queryset(*, organization: Organization) -> QuerySet[Invoice]:
    """`invoice_list` plus fees, credits and billing periods (the full InvoiceObject)."""
    return with_invoice_relations(invoice_list(organization=organization))


def invoice_any_status(*, organization: Organization, invoice_id: object) -> Invoice:
    """The invoice whatever its status (a deleted draft, for the DELETE answer)."""
    return with_invoice_relations(
        Invoice.objects.for_organization(organization).select_related(
            "customer__billing_entity", "customer__organization", "billing_entity"
        )
    ).get(pk=invoice_id)


def with_invoice_relations(queryset: QuerySet[Invoice]) -> QuerySet[Invoice]:
    """Prefetches what the full InvoiceObject renders: fees, credits, billing periods."""
    return queryset.prefetch_related(
        "customer__metadata",
        "customer__taxes",
        "metadata",
        "applied_taxes",
        "applied_usage_thresholds__usage_threshold",
        Prefetch(
            "fees",
            queryset=fees_for_rendering(Fee.objects.filter(deleted_at__isnull=True)).order_by(
                "created_at", "id"
            ),
        ),
        Prefetch(
            "credits",
            queryset=Credit.objects.select_related(
                "applied_coupon__coupon", "progressive_billing_invoice", "invoice", "credit_note"
            ),
        ),
        Prefetch(
            "invoice_subscriptions",
            queryset=InvoiceSubscription.objects.select_related(
                "subscription__plan",
                "subscription__customer__billing_entity",
                "subscription__previous_subscription__plan",
            ),
        ),
    )


def invoice_get(*, organization: Organization, lago_id: str) -> Invoice:
    """The visible invoice with this id, else 404 `invoice_not_found`."""
    invoice = (
        invoice_detail_queryset(organization=organization).filter(pk=_uuid_or_none(lago_id)).first()
        if _uuid_or_none(lago_id)
        else None
    )
    if invoice is None:
        raise NotFound("invoice")
    return invoice


def fee_list(*, organization: Organization) -> QuerySet[Fee]:
    """Fees not deleted, on a visible invoice or without one, newest first (spec §13)."""
    return (
        fees_for_rendering(Fee.objects.for_organization(organization))
        .filter(deleted_at__isnull=True)
        .filter(Q(invoice__isnull=True) | Q(invoice__status__in=VISIBLE_STATUSES))
        .order_by("-created_at", "-id")
    )


def fee_get(*, organization: Organization, lago_id: str) -> Fee:
    """The listed fee with this id, else 404 `fee_not_found`."""
    fee = (
        fee_list(organization=organization).filter(pk=_uuid_or_none(lago_id)).first()
        if _uuid_or_none(lago_id)
        else None
    )
    if fee is None:
        raise NotFound("fee")
    return fee


# spec §12.8: voiding an invoice gives its coupon credits back to their applied coupons
CONSUMES_COUPON = Q(voided_at=None)


def coupon_credits_consuming(applied_coupon_ids: Iterable[uuid.UUID]) -> QuerySet[Credit]:
    """Credits that still consume their applied coupons (spec §15.3 step 4: what is left of a
    fixed coupon applied once is its amount minus these)."""
    return Credit.objects.filter(CONSUMES_COUPON, applied_coupon_id__in=list(applied_coupon_ids))


def coupon_credits_by_applied_coupon(
    *, applied_coupon_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[CouponCredit]]:
    """`customers.ports.coupon_credits`: every credit drawn from these applied coupons, oldest
    first, with its invoice's payment status (one query)."""
    credits: dict[uuid.UUID, list[CouponCredit]] = {}
    rows = (
        Credit.objects.filter(applied_coupon_id__in=list(applied_coupon_ids))
        .annotate(consumes=ExpressionWrapper(CONSUMES_COUPON, output_field=BooleanField()))
        .select_related("invoice")
        .order_by("created_at", "id")
    )
    for credit in rows:
        credits.setdefault(credit.applied_coupon_id, []).append(
            CouponCredit(
                lago_id=credit.pk,
                amount_cents=credit.amount_cents,
                amount_currency=credit.amount_currency,
                before_taxes=credit.before_taxes,
                invoice_id=credit.invoice_id,
                invoice_payment_status=credit.invoice.payment_status,
                consumes=credit.consumes,
            )
        )
    return credits


def customer_invoice_list(*, customer: Customer) -> QuerySet[Invoice]:
    """A customer's visible invoices, newest first (admin 360 panel)."""
    return (
        Invoice.objects.filter(customer=customer, status__in=VISIBLE_STATUSES)
        .select_related("billing_entity")
        .order_by("-issuing_date", "-created_at", "-id")
    )


@dataclass(frozen=True)
class OutstandingBalance:
    """What a customer still has to pay in one currency."""

    currency: str
    due_cents: int
    overdue_cents: int
    invoices: int


def customer_outstanding_balances(*, customer: Customer) -> list[OutstandingBalance]:
    """Unpaid amounts of the customer's finalized invoices by currency (total - paid - credit
    note offsets); a voided invoice owes nothing, whatever its `payment_status` (Lago:
    total_due_amount_cents 0)."""
    due = (
        F("total_amount_cents")
        - F("total_paid_amount_cents")
        - F("total_offsetted_credit_note_amount_cents")
    )
    rows = (
        Invoice.objects.filter(
            customer=customer,
            status=Invoice.Status.FINALIZED,
            payment_status__in=(Invoice.PaymentStatus.PENDING, Invoice.PaymentStatus.FAILED),
        )
        .alias(due=due)
        .filter(due__gt=0)
        .values("currency")
        .annotate(
            due_cents=Sum(due),
            overdue_cents=Coalesce(Sum(due, filter=Q(payment_overdue=True)), 0),
            invoices=Count("id"),
        )
        .order_by("currency")
    )
    return [OutstandingBalance(**row) for row in rows]


def overdue_cutoff(now: datetime) -> date:
    """Last due date that is overdue at `now`.

    Lago compares `payment_due_date < now` on a DATE column, so an invoice is overdue from 00:00
    UTC of its due date on (spec §12.7): due dates up to the UTC date of the instant just before.
    """
    return (now.astimezone(UTC) - timedelta(microseconds=1)).date()


def overdue_candidates(*, now: datetime) -> QuerySet[Invoice]:
    """Finalized invoices not paid, no lost dispute, due before `now`, not flagged yet."""
    return Invoice.objects.filter(
        status=Invoice.Status.FINALIZED,
        payment_overdue=False,
        payment_dispute_lost_at__isnull=True,
        payment_due_date__lte=overdue_cutoff(now),
    ).exclude(payment_status=Invoice.PaymentStatus.SUCCEEDED)


def document_locale(invoice: Invoice) -> str:
    """The language of the invoice's documents: customer > billing entity > English (§2.4)."""
    return invoice.customer.document_locale or invoice.billing_entity.document_locale or "en"


def _uuid_or_none(value: str) -> str | None:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        return None


def draft_invoices_for_wallets(*, customer_id: uuid.UUID) -> list[DraftInvoice]:
    """The customer's draft invoices as the wallets' ongoing balance reads them (spec §17.4;
    bound to `wallets.ports.draft_invoices_for_customer`): currency, total with taxes,
    and each fee's amount + taxes - coupons with the fee type and metric that scope it."""
    from decimal import Decimal

    from billing.money import round_cents

    invoices = Invoice.objects.filter(
        customer_id=customer_id, status=Invoice.Status.DRAFT
    ).prefetch_related(
        Prefetch(
            "fees",
            queryset=Fee.objects.filter(deleted_at__isnull=True)
            .select_related("charge")
            .order_by("created_at", "id"),
            to_attr="live_fees",
        )
    )
    return [
        DraftInvoice(
            currency=invoice.currency,
            total_amount_cents=invoice.total_amount_cents,
            fees=[
                DraftFee(
                    fee_type=fee.fee_type,
                    billable_metric_id=fee.charge.billable_metric_id if fee.charge else None,
                    amount_cents=round_cents(
                        Decimal(fee.amount_cents + fee.taxes_amount_cents)
                        - fee.precise_coupons_amount_cents
                    ),
                )
                for fee in invoice.live_fees
            ],
        )
        for invoice in invoices.order_by("created_at", "id")
    ]


def progressive_billed_fees_for_wallets(
    *, subscription_ids: Collection[uuid.UUID], at: datetime
) -> list[BilledFee]:
    """The charge fees of the progressive billing invoices (finalized, or failed on taxes) of
    the subscriptions' usage windows containing `at`, each for amount + taxes - coupons and
    earlier progressive credits (bound to `wallets.ports.progressive_billed_fees`; Lago
    `Customers::RefreshWalletsService#progressive_billing_fees`): together what the period's
    progressive invoices billed."""
    from decimal import Decimal

    from billing.money import round_cents

    invoice_ids = InvoiceSubscription.objects.filter(
        subscription_id__in=list(subscription_ids),
        invoicing_reason=InvoicingReason.PROGRESSIVE_BILLING,
        charges_from_datetime__lte=at,
        charges_to_datetime__gt=at,
        invoice__invoice_type=Invoice.InvoiceType.PROGRESSIVE_BILLING,
        invoice__status__in=(Invoice.Status.FINALIZED, Invoice.Status.FAILED),
    ).values("invoice_id")
    fees = (
        Fee.objects.filter(
            invoice_id__in=invoice_ids, fee_type=Fee.FeeType.CHARGE, deleted_at__isnull=True
        )
        .select_related("charge", "invoice")
        .order_by("created_at", "id")
    )
    return [
        BilledFee(
            currency=fee.invoice.currency,
            fee_type=fee.fee_type,
            billable_metric_id=fee.charge.billable_metric_id if fee.charge else None,
            amount_cents=round_cents(
                Decimal(fee.amount_cents + fee.taxes_amount_cents)
                - fee.precise_coupons_amount_cents
            ),
        )
        for fee in fees
    ]


def invoice_labels_for_wallets(*, invoice_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, str]:
    """Invoice numbers by id, "Draft invoice" for those without one (bound to
    `wallets.ports.invoice_labels`: the wallet ledger names invoices by number)."""
    invoices = Invoice.objects.filter(pk__in=invoice_ids).values_list("pk", "number")
    return {pk: number or "Draft invoice" for pk, number in invoices}


def _fee_usage(fee: Fee) -> ChargeUsage:
    return ChargeUsage(
        charge=fee.charge,
        charge_filter=fee.charge_filter,
        grouped_by=fee.grouped_by or {},
        units=fee.units,
        total_aggregated_units=fee.total_aggregated_units,
        events_count=fee.events_count,
        amount_cents=fee.amount_cents,
        precise_amount_cents=fee.precise_amount_cents,
        unit_amount_cents=fee.unit_amount_cents,
        precise_unit_amount=fee.precise_unit_amount,
        amount_details=fee.amount_details or {},
        currency=fee.amount_currency,
        invoice_display_name=fee.invoice_display_name,
    )


def customer_past_usage(
    *,
    customer: Customer,
    external_subscription_id: str,
    periods_count: int | None = None,
    billable_metric_code: str | None = None,
) -> list[dict]:
    """Usage of the invoiced periods of a subscription, newest first (spec §25 `past_usage`),
    from the charge fees of its finalized invoices; empty while nothing was invoiced."""
    subscriptions = list(customer.subscriptions.filter(external_id=external_subscription_id))
    if not subscriptions:
        raise NotFound("subscription")
    periods = (
        InvoiceSubscription.objects.filter(
            subscription__in=subscriptions,
            invoice__status=Invoice.Status.FINALIZED,
            charges_from_datetime__isnull=False,
            charges_to_datetime__isnull=False,
        )
        .exclude(
            invoicing_reason__in=[
                InvoicingReason.IN_ADVANCE_CHARGE,
                InvoicingReason.PROGRESSIVE_BILLING,
            ]
        )
        .select_related("invoice")
        .order_by("-charges_to_datetime", "-created_at")
    )
    if periods_count:
        periods = periods[:periods_count]
    body = []
    for period in periods:
        fees = (
            Fee.objects.filter(
                invoice_id=period.invoice_id,
                subscription_id=period.subscription_id,
                fee_type=Fee.FeeType.CHARGE,
                deleted_at__isnull=True,
            )
            .select_related("charge__billable_metric", "charge_filter")
            .prefetch_related(
                Prefetch(
                    "charge__filters",
                    queryset=ChargeFilter.objects.alive().order_by("created_at", "id"),
                    to_attr="live_filters",
                )
            )
            .order_by("created_at", "id")
        )
        if billable_metric_code:
            fees = fees.filter(charge__billable_metric__code=billable_metric_code)
        fees = list(fees)
        amount_cents = sum(fee.amount_cents for fee in fees)
        taxes = sum(fee.taxes_amount_cents for fee in fees)
        body.append(
            {
                "from_datetime": iso(period.charges_from_datetime),
                "to_datetime": iso(period.charges_to_datetime),
                "issuing_date": period.invoice.issuing_date.isoformat(),
                "lago_invoice_id": str(period.invoice_id),
                "currency": period.invoice.currency,
                "amount_cents": amount_cents,
                "taxes_amount_cents": taxes,
                "total_amount_cents": amount_cents + taxes,
                "charges_usage": charges_usage_payload([_fee_usage(fee) for fee in fees]),
            }
        )
    return body


def _lifetime_fees(subscription_ids: Collection[uuid.UUID]) -> QuerySet:
    return Fee.objects.filter(
        subscription_id__in=list(subscription_ids),
        fee_type=Fee.FeeType.CHARGE,
        deleted_at__isnull=True,
        charge__pay_in_advance=False,
        invoice__invoice_type=Invoice.InvoiceType.SUBSCRIPTION,
        invoice__status__in=[Invoice.Status.FINALIZED, Invoice.Status.DRAFT],
    )


def invoiced_usage_by_subscription(
    *, subscription_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, int]:
    """`invoiced_usage_for_lifetime` per subscription, in one query (bound to
    `metering.ports.invoiced_usage_by_subscription`); subscriptions without fees left out."""
    from django.db.models import Sum

    rows = (
        _lifetime_fees(subscription_ids)
        .values("subscription_id")
        .annotate(total=Sum("amount_cents"))
        .order_by()
    )
    return {row["subscription_id"]: int(row["total"] or 0) for row in rows}


def invoiced_usage_for_lifetime(*, subscription_ids: Collection[uuid.UUID]) -> int:
    """Charge fees (pre-tax cents, in-arrears charges) of the finalized and draft subscription
    invoices of these subscriptions: the invoiced part of their lifetime usage (bound to
    `metering.ports.invoiced_usage_amount_cents`; Lago counts drafts, whose usage left the
    current period). Progressive billing invoices are left out: the period's subscription
    invoice bills the same usage again in full (their amount only counts for the period still
    open, through the threshold check)."""
    from django.db.models import Sum

    total = _lifetime_fees(subscription_ids).aggregate(total=Sum("amount_cents"))["total"]
    return int(total or 0)


def usage_thresholds_reached_at(
    *, subscription_ids: Collection[uuid.UUID]
) -> dict[tuple[int, bool], list[datetime]]:
    """When each usage threshold was reached by these subscriptions: the creation instants of
    the live progressive billing invoices that applied it, oldest first, by `(amount_cents,
    recurring)` (bound to `metering.ports.usage_thresholds_reached_at`)."""
    reached: dict[tuple[int, bool], list[datetime]] = {}
    rows = (
        AppliedUsageThreshold.objects.filter(subscription_id__in=list(subscription_ids))
        .exclude(invoice__status__in=[Invoice.Status.VOIDED, Invoice.Status.DELETED])
        .order_by("invoice__created_at", "occurrence")
        .values_list(
            "usage_threshold__amount_cents", "usage_threshold__recurring", "invoice__created_at"
        )
    )
    for amount, recurring, created_at in rows:
        reached.setdefault((amount, recurring), []).append(created_at)
    return reached


def progressive_invoices_of_period(
    *, subscription_id: uuid.UUID, at: datetime
) -> list[ProgressiveInvoiceRow]:
    """The progressive billing invoices of the subscription's period containing `at`, oldest
    first, as the subscription page lists them (bound to `metering.ports.progressive_invoices`)."""
    invoices = (
        Invoice.objects.filter(
            invoice_type=Invoice.InvoiceType.PROGRESSIVE_BILLING,
            status__in=VISIBLE_STATUSES,
            invoice_subscriptions__subscription_id=subscription_id,
            invoice_subscriptions__charges_from_datetime__lte=at,
            invoice_subscriptions__charges_to_datetime__gt=at,
        )
        .prefetch_related(
            Prefetch(
                "applied_usage_thresholds",
                queryset=AppliedUsageThreshold.objects.select_related("usage_threshold"),
            )
        )
        .order_by("created_at", "id")
    )
    return [
        ProgressiveInvoiceRow(
            number=invoice.number,
            url=admin_change_url(invoice),
            issuing_date=invoice.issuing_date,
            status=invoice.status,
            currency=invoice.currency,
            fees_amount_cents=invoice.fees_amount_cents,
            progressive_billing_credit_amount_cents=invoice.progressive_billing_credit_amount_cents,
            total_amount_cents=invoice.total_amount_cents,
            thresholds=tuple(
                applied.usage_threshold.amount_cents
                for applied in invoice.applied_usage_thresholds.all()
            ),
        )
        for invoice in invoices
    ]
