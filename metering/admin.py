"""Events browser (read-only, spec §5).

Events are immutable once stored: the admin only lists them (by subscription, code, date;
searched by exact transaction id or external subscription id, both indexed) and shows one.
The "current usage" panel of the customer 360 page lives in `metering.presenters`.
"""

from __future__ import annotations

import json

from django.contrib import admin
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from billing.admin_base import OrganizationAdmin, staff_organizations
from billing.money import format_units
from customers.models import Subscription
from metering.models import Event
from plans.models import BillableMetric


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
        "value_display",
        "created_at",
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

    @admin.display(description=_("Value"), ordering="value")
    def value_display(self, event: Event) -> str:
        return format_units(event.value) if event.value is not None else "—"

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
