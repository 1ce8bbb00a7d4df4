"""The finance overview page, composed: KPI cards and chart series from `invoicing.analytics`.

Each figure carries the link of the admin list it sums (invoices or wallets, filtered the same
way), so finance can open what is behind a number. The admin view (`invoicing.admin.overview`)
only picks the organization, currency and billing entity from the query and renders this.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from urllib.parse import urlencode

from django.urls import reverse

from billing.models import BillingEntity, Organization
from billing.money import exponent, format_money, round_cents
from invoicing import analytics
from invoicing.analytics import Filters, add_months

CHART_MONTHS = 12
COLLECTION_STATUSES = ("succeeded", "pending", "failed")


@dataclass
class Card:
    """One KPI: a title, the figure, a line under it, and the admin list it sums."""

    title: str
    value: str
    detail: str = ""
    url: str = ""
    tone: str = ""  # "", "good", "warn" or "bad": the colour of the detail line
    key: str = ""


@dataclass
class Overview:
    organization: Organization
    currency: str
    billing_entity: BillingEntity | None
    today: date
    currencies: list[str]
    billing_entities: list[BillingEntity]
    cards: list[Card] = field(default_factory=list)
    charts: dict = field(default_factory=dict)
    tables: dict = field(default_factory=dict)


def _invoices_url(overview_filters: Filters, **params: object) -> str:
    query: dict[str, object] = {}
    if overview_filters.currency:
        query["currency__exact"] = overview_filters.currency
    if overview_filters.billing_entity is not None:
        query["billing_entity__id__exact"] = overview_filters.billing_entity.pk
    query.update(params)
    return reverse("admin:invoicing_invoice_changelist") + "?" + urlencode(query)


def _month_params(month: date) -> dict[str, str]:
    return {
        "issuing_date__gte": month.isoformat(),
        "issuing_date__lt": add_months(month, 1).isoformat(),
    }


def _invoices(count: int, words: str, *, after: bool = False) -> str:
    noun = "invoice" if count == 1 else "invoices"
    return f"{count} {noun} {words}" if after else f"{count} {words} {noun}"


def _change(current: int, previous: int) -> tuple[str, str]:
    if previous == 0:
        return ("new this month", "good") if current else ("no revenue yet", "")
    percent = (Decimal(current - previous) * 100 / previous).quantize(Decimal("0.1"))
    sign = "+" if percent >= 0 else ""
    return f"{sign}{percent}% vs last month", "good" if percent >= 0 else "warn"


def build_overview(
    *,
    organization: Organization,
    today: date,
    currency: str | None = None,
    billing_entity: BillingEntity | None = None,
) -> Overview:
    """Every figure of the overview page for one organization, currency and billing entity."""
    currencies = analytics.currencies_in_use(organization)
    currency = currency or (currencies[0] if currencies else organization.default_currency)
    if currency not in currencies:
        currencies.append(currency)
    overview = Overview(
        organization=organization,
        currency=currency,
        billing_entity=billing_entity,
        today=today,
        currencies=currencies,
        billing_entities=list(
            BillingEntity.objects.filter(organization=organization).order_by("name")
        ),
    )
    scope = Filters(
        organization=organization,
        today=today,
        currency=currency,
        billing_entity=billing_entity,
    )
    window = Filters(
        organization=organization,
        today=today,
        currency=currency,
        billing_entity=billing_entity,
        months=CHART_MONTHS,
    )
    months = window.month_list()
    this_month = scope.current_month
    last_month = add_months(this_month, -1)

    def money(cents: int | Decimal) -> str:
        return format_money(cents, currency)

    # MRR: the last 12 months and the current figure
    mrr = analytics.mrr_by_month(window)
    mrr_series = [round_cents(mrr.get((month, currency), Decimal(0))) for month in months]
    current_mrr = mrr_series[-1] if mrr_series else 0
    previous_mrr = mrr_series[-2] if len(mrr_series) > 1 else 0
    mrr_detail, mrr_tone = _change(current_mrr, previous_mrr)
    subscription_invoices = _invoices_url(
        scope, status__exact="finalized", invoice_type__exact="subscription",
        **_month_params(this_month),
    )  # fmt: skip
    overview.cards.append(
        Card("MRR", money(current_mrr), mrr_detail, subscription_invoices, mrr_tone, "mrr")
    )
    overview.cards.append(
        Card("ARR", money(current_mrr * 12), "MRR x 12", subscription_invoices, "", "arr")
    )

    # gross revenue: this month against last month
    invoice_rows = analytics.invoice_month_rows(window)
    gross = analytics.sum_by_month(analytics.gross_revenues(window, invoice_rows), currency)
    gross_this = gross.get(analytics.month_instant(this_month), 0)
    gross_last = gross.get(analytics.month_instant(last_month), 0)
    detail, tone = _change(gross_this, gross_last)
    overview.cards.append(
        Card(
            f"Gross revenue {this_month:%B}",
            money(gross_this),
            f"{detail} ({money(gross_last)} in {last_month:%B})",
            _invoices_url(scope, status__exact="finalized", **_month_params(this_month)),
            tone,
            "gross_revenue",
        )
    )

    # receivables, failed payments, prepaid credits, drafts
    owed = analytics.receivables(scope).get(currency)
    outstanding = owed.outstanding_cents if owed else 0
    overview.cards.append(
        Card(
            "Outstanding receivables",
            money(outstanding),
            _invoices(owed.outstanding_count if owed else 0, "unpaid"),
            _invoices_url(scope, status__exact="finalized", payment_status__in="pending,failed"),
            "",
            "outstanding",
        )
    )
    overview.cards.append(
        Card(
            "Overdue",
            money(owed.overdue_cents if owed else 0),
            _invoices(owed.overdue_count if owed else 0, "past their due date", after=True),
            _invoices_url(scope, status__exact="finalized", overdue="yes"),
            "bad" if owed and owed.overdue_cents else "good",
            "overdue",
        )
    )
    overview.cards.append(
        Card(
            "Failed payments",
            money(owed.failed_cents if owed else 0),
            _invoices(owed.failed_count if owed else 0, "with a failed payment", after=True),
            _invoices_url(scope, status__exact="finalized", payment_status__exact="failed"),
            "bad" if owed and owed.failed_count else "good",
            "failed",
        )
    )
    credits_cents, wallets_count = analytics.prepaid_credits(scope).get(currency, (0, 0))
    wallet_query = {"status__exact": "active", "currency__exact": currency}
    overview.cards.append(
        Card(
            "Prepaid credits outstanding",
            money(credits_cents),
            f"in {wallets_count} active wallets",
            reverse("admin:wallets_wallet_changelist") + "?" + urlencode(wallet_query),
            "",
            "prepaid",
        )
    )
    drafts = analytics.draft_invoices(scope).count()
    overview.cards.append(
        Card(
            "Drafts awaiting finalization",
            str(drafts),
            "draft invoices in this currency",
            _invoices_url(scope, status__exact="draft"),
            "warn" if drafts else "",
            "drafts",
        )
    )

    # charts
    labels = [f"{month:%b %Y}" for month in months]
    month_links = [
        _invoices_url(scope, status__exact="finalized", **_month_params(month)) for month in months
    ]
    streams = analytics.revenue_by_stream(window)
    collection = {status: [0] * len(months) for status in COLLECTION_STATUSES}
    collection_counts = {status: [0] * len(months) for status in COLLECTION_STATUSES}
    index = {analytics.month_instant(month): i for i, month in enumerate(months)}
    for row in analytics.invoice_collections(window, invoice_rows):
        if row["payment_status"] in collection and row["month"] in index:
            collection[row["payment_status"]][index[row["month"]]] += row["amount_cents"]
            collection_counts[row["payment_status"]][index[row["month"]]] += row["invoices_count"]
    usage: dict[str, list[int]] = {}
    for row in analytics.invoiced_usages(window):
        if row["month"] in index:
            series = usage.setdefault(row["code"] or "—", [0] * len(months))
            series[index[row["month"]]] += row["amount_cents"]
    top = analytics.top_customers(window, limit=10)
    customer_url = reverse("admin:customers_customer_changelist")
    overview.charts = {
        "currency": currency,
        "exponent": exponent(currency),
        "labels": labels,
        "month_links": month_links,
        "mrr": mrr_series,
        "streams": {
            name: [streams[month][name] for month in months] for name in analytics.STREAMS.values()
        },
        "collection": collection,
        "collection_links": {
            status: [
                _invoices_url(
                    scope,
                    status__exact="finalized",
                    payment_status__exact=status,
                    **_month_params(month),
                )
                for month in months
            ]
            for status in COLLECTION_STATUSES
        },
        "usage": usage,
        "top": [
            {
                "name": row["name"],
                "amount": row["amount_cents"],
                "url": reverse("admin:customers_customer_change", args=[row["customer_id"]]),
            }
            for row in top
        ],
    }
    overview.tables = {
        "months": [
            {
                "label": label,
                "url": month_links[i],
                "mrr": money(mrr_series[i]),
                "gross": money(gross.get(analytics.month_instant(months[i]), 0)),
                "streams": {
                    name: money(streams[months[i]][name]) for name in analytics.STREAMS.values()
                },
                "collected": money(collection["succeeded"][i]),
                "pending": money(collection["pending"][i] + collection["failed"][i]),
                "invoices": sum(collection_counts[s][i] for s in COLLECTION_STATUSES),
            }
            for i, label in enumerate(labels)
        ],
        "top": [
            {
                "name": row["name"],
                "external_id": row["external_id"],
                "amount": money(row["amount_cents"]),
                "invoices": row["invoices_count"],
                "url": _invoices_url(
                    scope,
                    status__exact="finalized",
                    q=row["external_id"],
                    issuing_date__gte=months[0].isoformat(),
                ),
                "customer_url": customer_url + "?" + urlencode({"q": row["external_id"]}),
            }
            for row in top
        ],
        "usage": [
            {"code": code, "total": money(sum(series))}
            for code, series in sorted(usage.items(), key=lambda item: -sum(item[1]))
        ],
    }
    return overview


def customer_revenue(*, customer, today: date) -> list[dict]:
    """Per currency: what the customer was billed (all time and last 12 months) and what is
    overdue, from the same figures as the analytics API (gross revenue, overdue balance)."""
    base = Filters(
        organization=customer.organization,
        today=today,
        external_customer_id=customer.external_id,
    )
    last_year = Filters(
        organization=customer.organization,
        today=today,
        external_customer_id=customer.external_id,
        months=CHART_MONTHS,
    )
    result: dict[str, dict] = {}
    for key, filters in (("gross", base), ("gross_12", last_year)):
        for row in analytics.gross_revenues(filters):
            entry = result.setdefault(row["currency"], {"gross": 0, "gross_12": 0, "overdue": 0})
            entry[key] += row["amount_cents"]
    for row in analytics.overdue_balances(base):
        entry = result.setdefault(row["currency"], {"gross": 0, "gross_12": 0, "overdue": 0})
        entry["overdue"] += row["amount_cents"]
    return [
        {
            "currency": currency,
            "gross": format_money(entry["gross"], currency),
            "gross_12": format_money(entry["gross_12"], currency),
            "overdue": format_money(entry["overdue"], currency),
            "overdue_cents": entry["overdue"],
        }
        for currency, entry in sorted(result.items())
    ]
