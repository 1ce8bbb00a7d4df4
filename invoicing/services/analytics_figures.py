"""The pre-summed figures the analytics read (`MonthlyFeeFigure`, `SpreadFeeFigure`,
`MonthlyInvoiceFigure`, `DailyUsageFigure`; `CollectionFigureDelta`, `CustomerFigureDelta`
and `ReceivableFigureDelta` are appended by a database trigger whenever invoices change, and
only folded and rebuilt here).

Every figure table is append-only: a change inserts its signed amounts as new rows and never
updates a row, so concurrent finalizations and payments never wait on each other's figures
(upserted figure rows once deadlocked them); a key's figure is the sum of its rows, which every
read takes, and `figure_deltas_compact` (a job every 5 minutes) folds them back to one row per
key without changing any sum.

An invoice's fees and total enter the figures when it is finalized and leave them when it is
voided or its payment dispute is lost, in the transaction of that change; a credit note's refund
enters them when the note is created on a counted invoice: the figures always equal what the
fees, invoices and credit notes of the counted invoices sum to. `figures_rebuild` recomputes an
organization's figures from those rows (for rows written in bulk: imports, the demo history,
benchmarks), in one snapshot, so the invoices finalized meanwhile are neither dropped nor
counted twice.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal

from django.db import connection, transaction
from django.db.models import Count, DecimalField, F, Sum
from django.db.models.functions import Cast, Coalesce, TruncDate, TruncMonth

from billing.models import Organization
from billing.periods import Interval
from invoicing.locks import figure_deltas_folding_held, lock_figure_deltas_folding
from invoicing.models import (
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

SPREAD_INTERVALS = (Interval.QUARTERLY, Interval.SEMIANNUAL, Interval.YEARLY)
_FEE_COLUMNS = (
    "created_at", "fee_type", "charge__billable_metric__code", "subscription__plan__interval",
    "subscription__plan__pay_in_advance", "amount_cents", "precise_coupons_amount_cents",
    "taxes_amount_cents", "properties",
)  # fmt: skip
_USAGE_KEY = ("day", "amount_currency", "charge_id", "customer__customer_type", "customer__country")


def invoice_is_counted(invoice: Invoice) -> bool:
    """Whether the analytics count this invoice: finalized, not self-billed, no lost dispute."""
    return (
        invoice.status == Invoice.Status.FINALIZED
        and not invoice.self_billed
        and invoice.payment_dispute_lost_at is None
    )


def period_minutes(properties: dict) -> int | None:
    """Length of a subscription fee's billed period in whole minutes (seconds left out)."""
    try:
        start = datetime.fromisoformat(properties["from_datetime"])
        end = datetime.fromisoformat(properties["to_datetime"])
    except (KeyError, TypeError, ValueError):
        return None
    delta = end - start
    return delta.days * 1440 + delta.seconds // 60


def _month(value: datetime | date) -> date:
    if isinstance(value, datetime):
        value = value.astimezone(UTC).date()
    return value.replace(day=1)


def _group(invoice: Invoice, rows) -> tuple[dict, dict]:
    """(monthly key -> [net, mrr, count], spread key -> [mrr, count]) of an invoice's fees."""
    monthly: dict[tuple, list] = defaultdict(lambda: [Decimal(0), Decimal(0), 0])
    spread: dict[tuple, list] = defaultdict(lambda: [Decimal(0), 0])
    base = (invoice.billing_entity_id, invoice.currency)
    for created, fee_type, code, interval, in_advance, amount, coupons, taxes, props in rows:
        net = Decimal(amount) - Decimal(coupons or 0)
        mrr = net + Decimal(taxes)
        is_subscription = fee_type == Fee.FeeType.SUBSCRIPTION
        key = (*base, _month(invoice.issuing_date), _month(created), fee_type, code or "",
               (interval or "") if is_subscription else "")  # fmt: skip
        entry = monthly[key]
        entry[0] += net
        entry[1] += mrr
        entry[2] += 1
        if is_subscription and interval in SPREAD_INTERVALS:
            minutes = period_minutes(props)
            if minutes is not None:
                spread_entry = spread[(*base, invoice.issuing_date, minutes, bool(in_advance))]
                spread_entry[0] += mrr
                spread_entry[1] += 1
    return monthly, spread


