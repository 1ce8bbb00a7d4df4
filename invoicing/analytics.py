"""Finance analytics: monthly revenue, MRR, invoiced usage, collection and overdue figures.

One set of read functions serves both the `/api/v1/analytics/...` endpoints and the admin
overview page. Every figure is per calendar month (UTC) and per currency, from the month the
organization was created up to the month of `today`; `months` keeps the last N months.
Only finalized invoices count; self-billed invoices and invoices whose payment dispute was lost
are left out. Amounts are integer minor units (rounded half away from zero once, per row).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from django.db import connection
from django.db.models import Count, DecimalField, F, Q, QuerySet, Sum
from django.db.models.functions import Cast, Coalesce, TruncDay, TruncMonth, TruncWeek

from billing.models import BillingEntity, Organization
from billing.money import decimal_string, round_cents
from billing.periods import Interval
from customers.models import Customer
from wallets.models import Wallet

from .models import (
    CollectionFigureDelta,
    CreditNote,
    CustomerFigureDelta,
    DailyUsageFigure,
    Fee,
    Invoice,
    MonthlyFeeFigure,
    MonthlyInvoiceFigure,
    ReceivableFigureDelta,
    SpreadFeeFigure,
)

ZERO = Decimal(0)
DAYS_PER_MONTH = Decimal("30.44")
WEEKS_PER_MONTH = Decimal("4.33")
PRECISE = DecimalField(max_digits=40, decimal_places=15)

# Revenue streams of the overview: fee type -> stream name, in display order.
STREAMS: dict[str, str] = {
    Fee.FeeType.SUBSCRIPTION: "subscription",
    Fee.FeeType.CHARGE: "usage",
    Fee.FeeType.FIXED_CHARGE: "fixed",
    Fee.FeeType.COMMITMENT: "commitment",
    Fee.FeeType.ADD_ON: "one_off",
}


# --- filters and months -----------------------------------------------------------------------


@dataclass(frozen=True)
class Filters:
    """What every analytics read is scoped by. `today` dates the current month."""

    organization: Organization
    today: date
    currency: str | None = None
    billing_entity: BillingEntity | None = None
    external_customer_id: str | None = None
    months: int | None = None

    @property
    def current_month(self) -> date:
        return self.today.replace(day=1)

    @property
    def first_month(self) -> date:
        created = self.organization.created_at.astimezone(UTC).date().replace(day=1)
        if self.months is None:
            return min(created, self.current_month)
        window_start = add_months(self.current_month, -(max(self.months, 1) - 1))
        return min(max(created, window_start), self.current_month)

    @property
    def end(self) -> date:
        """The first day after the current month."""
        return add_months(self.current_month, 1)

    def month_list(self) -> list[date]:
        months, month = [], self.first_month
        while month <= self.current_month:
            months.append(month)
            month = add_months(month, 1)
        return months


def add_months(month: date, count: int) -> date:
    """The first day of the month `count` months after (or before) `month`'s month."""
    index = month.year * 12 + (month.month - 1) + count
    return date(index // 12, index % 12 + 1, 1)


def month_instant(month: date) -> str:
    """A month as Lago writes it: the ISO datetime of its first instant, UTC."""
    return datetime(month.year, month.month, 1, tzinfo=UTC).isoformat().replace("+00:00", "Z")


def _as_month(value: date | datetime) -> date:
    if isinstance(value, datetime):
        value = value.astimezone(UTC).date() if value.tzinfo else value.date()
    return value.replace(day=1)


def counted_invoices(filters: Filters) -> QuerySet[Invoice]:
    """Finalized invoices that count in analytics, with the entity/customer/currency filters."""
    queryset = Invoice.objects.filter(
        organization=filters.organization,
        status=Invoice.Status.FINALIZED,
        self_billed=False,
        payment_dispute_lost_at__isnull=True,
    )
    if filters.billing_entity is not None:
        queryset = queryset.filter(billing_entity=filters.billing_entity)
    if filters.external_customer_id:
        queryset = queryset.filter(
            customer__external_id=filters.external_customer_id, customer__deleted_at__isnull=True
        )
    if filters.currency:
        queryset = queryset.filter(currency=filters.currency)
    return queryset


def _in_window(queryset: QuerySet, field_name: str, filters: Filters) -> QuerySet:
    return queryset.filter(
        **{f"{field_name}__gte": filters.first_month, f"{field_name}__lt": filters.end}
    )


def _in_window_instant(queryset: QuerySet, field_name: str, filters: Filters) -> QuerySet:
    start = datetime.combine(filters.first_month, datetime.min.time(), tzinfo=UTC)
    end = datetime.combine(filters.end, datetime.min.time(), tzinfo=UTC)
    return queryset.filter(**{f"{field_name}__gte": start, f"{field_name}__lt": end})


# --- gross revenue ----------------------------------------------------------------------------


def _deltas_apply(filters: Filters) -> bool:
    """Whether the figure deltas answer: a PostgreSQL trigger keeps them, and they have no
    customer filter (one customer's figures are read from its invoices)."""
    return not filters.external_customer_id and connection.vendor == "postgresql"


def invoice_month_rows(filters: Filters) -> list[dict]:
    """Counted invoices of the window summed per issuing month, currency, billing entity and
    payment status: what gross revenue and invoice collection are made of (one query). Summed
    from the collection figure deltas (kept by the database), or for one customer (or off
    PostgreSQL) from the invoices."""
    if _deltas_apply(filters):
        rows = (
            _in_window(_figures(CollectionFigureDelta, filters), "issuing_month", filters)
            .values("issuing_month", "currency", "billing_entity_id", "payment_status")
            .annotate(amount=Sum("total_amount_cents"), count=Sum("invoices_count"))
            .filter(~Q(count=0) | ~Q(amount=0))
            .order_by()
        )
        return [{"m": row.pop("issuing_month"), **row} for row in rows]
    # grouped by day in the order of the counted-invoices index (PostgreSQL then sums them from
    # the index alone), folded into months here
    columns = ("issuing_date", "currency", "billing_entity_id", "payment_status")
    rows = (
        _in_window(counted_invoices(filters), "issuing_date", filters)
        .values(*columns)
        .annotate(amount=Sum("total_amount_cents"), count=Count("*"))
        .order_by(*columns)
    )
    months: dict[tuple, dict] = {}
    for row in rows:
        key = (row["issuing_date"].replace(day=1), *(row[c] for c in columns[1:]))
        entry = months.setdefault(key, {"m": key[0], **{c: row[c] for c in columns[1:]},
                                        "amount": 0, "count": 0})  # fmt: skip
        entry["amount"] += row["amount"] or 0
        entry["count"] += row["count"]
    return list(months.values())


def gross_revenues(filters: Filters, invoice_rows: list[dict] | None = None) -> list[dict]:
    """Per issuing month, currency and billing entity: the total of finalized invoices less what
    their credit notes refunded, plus the pay-in-advance fees that have no invoice (by creation
    month); `invoices_count` counts the invoices. Read from the monthly invoice figures, or for
    one customer from the invoices (`invoice_rows`: `invoice_month_rows(filters)` when the
    caller has them)."""
    totals: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    if filters.external_customer_id:
        for row in invoice_rows if invoice_rows is not None else invoice_month_rows(filters):
            entry = totals[(row["m"], row["currency"], row["billing_entity_id"])]
            entry[0] += row["amount"] or 0
            entry[1] += row["count"]
        for (month, currency, entity_id), refunded in refunds_by_month(filters).items():
            totals[(month, currency, entity_id)][0] -= refunded
    else:
        # the invoices pre-summed per issuing month (kept exact by the invoice services; the
        # rows of a key are signed changes, summed here)
        for row in (
            _in_window(_figures(MonthlyInvoiceFigure, filters), "issuing_month", filters)
            .values("issuing_month", "currency", "billing_entity_id")
            .annotate(count=Sum("invoices_count"), total=Sum("total_amount_cents"),
                      refunded=Sum("refund_amount_cents"))
            .filter(count__gt=0)
            .order_by()
        ):  # fmt: skip
            entry = totals[(row["issuing_month"], row["currency"], row["billing_entity_id"])]
            entry[0] += row["total"] - row["refunded"]
            entry[1] += row["count"]
    fees = _in_window_instant(_uninvoiced_in_advance_fees(filters), "created_at", filters)
    entities = list(
        BillingEntity.objects.filter(organization=filters.organization).values_list("pk", flat=True)
    )
    # one billing entity: every customer's, so the fees are summed without reading customers
    entity = "customer__billing_entity_id" if len(entities) != 1 else None
    for row in (
        fees.annotate(m=TruncMonth("created_at", tzinfo=UTC))
        .values("m", "amount_currency", *([entity] if entity else []))
        .annotate(amount=Sum("amount_cents"))
        .order_by()
    ):
        key = (_as_month(row["m"]), row["amount_currency"],
               row[entity] if entity else entities[0])  # fmt: skip
        totals[key][0] += row["amount"] or 0
    return [
        {
            "month": month_instant(month),
            "amount_cents": amount,
            "currency": currency,
            "invoices_count": count,
            "billing_entity_id": str(entity_id) if entity_id else None,
        }
        for (month, currency, entity_id), (amount, count) in sorted(
            totals.items(), key=lambda item: (item[0][0], item[0][1], str(item[0][2]))
        )
    ]


def refunds_by_month(filters: Filters) -> dict[tuple, int]:
    """Refunded amounts of the credit notes on counted invoices of the window, per the invoice's
    issuing month, currency and billing entity (one query)."""
    rows = (
        CreditNote.objects.filter(
            invoice__in=_in_window(counted_invoices(filters), "issuing_date", filters),
            refund_amount_cents__gt=0,
        )
        .values("invoice__issuing_date", "invoice__currency", "invoice__billing_entity_id")
        .annotate(amount=Sum("refund_amount_cents"))
        .order_by()
    )
    totals: dict[tuple, int] = defaultdict(int)
    for row in rows:
        key = (row["invoice__issuing_date"].replace(day=1), row["invoice__currency"],
               row["invoice__billing_entity_id"])  # fmt: skip
        totals[key] += row["amount"] or 0
    return totals


def _uninvoiced_in_advance_fees(filters: Filters) -> QuerySet[Fee]:
    queryset = Fee.objects.filter(
        organization=filters.organization,
        invoice__isnull=True,
        pay_in_advance=True,
        deleted_at__isnull=True,
    )
    if filters.billing_entity is not None:
        queryset = queryset.filter(customer__billing_entity=filters.billing_entity)
    if filters.external_customer_id:
        queryset = queryset.filter(
            customer__external_id=filters.external_customer_id, customer__deleted_at__isnull=True
        )
    if filters.currency:
        queryset = queryset.filter(amount_currency=filters.currency)
    return queryset


# --- MRR --------------------------------------------------------------------------------------


@dataclass
class _SpreadFee:
    issuing_date: date
    amount: Decimal
    billed_months: Decimal
    pay_in_advance: bool


def billed_months(from_datetime: datetime, to_datetime: datetime) -> Decimal:
    """Length of a billed period in months of 30.44 days (seconds left out, as Lago counts)."""
    delta = to_datetime - from_datetime
    minutes = Decimal(delta.days * 1440 + delta.seconds // 60)
    return minutes / Decimal(1440) / DAYS_PER_MONTH


def spread_fee(fee: _SpreadFee) -> list[tuple[date, Decimal]]:
    """A quarterly, semiannual or yearly subscription fee spread over the months it pays for.

    In advance: forward from the issuing month, the first month pro rata of the days left in it
    (issuing day included), the last month what is left. In arrears: backward from the issuing
    month, an even share per month, the last (earliest) month what is left.
    """
    months = fee.billed_months
    if months <= 0:
        return [(_as_month(fee.issuing_date), fee.amount)]
    count = int(months.to_integral_value(rounding="ROUND_CEILING"))
    share = fee.amount / months
    start = _as_month(fee.issuing_date)
    if not fee.pay_in_advance:
        rows = [(add_months(start, -index), share) for index in range(count - 1)]
        rows.append((add_months(start, -(count - 1)), fee.amount - share * (count - 1)))
        return rows
    days_in_month = (add_months(start, 1) - start).days
    first_fraction = Decimal((add_months(start, 1) - fee.issuing_date).days) / days_in_month
    if count == 1:
        return [(start, fee.amount)]
    rows = [(start, share * first_fraction)]
    rows += [(add_months(start, index), share) for index in range(1, count - 1)]
    whole = int(months.to_integral_value(rounding="ROUND_FLOOR"))
    rows.append((add_months(start, count - 1), fee.amount - share * (whole - 1 + first_fraction)))
    return rows


def _subscription_fees(filters: Filters) -> QuerySet[Fee]:
    queryset = Fee.objects.filter(
        fee_type=Fee.FeeType.SUBSCRIPTION,
        invoice__organization=filters.organization,
        invoice__status=Invoice.Status.FINALIZED,
        invoice__self_billed=False,
        invoice__payment_dispute_lost_at__isnull=True,
        deleted_at__isnull=True,
    )
    if filters.billing_entity is not None:
        queryset = queryset.filter(invoice__billing_entity=filters.billing_entity)
    if filters.external_customer_id:
        queryset = queryset.filter(
            invoice__customer__external_id=filters.external_customer_id,
            invoice__customer__deleted_at__isnull=True,
        )
    if filters.currency:
        queryset = queryset.filter(amount_currency=filters.currency)
    return queryset


_MRR_AMOUNT = (
    Cast(F("amount_cents"), PRECISE)
    - F("precise_coupons_amount_cents")
    + Cast(F("taxes_amount_cents"), PRECISE)
)


def mrr_by_month(filters: Filters) -> dict[tuple[date, str], Decimal]:
    """Precise MRR per (month, currency): subscription fees (amount - coupons + taxes) of
    finalized invoices, normalized per month by the plan's interval."""
    if filters.external_customer_id:
        return _mrr_from_fees(filters)
    totals: dict[tuple[date, str], Decimal] = defaultdict(lambda: ZERO)
    figures = _in_window(_figures(MonthlyFeeFigure, filters), "issuing_month", filters).filter(
        fee_type=Fee.FeeType.SUBSCRIPTION
    )
    for row in (
        figures.filter(plan_interval__in=(Interval.MONTHLY, Interval.WEEKLY))
        .values("issuing_month", "currency", "plan_interval")
        .annotate(amount=Sum("mrr_amount_cents"), count=Sum("fees_count"))
        .order_by()
    ):
        amount = Decimal(row["amount"] or 0)
        if row["plan_interval"] == Interval.WEEKLY:
            if not row["count"]:
                continue
            amount = amount / row["count"] * WEEKS_PER_MONTH
        totals[(row["issuing_month"], row["currency"])] += amount
    spread = (
        _figures(SpreadFeeFigure, filters)
        .filter(
            issuing_date__gte=add_months(filters.first_month, -13),
            issuing_date__lt=add_months(filters.end, 13),
        )
        .values("issuing_date", "period_minutes", "pay_in_advance", "currency")
        .annotate(amount=Sum("mrr_amount_cents"), count=Sum("fees_count"))
        .filter(count__gt=0)
        .order_by()
    )
    first, end = filters.first_month, filters.end
    for issuing, minutes, in_advance, currency, amount, _ in spread.values_list(
        "issuing_date", "period_minutes", "pay_in_advance", "currency", "amount", "count"
    ):
        fee = _SpreadFee(
            issuing_date=issuing,
            amount=Decimal(amount),
            billed_months=Decimal(minutes) / Decimal(1440) / DAYS_PER_MONTH,
            pay_in_advance=in_advance,
        )
        for month, share in spread_fee(fee):
            if first <= month < end:
                totals[(month, currency)] += share
    return totals


def _mrr_from_fees(filters: Filters) -> dict[tuple[date, str], Decimal]:
    totals: dict[tuple[date, str], Decimal] = defaultdict(lambda: ZERO)
    fees = _subscription_fees(filters)
    # monthly plans: the whole fee in the invoice's issuing month (aggregated in the database)
    monthly = _in_window(fees, "invoice__issuing_date", filters).filter(
        subscription__plan__interval=Interval.MONTHLY
    )
    for row in (
        monthly.annotate(m=TruncMonth("invoice__issuing_date"))
        .values("m", "amount_currency")
        .annotate(amount=Sum(_MRR_AMOUNT, output_field=PRECISE))
        .order_by()
    ):
        totals[(_as_month(row["m"]), row["amount_currency"])] += Decimal(row["amount"] or 0)
    # weekly plans: the average weekly fee of the month x 4.33
    weekly = _in_window(fees, "invoice__issuing_date", filters).filter(
        subscription__plan__interval=Interval.WEEKLY
    )
    for row in (
        weekly.annotate(m=TruncMonth("invoice__issuing_date"))
        .values("m", "amount_currency")
        .annotate(amount=Sum(_MRR_AMOUNT, output_field=PRECISE), count=Count("id"))
        .order_by()
    ):
        average = Decimal(row["amount"] or 0) / row["count"]
        totals[(_as_month(row["m"]), row["amount_currency"])] += average * WEEKS_PER_MONTH
    # longer plans: spread over the months they pay for (a year at most on either side)
    longer = fees.filter(
        subscription__plan__interval__in=(Interval.QUARTERLY, Interval.SEMIANNUAL, Interval.YEARLY),
        invoice__issuing_date__gte=add_months(filters.first_month, -13),
        invoice__issuing_date__lt=add_months(filters.end, 13),
    ).values_list(
        "invoice__issuing_date",
        "amount_cents",
        "precise_coupons_amount_cents",
        "taxes_amount_cents",
        "amount_currency",
        "properties",
        "subscription__plan__pay_in_advance",
    )
    first, end = filters.first_month, filters.end
    for issuing, amount, coupons, taxes, currency, properties, in_advance in longer:
        period = _period(properties)
        if period is None:
            continue
        fee = _SpreadFee(
            issuing_date=issuing,
            amount=Decimal(amount) - Decimal(coupons or 0) + Decimal(taxes),
            billed_months=billed_months(*period),
            pay_in_advance=bool(in_advance),
        )
        for month, share in spread_fee(fee):
            if first <= month < end:
                totals[(month, currency)] += share
    return totals


def _period(properties: dict) -> tuple[datetime, datetime] | None:
    try:
        start = datetime.fromisoformat(properties["from_datetime"])
        end = datetime.fromisoformat(properties["to_datetime"])
    except (KeyError, TypeError, ValueError):
        return None
    return start, end


def mrrs(filters: Filters) -> list[dict]:
    """Per month and currency, the MRR in cents; a month without any is one row of nulls (no
    currency filter) or a zero row in the filtered currency, as Lago lists it."""
    totals = mrr_by_month(filters)
    rows = []
    for month in filters.month_list():
        found = sorted((c, a) for (m, c), a in totals.items() if m == month)
        if not found:
            rows.append(
                {
                    "month": month_instant(month),
                    "amount_cents": 0 if filters.currency else None,
                    "currency": filters.currency,
                }
            )
            continue
        rows += [
            {"month": month_instant(month), "amount_cents": round_cents(a), "currency": c}
            for c, a in found
        ]
    return rows


# --- invoiced usage ---------------------------------------------------------------------------


def _figures(model, filters: Filters) -> QuerySet:
    """The pre-summed fee figures of the organization, entity and currency asked for."""
    queryset = model.objects.filter(organization=filters.organization)
    if filters.billing_entity is not None:
        queryset = queryset.filter(billing_entity=filters.billing_entity)
    if filters.currency:
        queryset = queryset.filter(currency=filters.currency)
    return queryset


def invoiced_usages(filters: Filters) -> list[dict]:
    """Usage-charge fees of finalized invoices (amount - coupons) per fee creation month,
    billable metric code and currency; newest month first, biggest amount first."""
    if filters.external_customer_id:
        rows = _invoiced_usage_from_fees(filters)
    else:
        rows = (
            _in_window(_figures(MonthlyFeeFigure, filters), "created_month", filters)
            .filter(fee_type=Fee.FeeType.CHARGE)
            .values(m=F("created_month"), code=F("metric_code"), cur=F("currency"))
            .annotate(amount=Sum("net_amount_cents"))
            .order_by()
        )
    result = [
        {
            "month": _as_month(row["m"]),
            "code": row["code"] or None,
            "currency": row["cur"],
            "amount_cents": round_cents(Decimal(row["amount"] or 0)),
        }
        for row in rows
    ]
    result.sort(key=lambda row: (row["month"], row["amount_cents"], row["code"] or ""))
    result.reverse()
    for row in result:
        row["month"] = month_instant(row["month"])
    return result


def _invoiced_usage_from_fees(filters: Filters) -> QuerySet:
    fees = Fee.objects.filter(
        fee_type=Fee.FeeType.CHARGE,
        invoice__organization=filters.organization,
        invoice__status=Invoice.Status.FINALIZED,
        invoice__self_billed=False,
        invoice__payment_dispute_lost_at__isnull=True,
        deleted_at__isnull=True,
    )
    if filters.billing_entity is not None:
        fees = fees.filter(invoice__billing_entity=filters.billing_entity)
    if filters.external_customer_id:
        fees = fees.filter(invoice__customer__external_id=filters.external_customer_id)
    if filters.currency:
        fees = fees.filter(amount_currency=filters.currency)
    return (
        _in_window_instant(fees, "created_at", filters)
        .annotate(m=TruncMonth("created_at", tzinfo=UTC))
        .values("m", code=F("charge__billable_metric__code"), cur=F("amount_currency"))
        .annotate(
            amount=Sum(Cast(F("amount_cents"), PRECISE) - F("precise_coupons_amount_cents"),
                       output_field=PRECISE)
        )
        .order_by()
    )  # fmt: skip


# --- invoice collection -----------------------------------------------------------------------


def invoice_collections(filters: Filters, invoice_rows: list[dict] | None = None) -> list[dict]:
    """Finalized invoices per issuing month, payment status and currency: how many, how much.
    A month without invoices is one row of nulls (unless a currency is asked for)."""
    grouped: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    for row in invoice_rows if invoice_rows is not None else invoice_month_rows(filters):
        entry = grouped[(row["m"], row["payment_status"], row["currency"])]
        entry[0] += row["count"]
        entry[1] += row["amount"] or 0
    by_month: dict[date, list[dict]] = defaultdict(list)
    for (month, status, currency), (count, amount) in grouped.items():
        by_month[month].append(
            {
                "payment_status": status,
                "invoices_count": count,
                "amount_cents": amount,
                "currency": currency,
            }
        )
    result = []
    for month in filters.month_list():
        entries = sorted(
            by_month.get(month, []), key=lambda e: (e["payment_status"], e["currency"])
        )
        if not entries and not filters.currency:
            entries = [
                {"payment_status": None, "invoices_count": 0, "amount_cents": 0, "currency": None}
            ]
        result += [{"month": month_instant(month), **entry} for entry in entries]
    return result


# --- overdue balance --------------------------------------------------------------------------


def overdue_invoices(filters: Filters) -> QuerySet[Invoice]:
    """Finalized invoices flagged overdue, with the entity/customer/currency filters."""
    return counted_invoices(filters).filter(payment_overdue=True)


def overdue_balances(filters: Filters) -> list[dict]:
    """Invoices flagged overdue per month of their due date, currency and billing entity:
    what is left to pay (total - paid - what credit notes offset) and which invoices."""
    rows = _in_window(overdue_invoices(filters), "payment_due_date", filters).values_list(
        "payment_due_date", "currency", "billing_entity_id", "id", "total_amount_cents",
        "total_paid_amount_cents", "total_offsetted_credit_note_amount_cents",
    )  # fmt: skip
    groups: dict[tuple, list] = defaultdict(lambda: [0, []])
    for due, currency, entity_id, invoice_id, total, paid, offset in rows:
        entry = groups[(due.replace(day=1), currency, entity_id)]
        entry[0] += total - paid - offset
        entry[1].append(str(invoice_id))
    return [
        {
            "month": month_instant(month),
            "amount_cents": amount,
            "currency": currency,
            "lago_invoice_ids": sorted(ids),
            "billing_entity_id": str(entity_id),
        }
        for (month, currency, entity_id), (amount, ids) in sorted(
            groups.items(), key=lambda item: (item[0][0], item[0][1], str(item[0][2]))
        )
    ]


# --- usage ------------------------------------------------------------------------------------

GRANULARITIES = {"daily": TruncDay, "weekly": TruncWeek, "monthly": TruncMonth}


@dataclass(frozen=True)
class UsageFilters:
    """Filters of the usage figures (time buckets of invoiced charge fees)."""

    time_granularity: str = "daily"
    from_date: date | None = None
    to_date: date | None = None
    currency: str | None = None
    customer_type: str | None = None
    external_customer_id: str | None = None
    customer_country: str | None = None
    external_subscription_id: str | None = None
    plan_code: str | None = None
    billable_metric_code: str | None = None
    is_billable_metric_recurring: bool | None = None
    extra: dict = field(default_factory=dict)


def usages(organization: Organization, filters: UsageFilters) -> list[dict]:
    """Units and amounts of usage charges per billable metric and time bucket (by the day the
    fee was created: invoiced charge fees of finalized invoices and pay-in-advance fees).

    Invoiced fees are read from the daily usage figures, or for one customer or subscription
    from the fees; pay-in-advance fees without invoice are always read from the fees."""
    trunc = GRANULARITIES[filters.time_granularity]
    live = Fee.objects.filter(
        organization=organization, fee_type=Fee.FeeType.CHARGE, deleted_at__isnull=True
    )
    invoiced = Q(
        invoice__status=Invoice.Status.FINALIZED,
        invoice__self_billed=False,
        invoice__payment_dispute_lost_at__isnull=True,
    )
    uninvoiced = Q(invoice__isnull=True, pay_in_advance=True)
    columns = ("bucket", "currency", "code", "metric_deleted_at")
    parts = []
    if filters.external_customer_id is not None or filters.external_subscription_id is not None:
        parts.append(_usage_fees(live.filter(invoiced | uninvoiced), filters, trunc))
    else:
        parts.append(_usage_fees(live.filter(uninvoiced), filters, trunc))
        figures = DailyUsageFigure.objects.filter(organization=organization)
        if filters.from_date:
            figures = figures.filter(day__gte=filters.from_date)
        if filters.to_date:
            figures = figures.filter(day__lte=filters.to_date)
        lookups = {
            "currency": filters.currency,
            "customer_type": filters.customer_type,
            "customer_country": filters.customer_country,
            "charge__plan__code": filters.plan_code,
            "charge__billable_metric__code": filters.billable_metric_code,
            "charge__billable_metric__recurring": filters.is_billable_metric_recurring,
        }
        figures = figures.filter(**{k: v for k, v in lookups.items() if v is not None})
        parts.append(
            figures.annotate(bucket=trunc("day"))
            .values(
                "bucket", "currency", code=F("charge__billable_metric__code"),
                metric_deleted_at=F("charge__billable_metric__deleted_at"),
            )
            .annotate(amount=Sum("amount_cents"), units_sum=Sum("units"), count=Sum("fees_count"))
            .filter(count__gt=0)  # the rows are signed changes: a bucket of voided fees is none
            .order_by()
        )  # fmt: skip
    totals: dict[tuple, list] = defaultdict(lambda: [0, ZERO])
    for part in parts:
        for row in part:
            start = row["bucket"]
            if isinstance(start, datetime):
                start = (start.astimezone(UTC) if start.tzinfo else start).date()
            entry = totals[(start, *(row[c] for c in columns[1:]))]
            entry[0] += row["amount"] or 0
            entry[1] += Decimal(row["units_sum"] or 0)
    result = []
    for (start, currency, code, deleted_at), (amount, units) in sorted(
        totals.items(), key=lambda item: (item[0][0], item[0][2], item[0][1], str(item[0][3]))
    ):
        begin = datetime.combine(start, datetime.min.time(), tzinfo=UTC)
        end = _bucket_end(begin, filters.time_granularity)
        result.append(
            {
                "organization_id": str(organization.pk),
                "start_of_period_dt": start.isoformat(),
                "end_of_period_dt": end.date().isoformat(),
                "amount_currency": currency,
                "amount_cents": amount,
                "billable_metric_code": code,
                "units": decimal_string(units),
                "is_billable_metric_deleted": deleted_at is not None,
            }
        )
    return result


def _usage_fees(fees: QuerySet[Fee], filters: UsageFilters, trunc) -> QuerySet:
    """Charge fees with the usage filters, summed per time bucket, currency and metric."""
    if filters.from_date:
        fees = fees.filter(created_at__gte=datetime.combine(filters.from_date, datetime.min.time(),
                                                            tzinfo=UTC))  # fmt: skip
    if filters.to_date:
        end = datetime.combine(filters.to_date + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
        fees = fees.filter(created_at__lt=end)
    lookups = {
        "amount_currency": filters.currency,
        "customer__customer_type": filters.customer_type,
        "customer__external_id": filters.external_customer_id,
        "customer__country": filters.customer_country,
        "subscription__external_id": filters.external_subscription_id,
        "charge__plan__code": filters.plan_code,
        "charge__billable_metric__code": filters.billable_metric_code,
        "charge__billable_metric__recurring": filters.is_billable_metric_recurring,
    }
    fees = fees.filter(**{key: value for key, value in lookups.items() if value is not None})
    return (
        fees.annotate(bucket=trunc("created_at", tzinfo=UTC))
        .values(
            "bucket", currency=F("amount_currency"), code=F("charge__billable_metric__code"),
            metric_deleted_at=F("charge__billable_metric__deleted_at"),
        )
        .annotate(amount=Sum("amount_cents"), units_sum=Sum("units"))
        .order_by()
    )  # fmt: skip


def _bucket_end(start: datetime, granularity: str) -> datetime:
    if granularity == "daily":
        return start
    if granularity == "weekly":
        return start + timedelta(days=6)
    return datetime.combine(add_months(start.date(), 1), datetime.min.time(), tzinfo=UTC) - (
        timedelta(days=1)
    )


# --- overview figures (the admin dashboard) ---------------------------------------------------


def revenue_by_stream(filters: Filters) -> dict[date, dict[str, int]]:
    """Fee amounts (before taxes, after coupons) of finalized invoices per issuing month and
    revenue stream: subscription, usage, fixed, commitment, one-off."""
    if filters.external_customer_id:
        fees = Fee.objects.filter(
            invoice__in=_in_window(counted_invoices(filters), "issuing_date", filters),
            fee_type__in=list(STREAMS),
            deleted_at__isnull=True,
        )
        rows = (
            fees.annotate(m=TruncMonth("invoice__issuing_date"))
            .values("m", "fee_type")
            .annotate(
                amount=Sum(Cast(F("amount_cents"), PRECISE) - F("precise_coupons_amount_cents"),
                           output_field=PRECISE)
            )
            .order_by()
        )  # fmt: skip
    else:
        rows = (
            _in_window(_figures(MonthlyFeeFigure, filters), "issuing_month", filters)
            .filter(fee_type__in=list(STREAMS))
            .values("fee_type", m=F("issuing_month"))
            .annotate(amount=Sum("net_amount_cents"))
            .order_by()
        )
    result: dict[date, dict[str, int]] = {
        month: dict.fromkeys(STREAMS.values(), 0) for month in filters.month_list()
    }
    for row in rows:
        month = _as_month(row["m"])
        if month in result:
            result[month][STREAMS[row["fee_type"]]] += round_cents(Decimal(row["amount"] or 0))
    return result


def top_customers(filters: Filters, *, limit: int = 10) -> list[dict]:
    """Customers with the biggest invoiced totals over the window, biggest first (summed from
    the per-customer figure deltas where they apply, else from the invoices)."""
    if _deltas_apply(filters):
        rows = list(
            _in_window(_figures(CustomerFigureDelta, filters), "issuing_month", filters)
            .values("customer_id", "currency")
            .annotate(amount=Sum("total_amount_cents"), count=Sum("invoices_count"))
            .filter(count__gt=0)
            .order_by("-amount", "customer_id")[:limit]
        )
    else:
        rows = list(
            _in_window(counted_invoices(filters), "issuing_date", filters)
            .values("customer_id", "currency")
            .annotate(amount=Sum("total_amount_cents"), count=Count("*"))
            .order_by("-amount", "customer_id")[:limit]
        )
    names = {
        pk: (name, external_id)
        for pk, name, external_id in Customer.objects.filter(
            pk__in=[row["customer_id"] for row in rows]
        ).values_list("pk", "name", "external_id")
    }
    return [
        {
            "customer_id": row["customer_id"],
            "name": names[row["customer_id"]][0] or names[row["customer_id"]][1],
            "external_id": names[row["customer_id"]][1],
            "currency": row["currency"],
            "amount_cents": row["amount"] or 0,
            "invoices_count": row["count"],
        }
        for row in rows
    ]


@dataclass(frozen=True)
class Receivables:
    """What finalized invoices still owe, in one currency."""

    outstanding_cents: int
    outstanding_count: int
    overdue_cents: int
    overdue_count: int
    failed_cents: int
    failed_count: int


def receivables(filters: Filters) -> dict[str, Receivables]:
    """Outstanding (pending or failed payment, total - paid - what credit notes offset), overdue
    and failed amounts of finalized invoices, per currency (whatever their issuing month).
    Summed from the receivable figure deltas where they apply, else from the invoices."""
    if _deltas_apply(filters):
        return _receivables_from_deltas(filters)
    due = (
        F("total_amount_cents")
        - F("total_paid_amount_cents")
        - F("total_offsetted_credit_note_amount_cents")
    )
    unpaid = Q(payment_status__in=(Invoice.PaymentStatus.PENDING, Invoice.PaymentStatus.FAILED))
    rows = (
        counted_invoices(filters)
        .alias(due=due)
        .filter(unpaid, due__gt=0)
        .values("currency")
        .annotate(
            outstanding=Sum(due),
            outstanding_count=Count("id"),
            overdue=Coalesce(Sum(due, filter=Q(payment_overdue=True)), 0),
            overdue_count=Count("id", filter=Q(payment_overdue=True)),
            failed=Coalesce(Sum(due, filter=Q(payment_status=Invoice.PaymentStatus.FAILED)), 0),
            failed_count=Count("id", filter=Q(payment_status=Invoice.PaymentStatus.FAILED)),
        )
        .order_by("currency")
    )
    return {
        row["currency"]: Receivables(
            outstanding_cents=row["outstanding"] or 0,
            outstanding_count=row["outstanding_count"],
            overdue_cents=row["overdue"],
            overdue_count=row["overdue_count"],
            failed_cents=row["failed"],
            failed_count=row["failed_count"],
        )
        for row in rows
    }


def _receivables_from_deltas(filters: Filters) -> dict[str, Receivables]:
    totals: dict[str, list[int]] = defaultdict(lambda: [0] * 6)
    for row in (
        _figures(ReceivableFigureDelta, filters)
        .values("currency", "payment_status", "payment_overdue")
        .annotate(due=Sum("due_amount_cents"), count=Sum("invoices_count"))
        .filter(count__gt=0)
        .order_by()
    ):
        entry = totals[row["currency"]]
        entry[0] += row["due"]
        entry[1] += row["count"]
        if row["payment_overdue"]:
            entry[2] += row["due"]
            entry[3] += row["count"]
        if row["payment_status"] == Invoice.PaymentStatus.FAILED:
            entry[4] += row["due"]
            entry[5] += row["count"]
    return {currency: Receivables(*entry) for currency, entry in sorted(totals.items())}


def prepaid_credits(filters: Filters) -> dict[str, tuple[int, int]]:
    """Balance of active wallets per currency, and how many wallets hold it."""
    wallets = Wallet.objects.filter(organization=filters.organization, status=Wallet.Status.ACTIVE)
    if filters.billing_entity is not None:
        wallets = wallets.filter(customer__billing_entity=filters.billing_entity)
    if filters.external_customer_id:
        wallets = wallets.filter(customer__external_id=filters.external_customer_id)
    if filters.currency:
        wallets = wallets.filter(currency=filters.currency)
    rows = wallets.values("currency").annotate(total=Sum("balance_cents"), count=Count("id"))
    return {row["currency"]: (row["total"] or 0, row["count"]) for row in rows.order_by()}


def draft_invoices(filters: Filters) -> QuerySet[Invoice]:
    """Drafts awaiting finalization, with the entity/customer/currency filters."""
    queryset = Invoice.objects.filter(
        organization=filters.organization, status=Invoice.Status.DRAFT
    )
    if filters.billing_entity is not None:
        queryset = queryset.filter(billing_entity=filters.billing_entity)
    if filters.external_customer_id:
        queryset = queryset.filter(customer__external_id=filters.external_customer_id)
    if filters.currency:
        queryset = queryset.filter(currency=filters.currency)
    return queryset


def currencies_in_use(organization: Organization) -> list[str]:
    """Currencies the organization has invoiced fees in, most fees first, then its default."""
    rows = (
        MonthlyFeeFigure.objects.filter(organization=organization)
        .values("currency")
        .annotate(count=Sum("fees_count"))
        .filter(count__gt=0)
        .order_by("-count", "currency")
    )
    found = [row["currency"] for row in rows]
    default = getattr(organization, "default_currency", None)
    if default and default not in found:
        found.append(default)
    return found


def sum_by_month(rows: Iterable[dict], currency: str) -> dict[str, int]:
    """Amounts of analytics rows in one currency, summed per `month` (entities merged)."""
    totals: dict[str, int] = defaultdict(int)
    for row in rows:
        if row.get("currency") == currency and row.get("amount_cents") is not None:
            totals[row["month"]] += row["amount_cents"]
    return totals
