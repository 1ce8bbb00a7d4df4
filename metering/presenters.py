"""The "current usage" panel of the customer 360 page (spec §25): the current period of each
active subscription, priced with the usage engine, the same computation as
`GET /customers/{id}/current_usage`. The page lists it in `invoicing/customer_360.py`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.http import HttpRequest
from django.template import engines
from django.utils import timezone

from billing.admin_base import Panel
from billing.errors import DomainError
from billing.money import format_money, format_units, round_cents
from customers.models import Customer, Subscription
from metering import ports
from metering.models import (
    LifetimeUsage,
    SubscriptionActivity,
    TriggeredUsageAlert,
    UsageAlert,
)
from metering.presentation import breakdowns_from_payload, label
from metering.services.lifetime_usages import lifetime_usage_thresholds
from metering.usage import customer_current_usage

logger = logging.getLogger(__name__)

USAGE_PANEL_TEMPLATE = engines["django"].from_string(
    """{% for block in panel.context.blocks %}
<h3>{{ block.subscription.external_id }} — {{ block.subscription.plan.name }}
  <span class="c360-source">{{ block.from_datetime }} → {{ block.to_datetime }}</span></h3>
{% if block.error %}<p class="c360-empty">Usage unavailable: {{ block.error }}</p>
{% else %}
<table>
  <thead><tr><th>Billable metric</th><th>Charge model</th><th class="c360-num">Units</th>
    <th class="c360-num">Events</th><th class="c360-num">Amount</th></tr></thead>
  <tbody>{% for row in block.rows %}
    <tr><td>{{ row.metric }} <span class="c360-source">{{ row.code }}</span>
      {% if row.breakdowns %}
      <div class="c360-source">{{ row.breakdowns|join:" · " }}</div>{% endif %}</td>
      <td>{{ row.charge_model }}</td><td class="c360-num">{{ row.units }}</td>
      <td class="c360-num">{{ row.events_count }}</td>
      <td class="c360-num">{{ row.amount }}</td></tr>
  {% endfor %}</tbody>
  <tfoot>
    <tr><td colspan="4">Total excluding taxes</td><td class="c360-num">{{ block.amount }}</td></tr>
    <tr><td colspan="4">Taxes</td><td class="c360-num">{{ block.taxes }}</td></tr>
    <tr><td colspan="4"><strong>Total</strong></td>
      <td class="c360-num"><strong>{{ block.total }}</strong></td></tr>
  </tfoot>
</table>{% endif %}
{% empty %}<p class="c360-empty">No active subscription: no current usage.</p>{% endfor %}"""
)


@dataclass(frozen=True)
class UsageRow:
    metric: str
    code: str
    charge_model: str
    units: str
    events_count: int
    amount: str
    breakdowns: tuple[str, ...] = ()  # presentation breakdowns: "eu: 4.0"


def _local_day(iso: str, customer: Customer) -> str:
    """ "2026-11-01" for "2026-10-31T23:00:00Z" in Europe/Berlin: the customer's own days."""
    instant = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    return instant.astimezone(ZoneInfo(customer.applicable_timezone)).date().isoformat()


def current_usage_panel(request: HttpRequest, customer: Customer) -> Panel:
    """The current period of each active subscription, priced like `current_usage`."""
    now = timezone.now()
    blocks = []
    subscriptions = customer.subscriptions.filter(status=Subscription.Status.ACTIVE).select_related(
        "plan", "organization", "customer__billing_entity", "customer__organization"
    )
    for subscription in subscriptions.order_by("external_id"):
        block: dict = {"subscription": subscription}
        try:
            usage = customer_current_usage(customer=customer, subscription=subscription, now=now)
        except (DomainError, ValueError) as exc:  # a misconfigured charge must not hide the page
            logger.warning("current usage of %s failed", subscription.pk, exc_info=True)
            block["error"] = str(exc)
            blocks.append(block)
            continue
        currency = usage["currency"]
        block.update(
            from_datetime=_local_day(usage["from_datetime"], customer),
            to_datetime=_local_day(usage["to_datetime"], customer),
            amount=format_money(usage["amount_cents"], currency),
            taxes=format_money(usage["taxes_amount_cents"], currency),
            total=format_money(usage["total_amount_cents"], currency),
            rows=[
                UsageRow(
                    metric=item["billable_metric"]["name"],
                    code=item["billable_metric"]["code"],
                    charge_model=item["charge"]["charge_model"],
                    units=format_units(item["units"]),
                    events_count=item["events_count"],
                    amount=format_money(item["amount_cents"], currency),
                    breakdowns=tuple(
                        map(label, breakdowns_from_payload(item["presentation_breakdowns"]))
                    ),
                )
                for item in usage["charges_usage"]
            ],
        )
        blocks.append(block)
    return Panel("Current usage", USAGE_PANEL_TEMPLATE, {"blocks": blocks})


