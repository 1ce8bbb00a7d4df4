"""Events browser (read-only, spec §5) and the "current usage" panel of the customer 360 page
(spec §25).

Events are immutable once stored: the admin only lists them (by subscription, code, date;
searched by exact transaction id or external subscription id, both indexed) and shows one.
The panel prices the current period of each active subscription with the usage engine, the same
computation as `GET /customers/{id}/current_usage`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from django.contrib import admin
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.template import engines
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from billing.admin_base import OrganizationAdmin, staff_organizations
from billing.errors import DomainError
from billing.money import format_money
from customers.admin.customers import Panel, customer_360_panels
from customers.models import Customer, Subscription
from metering.models import Event
from metering.presentation import breakdowns_from_payload, label
from metering.usage import customer_current_usage
from plans.models import BillableMetric

logger = logging.getLogger(__name__)


class CodeFilter(admin.SimpleListFilter):
    """The billable metric codes of the staff member's organizations."""

    title = _("code")
    parameter_name = "code"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list:
        codes = (
            BillableMetric.objects.filter(organization__in=staff_organizations(request))
            .alive()
            .order_by("code")
            .values_list("code", flat=True)
            .distinct()
        )
        return [(code, code) for code in codes[:200]]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        return queryset.filter(code=self.value()) if self.value() else queryset


class SubscriptionFilter(admin.SimpleListFilter):
    """The external ids of active subscriptions (events are keyed by external id)."""

    title = _("subscription")
    parameter_name = "external_subscription_id"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list:
        external_ids = (
            Subscription.objects.filter(
                organization__in=staff_organizations(request),
                status=Subscription.Status.ACTIVE,
            )
            .order_by("external_id")
            .values_list("external_id", flat=True)
            .distinct()
        )
        return [(external_id, external_id) for external_id in external_ids[:200]]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value():
            return queryset.filter(external_subscription_id=self.value())
        return queryset


@admin.register(Event)
class EventAdmin(OrganizationAdmin):
    """Usage events as received; nothing here writes."""

    list_display = (
        "transaction_id",
        "external_subscription_id",
        "code",
        "timestamp",
        "value",
        "created_at",
        "organization",
    )
    list_filter = (SubscriptionFilter, CodeFilter, "timestamp", "organization")
    date_hierarchy = "timestamp"
    search_fields = ("transaction_id", "external_subscription_id")
    search_help_text = _("Exact transaction id or external subscription id.")
    list_select_related = ("organization",)
    show_full_result_count = False  # the events table is the big one: no COUNT(*) per page
    list_per_page = 100
    readonly_fields = (
        "lago_id",
        "organization",
        "transaction_id",
        "external_subscription_id",
        "code",
        "timestamp",
        "properties_json",
        "value",
        "precise_total_amount_cents",
        "subscription_id",
        "customer_id",
        "created_at",
        "deleted_at",
    )
    fields = readonly_fields

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet, search_term: str
    ) -> tuple[QuerySet, bool]:
        # exact matches only: an index serves them, a LIKE over millions of events would not
        term = search_term.strip()
        if not term:
            return queryset, False
        return queryset.filter(Q(transaction_id=term) | Q(external_subscription_id=term)), False

    @admin.display(description=_("properties"))
    def properties_json(self, event: Event) -> str:
        return format_html(
            "<pre>{}</pre>", json.dumps(event.properties, indent=2, sort_keys=True, default=str)
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Event | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Event | None = None) -> bool:
        return False


# --- the "current usage" panel of the customer 360 page ---------------------------------------

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
                    units=item["units"],
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


customer_360_panels.append(current_usage_panel)