def _add_to(model, rows: list[tuple[dict, dict]]) -> None:
    """Appends each row's signed amounts under its key, in one `INSERT` for all rows: the
    figure tables are append-only (a key's figure is the sum of its rows), so two invoices
    finalized at once take no lock the other waits on."""
    if not rows:
        return
    table = model._meta.db_table
    names = (*rows[0][0], *rows[0][1])
    fields = [model._meta.get_field(name) for name in names]
    columns = ", ".join(f'"{field.column}"' for field in fields)
    placeholders = "(" + ", ".join(["%s"] * len(fields)) + ")"
    sql = f'INSERT INTO "{table}" ({columns}) VALUES {", ".join([placeholders] * len(rows))}'
    params = [
        field.get_db_prep_save(value, connection)  # e.g. UUIDs as SQLite stores them
        for key, added in rows
        for field, value in zip(fields, (*key.values(), *added.values()), strict=True)
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _bump(organization_id, monthly: dict, spread: dict, sign: int) -> None:
    _add_to(
        MonthlyFeeFigure,
        [
            (
                {
                    "organization": organization_id, "billing_entity": entity,
                    "currency": currency, "issuing_month": issuing, "created_month": created,
                    "fee_type": fee_type, "metric_code": code, "plan_interval": interval,
                },
                {
                    "net_amount_cents": sign * net, "mrr_amount_cents": sign * mrr,
                    "fees_count": sign * count,
                },
            )
            for (entity, currency, issuing, created, fee_type, code, interval), (net, mrr, count)
            in monthly.items()
        ],
    )  # fmt: skip
    _add_to(
        SpreadFeeFigure,
        [
            (
                {
                    "organization": organization_id, "billing_entity": entity,
                    "currency": currency, "issuing_date": issuing, "period_minutes": minutes,
                    "pay_in_advance": in_advance,
                },
                {"mrr_amount_cents": sign * mrr, "fees_count": sign * count},
            )
            for (entity, currency, issuing, minutes, in_advance), (mrr, count) in spread.items()
        ],
    )  # fmt: skip


def _stored(name: str, value: Decimal) -> Decimal:
    """A fee's decimal as its column keeps it (rounded half away from zero to its scale, as
    PostgreSQL's numeric does)."""
    places = Fee._meta.get_field(name).decimal_places
    return Decimal(value).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def _fee_columns(fees: Iterable[Fee]) -> list[tuple]:
    """`_FEE_COLUMNS` of fees just inserted, from the instances (their charge, subscription and
    plan loaded), as the database would return them."""
    rows = []
    for fee in fees:
        if fee.deleted_at is not None:
            continue
        charge = fee.charge if fee.charge_id else None
        plan = fee.subscription.plan if fee.subscription_id else None
        rows.append(
            (
                fee.created_at, fee.fee_type, charge.billable_metric.code if charge else None,
                plan.interval if plan else None, plan.pay_in_advance if plan else None,
                fee.amount_cents,
                _stored("precise_coupons_amount_cents", fee.precise_coupons_amount_cents),
                fee.taxes_amount_cents, fee.properties,
            )
        )  # fmt: skip
    return rows


def _usage_rows_of(fees: Iterable[Fee]) -> list[dict]:
    """`_usage_rows` of fees just inserted, from the instances (their customer loaded)."""
    rows: dict[tuple, dict] = {}
    for fee in fees:
        if fee.fee_type != Fee.FeeType.CHARGE or not fee.charge_id or fee.deleted_at is not None:
            continue
        customer = fee.customer
        key = (fee.created_at.astimezone(UTC).date(), fee.amount_currency, fee.charge_id,
               customer.customer_type, customer.country)  # fmt: skip
        row = rows.get(key)
        if row is None:
            row = rows[key] = dict(zip((*_USAGE_KEY,), key, strict=True))
            row.update(amount=0, units_sum=Decimal(0), count=0)
        row["amount"] += fee.amount_cents
        row["units_sum"] += _stored("units", fee.units)
        row["count"] += 1
    return list(rows.values())


def figures_record(
    *,
    invoice: Invoice,
    sign: int,
    refunded_cents: int | None = None,
    fees: Sequence[Fee] | None = None,
) -> None:
    """Adds (`sign=1`, on finalization) or takes away (`sign=-1`, on void or a lost dispute)
    the invoice's fees, total and credit-note refunds from the figures, in the caller's
    transaction. `refunded_cents`: what its credit notes refunded when the caller knows it
    (none yet on finalization), else read. `fees`: all the invoice's fees when the caller has
    just inserted them (with their charge, subscription, plan and customer loaded), else
    read."""
    if fees is None:
        rows = Fee.objects.filter(invoice=invoice, deleted_at__isnull=True).values_list(
            *_FEE_COLUMNS
        )
        usage = _usage_rows(Fee.objects.filter(invoice=invoice))
    else:
        rows, usage = _fee_columns(fees), _usage_rows_of(fees)
    monthly, spread = _group(invoice, rows)
    _bump(invoice.organization_id, monthly, spread, sign)
    _bump_usage(invoice.organization_id, usage, sign)
    refunded = refunded_cents
    if refunded is None:
        refunded = CreditNote.objects.filter(invoice=invoice).aggregate(
            total=Sum("refund_amount_cents")
        )["total"]
    _bump_invoice(
        invoice, count=sign, total=sign * invoice.total_amount_cents, refund=sign * (refunded or 0)
    )


def _usage_rows(fees) -> list[dict]:
    """Charge fees summed per `DailyUsageFigure` key (day of creation in UTC)."""
    return list(
        fees.filter(fee_type=Fee.FeeType.CHARGE, charge__isnull=False, deleted_at__isnull=True)
        .annotate(day=TruncDate("created_at", tzinfo=UTC))
        .values(*_USAGE_KEY)
        .annotate(amount=Sum("amount_cents"), units_sum=Coalesce(Sum("units"), Decimal(0)),
                  count=Count("id"))
        .order_by()
    )  # fmt: skip


def _usage_key(organization_id, row: dict) -> dict:
    return {
        "organization_id": organization_id, "day": row["day"],
        "currency": row["amount_currency"], "charge_id": row["charge_id"],
        "customer_type": row["customer__customer_type"] or "",
        "customer_country": row["customer__country"] or "",
    }  # fmt: skip


def _bump_usage(organization_id, rows: list[dict], sign: int) -> None:
    _add_to(
        DailyUsageFigure,
        [
            (
                _usage_key(organization_id, row),
                {
                    "amount_cents": sign * (row["amount"] or 0),
                    "units": sign * row["units_sum"],
                    "fees_count": sign * row["count"],
                },
            )
            for row in rows
        ],
    )


def figures_record_refund(*, invoice: Invoice, refund_amount_cents: int) -> None:
    """Adds a new credit note's refund to the figures of its invoice's issuing month (nothing
    for an invoice the analytics do not count), in the caller's transaction."""
    if refund_amount_cents and invoice_is_counted(invoice):
        _bump_invoice(invoice, count=0, total=0, refund=refund_amount_cents)


def _bump_invoice(invoice: Invoice, *, count: int, total: int, refund: int) -> None:
    key = {
        "organization": invoice.organization_id, "billing_entity": invoice.billing_entity_id,
        "currency": invoice.currency, "issuing_month": _month(invoice.issuing_date),
    }  # fmt: skip
    added = {"invoices_count": count, "total_amount_cents": total, "refund_amount_cents": refund}
    _add_to(MonthlyInvoiceFigure, [(key, added)])


def _rebuild_invoice_figures(organization: Organization, invoices) -> None:
    MonthlyInvoiceFigure.objects.filter(organization=organization).delete()
    figures: dict[tuple, list[int]] = defaultdict(lambda: [0, 0, 0])
    for row in (
        invoices.annotate(month=TruncMonth("issuing_date"))
        .values("billing_entity_id", "currency", "month")
        .annotate(count=Count("id"), total=Sum("total_amount_cents"))
        .order_by()
    ):
        entry = figures[(row["billing_entity_id"], row["currency"], _month(row["month"]))]
        entry[0] += row["count"]
        entry[1] += row["total"] or 0
    for row in (
        CreditNote.objects.filter(invoice__in=invoices, refund_amount_cents__gt=0)
        .annotate(month=TruncMonth("invoice__issuing_date"))
        .values("invoice__billing_entity_id", "invoice__currency", "month")
        .annotate(refund=Sum("refund_amount_cents"))
        .order_by()
    ):
        key = (row["invoice__billing_entity_id"], row["invoice__currency"], _month(row["month"]))
        figures[key][2] += row["refund"] or 0
    MonthlyInvoiceFigure.objects.bulk_create(
        [
            MonthlyInvoiceFigure(
                organization=organization, billing_entity_id=entity, currency=currency,
                issuing_month=month, invoices_count=count, total_amount_cents=total,
                refund_amount_cents=refund,
            )
            for (entity, currency, month), (count, total, refund) in figures.items()
        ],
        batch_size=1000,
    )  # fmt: skip


# --- figure deltas (append-only, kept by the trigger of migration 0013) -------------------------

_COUNTED_SQL = "status = 'finalized' AND NOT self_billed AND payment_dispute_lost_at IS NULL"
_DUE_SQL = "total_amount_cents - total_paid_amount_cents - total_offsetted_credit_note_amount_cents"
_MONTH_SQL = "date_trunc('month', issuing_date)::date"
# model -> (key columns, amount columns, the same read from the invoices, extra condition)
DELTAS = {
    CollectionFigureDelta: (
        ("organization_id", "billing_entity_id", "currency", "issuing_month", "payment_status"),
        ("invoices_count", "total_amount_cents"),
        ("organization_id", "billing_entity_id", "currency", _MONTH_SQL, "payment_status",
         "COUNT(*)", "SUM(total_amount_cents)"),
        "TRUE",
    ),
    CustomerFigureDelta: (
        ("organization_id", "billing_entity_id", "customer_id", "currency", "issuing_month"),
        ("invoices_count", "total_amount_cents"),
        ("organization_id", "billing_entity_id", "customer_id", "currency", _MONTH_SQL,
         "COUNT(*)", "SUM(total_amount_cents)"),
        "TRUE",
    ),
    ReceivableFigureDelta: (
        ("organization_id", "billing_entity_id", "currency", "payment_status", "payment_overdue"),
        ("invoices_count", "due_amount_cents"),
        ("organization_id", "billing_entity_id", "currency", "payment_status", "payment_overdue",
         "COUNT(*)", f"SUM({_DUE_SQL})"),
        f"payment_status IN ('pending', 'failed') AND {_DUE_SQL} > 0",
    ),
}  # fmt: skip


# every append-only figure table -> (key columns, amount columns)
FOLDED = {
    **{model: (keys, amounts) for model, (keys, amounts, _, _) in DELTAS.items()},
    MonthlyFeeFigure: (
        ("organization_id", "billing_entity_id", "currency", "issuing_month", "created_month",
         "fee_type", "metric_code", "plan_interval"),
        ("net_amount_cents", "mrr_amount_cents", "fees_count"),
    ),
    SpreadFeeFigure: (
        ("organization_id", "billing_entity_id", "currency", "issuing_date", "period_minutes",
         "pay_in_advance"),
        ("mrr_amount_cents", "fees_count"),
    ),
    MonthlyInvoiceFigure: (
        ("organization_id", "billing_entity_id", "currency", "issuing_month"),
        ("invoices_count", "total_amount_cents", "refund_amount_cents"),
    ),
    DailyUsageFigure: (
        ("organization_id", "day", "currency", "charge_id", "customer_type", "customer_country"),
        ("amount_cents", "units", "fees_count"),
    ),
}  # fmt: skip


def figure_deltas_compact() -> int:
    """Folds each key's rows of the append-only figure tables into one row (and drops keys that
    sum to nothing), in one statement per table: readers see the rows before or after, the same
    sums either way, and rows appended meanwhile (not in the statement's snapshot) stay as they
    are. Writers only append, so they never wait on it. Returns how many rows it removed."""
    if connection.vendor != "postgresql":
        return 0
    removed = 0
    with transaction.atomic():
        lock_figure_deltas_folding()
        with connection.cursor() as cursor:
            for model, (keys, amounts) in FOLDED.items():
                table, key = model._meta.db_table, ", ".join(keys)
                sums = ", ".join(f"SUM({column})" for column in amounts)
                nothing = " AND ".join(f"SUM({column}) = 0" for column in amounts)
                cursor.execute(
                    f"""WITH folded AS (
                        DELETE FROM {table} WHERE ({key}) IN (
                            SELECT {key} FROM {table} GROUP BY {key}
                            HAVING COUNT(*) > 1 OR ({nothing}))
                        RETURNING {key}, {", ".join(amounts)}),
                    written AS (
                        INSERT INTO {table} ({key}, {", ".join(amounts)})
                        SELECT {key}, {sums} FROM folded GROUP BY {key} HAVING NOT ({nothing})
                        RETURNING 1)
                    SELECT (SELECT COUNT(*) FROM folded) - (SELECT COUNT(*) FROM written)"""
                )
                removed += cursor.fetchone()[0]
    return removed


def _rebuild_deltas(organization: Organization) -> None:
    """Replaces the organization's deltas with one row per key summed from its invoices, in one
    statement per table."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        for model, (keys, amounts, read, where) in DELTAS.items():
            table = model._meta.db_table
            cursor.execute(
                f"""WITH gone AS (DELETE FROM {table} WHERE organization_id = %s)
                INSERT INTO {table} ({", ".join((*keys, *amounts))})
                SELECT {", ".join(read)} FROM invoicing_invoice
                WHERE organization_id = %s AND {_COUNTED_SQL} AND {where}
                GROUP BY {", ".join(str(i) for i in range(1, len(keys) + 1))}""",
                [organization.pk, organization.pk],
            )


def figures_summed(organization: Organization) -> dict:
    """model -> {key: amounts} of the organization's append-only figures summed per key (keys
    that sum to nothing left out): the figures as the analytics read them."""
    result = {}
    for model, (keys, amounts) in FOLDED.items():
        fields = [column.removesuffix("_id") for column in keys[1:]]
        rows = (
            model.objects.filter(organization=organization)
            .values(*fields)
            .annotate(**{f"sum_{column}": Sum(column) for column in amounts})
            .order_by()
        )
        result[model] = {
            tuple(row[f] for f in fields): tuple(row[f"sum_{c}"] for c in amounts)
            for row in rows
            if any(row[f"sum_{c}"] for c in amounts)
        }
    return result


@contextmanager
def figures_snapshot() -> Iterator[None]:
    """A transaction in which every statement reads the same snapshot, taken while no other
    compaction or rebuild runs: a REPEATABLE READ transaction begun once the folding lock is
    held (PostgreSQL, outside a transaction). Within it, an invoice finalized, voided or
    refunded by another transaction is either in the snapshot, its appended figure rows with
    it, or neither is; and a delete there touches only rows of the snapshot, which the writers,
    who only append, never change, and the compactions, which wait on the lock, no longer do:
    it can neither wait on a writer nor fail to serialize. Inside a transaction already open,
    the statements read as that transaction reads (one snapshot only if it is REPEATABLE
    READ, such as an enclosing `figures_snapshot`)."""
    if connection.vendor != "postgresql" or not connection.get_autocommit():
        with transaction.atomic():
            lock_figure_deltas_folding()
            yield
        return
    with figure_deltas_folding_held(), transaction.atomic():
        with connection.cursor() as cursor:
            # the transaction's first statement: its snapshot comes with the next one
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        yield


def figures_rebuild(*, organization: Organization) -> tuple[int, int]:
    """Recomputes the organization's figures from its counted invoices, their fees and credit
    notes (the daily usage figures too), in one `figures_snapshot`: deleted and rewritten from
    the same invoices, so an invoice finalized meanwhile is counted exactly once (by the rows
    its finalization appended, which the snapshot leaves alone); (monthly fee rows, spread
    rows) written."""
    with figures_snapshot():
        return _rebuild(organization)


def _rebuild(organization: Organization) -> tuple[int, int]:
    MonthlyFeeFigure.objects.filter(organization=organization).delete()
    SpreadFeeFigure.objects.filter(organization=organization).delete()
    invoices = Invoice.objects.filter(
        organization=organization,
        status=Invoice.Status.FINALIZED,
        self_billed=False,
        payment_dispute_lost_at__isnull=True,
    )
    _rebuild_invoice_figures(organization, invoices)
    _rebuild_deltas(organization)
    DailyUsageFigure.objects.filter(organization=organization).delete()
    DailyUsageFigure.objects.bulk_create(
        [
            DailyUsageFigure(
                **_usage_key(organization.pk, row), amount_cents=row["amount"] or 0,
                units=row["units_sum"], fees_count=row["count"],
            )
            for row in _usage_rows(Fee.objects.filter(invoice__in=invoices))
        ],
        batch_size=1000,
    )  # fmt: skip
    monthly: dict[tuple, list] = defaultdict(lambda: [Decimal(0), Decimal(0), 0])
    spread: dict[tuple, list] = defaultdict(lambda: [Decimal(0), 0])
    fees = Fee.objects.filter(invoice__in=invoices, deleted_at__isnull=True)
    # everything but the spread of subscription fees: summed by the database
    precise = DecimalField(max_digits=40, decimal_places=15)
    net = Cast(F("amount_cents"), precise) - F("precise_coupons_amount_cents")
    grouped = (
        fees.annotate(
            issuing=TruncMonth("invoice__issuing_date"),
            created=TruncMonth("created_at", tzinfo=UTC),
        )
        .values(
            "invoice__billing_entity_id", "invoice__currency", "issuing", "created", "fee_type",
            "charge__billable_metric__code", "subscription__plan__interval",
        )
        .annotate(
            net=Sum(net, output_field=precise),
            mrr=Sum(net + Cast(F("taxes_amount_cents"), precise), output_field=precise),
            count=Count("id"),
        )
        .order_by()
    )  # fmt: skip
    for row in grouped:
        is_subscription = row["fee_type"] == Fee.FeeType.SUBSCRIPTION
        key = (
            row["invoice__billing_entity_id"], row["invoice__currency"], _month(row["issuing"]),
            _month(row["created"]), row["fee_type"], row["charge__billable_metric__code"] or "",
            (row["subscription__plan__interval"] or "") if is_subscription else "",
        )  # fmt: skip
        entry = monthly[key]
        entry[0] += Decimal(row["net"] or 0)
        entry[1] += Decimal(row["mrr"] or 0)
        entry[2] += row["count"]
    spread_rows = fees.filter(
        fee_type=Fee.FeeType.SUBSCRIPTION, subscription__plan__interval__in=SPREAD_INTERVALS
    ).values_list(
        "invoice__billing_entity_id", "invoice__currency", "invoice__issuing_date",
        "subscription__plan__pay_in_advance", "amount_cents", "precise_coupons_amount_cents",
        "taxes_amount_cents", "properties",
    )  # fmt: skip
    for (
        entity,
        currency,
        issuing,
        in_advance,
        amount,
        coupons,
        taxes,
        props,
    ) in spread_rows.iterator(chunk_size=5000):
        minutes = period_minutes(props)
        if minutes is None:
            continue
        entry = spread[(entity, currency, issuing, minutes, bool(in_advance))]
        entry[0] += Decimal(amount) - Decimal(coupons or 0) + Decimal(taxes)
        entry[1] += 1
    MonthlyFeeFigure.objects.bulk_create(
        [
            MonthlyFeeFigure(
                organization=organization, billing_entity_id=entity, currency=currency,
                issuing_month=issuing, created_month=created, fee_type=fee_type,
                metric_code=code, plan_interval=interval, net_amount_cents=net_cents,
                mrr_amount_cents=mrr, fees_count=count,
            )
            for (entity, currency, issuing, created, fee_type, code, interval),
            (net_cents, mrr, count) in monthly.items()
        ],
        batch_size=1000,
    )  # fmt: skip
    SpreadFeeFigure.objects.bulk_create(
        [
            SpreadFeeFigure(
                organization=organization, billing_entity_id=entity, currency=currency,
                issuing_date=issuing, period_minutes=minutes, pay_in_advance=in_advance,
                mrr_amount_cents=mrr, fees_count=count,
            )
            for (entity, currency, issuing, minutes, in_advance), (mrr, count) in spread.items()
        ],
        batch_size=1000,
    )  # fmt: skip
    return len(monthly), len(spread)