# --------------------------------------------------------------------------------------------
# Subscription page: lifetime usage and usage alerts


def _alert_figure(alert: UsageAlert, value: Decimal, currency: str) -> str:
    if alert.alert_type == UsageAlert.AlertType.BILLABLE_METRIC_CURRENT_USAGE_UNITS:
        text = f"{value:,f}"
        return f"{text.rstrip('0').rstrip('.') if '.' in text else text} units"
    return format_money(round_cents(value), currency)


def subscription_monitoring_panel(request: HttpRequest, subscription: Subscription) -> Panel:
    """Lifetime usage (its three parts) and every usage alert with its thresholds, last value,
    last evaluation and last crossing."""
    currency = subscription.plan.amount_currency
    lifetime = LifetimeUsage.objects.filter(subscription=subscription).first()
    alerts = list(
        UsageAlert.objects.filter(
            organization_id=subscription.organization_id,
            external_subscription_id=subscription.external_id,
        )
        .select_related("billable_metric")
        .order_by("created_at", "id")
    )
    latest: dict = {}
    for triggered in TriggeredUsageAlert.objects.filter(alert__in=alerts).order_by(
        "alert_id", "-triggered_at"
    ):
        latest.setdefault(triggered.alert_id, triggered)
    rows = []
    for alert in alerts:
        watches = alert.get_alert_type_display()
        if alert.billable_metric:
            watches = f"{watches} ({alert.billable_metric.code})"
        thresholds = ", ".join(
            _alert_figure(alert, Decimal(t["value"]), currency)
            + (" recurring" if t.get("recurring") else "")
            for t in alert.thresholds
        )
        last = latest.get(alert.pk)
        rows.append(
            {
                "alert": alert,
                "watches": watches,
                "thresholds": thresholds,
                "last_value": _alert_figure(alert, alert.previous_value, currency),
                "last_triggered": last,
                "last_crossed": ", ".join(
                    _alert_figure(alert, Decimal(c["value"]), currency)
                    for c in (last.crossed_thresholds if last else [])
                ),
            }
        )

    def money(cents: int) -> str:
        return format_money(cents, currency)

    return Panel(
        title="Usage monitoring",
        template="admin/metering/subscription_monitoring_panel.html",
        context={
            "lifetime_total": money(lifetime.total_amount_cents if lifetime else 0),
            "historical": money(lifetime.historical_usage_amount_cents if lifetime else 0),
            "invoiced": money(lifetime.invoiced_usage_amount_cents if lifetime else 0),
            "current": money(lifetime.current_usage_amount_cents if lifetime else 0),
            "refreshed_at": lifetime.current_usage_amount_refreshed_at if lifetime else None,
            "pending": SubscriptionActivity.objects.filter(subscription=subscription).exists(),
            "alerts": rows,
        },
    )


def subscription_progressive_billing_panel(
    request: HttpRequest, subscription: Subscription
) -> Panel | None:
    """The lifetime usage against each usage threshold (a progress bar, the date it was
    reached), then the progressive billing invoices of the current period; nothing when the
    subscription has no thresholds and no such invoice."""
    now = timezone.now()
    currency = subscription.plan.amount_currency
    lifetime = LifetimeUsage.objects.filter(subscription=subscription).first()
    completion = lifetime_usage_thresholds(lifetime, now=now) if lifetime else None
    invoices = ports.progressive_invoices(subscription_id=subscription.pk, at=now)
    if not completion and not invoices:
        return None
    thresholds = [
        {
            "amount": format_money(row.amount_cents, currency),
            "percent": int(min(row.completion_ratio, Decimal(1)) * 100),
            "reached_at": row.reached_at,
        }
        for row in completion or []
    ]
    return Panel(
        title="Progressive billing",
        template="admin/metering/subscription_progressive_panel.html",
        context={
            "disabled": subscription.progressive_billing_disabled,
            "lifetime_total": format_money(
                lifetime.total_amount_cents if lifetime else 0, currency
            ),
            "thresholds": thresholds,
            "invoices": [
                {
                    "row": row,
                    "fees": format_money(row.fees_amount_cents, row.currency),
                    "credit": format_money(
                        row.progressive_billing_credit_amount_cents, row.currency
                    ),
                    "total": format_money(row.total_amount_cents, row.currency),
                    "thresholds": ", ".join(format_money(a, row.currency) for a in row.thresholds),
                }
                for row in invoices
            ],
        },
    )


def subscription_panels() -> tuple:
    """The panels metering adds to a subscription's page (`customers.ports`)."""
    return (subscription_monitoring_panel, subscription_progressive_billing_panel)
