"""The fees list: every fee of the organization's invoices (and pay-in-advance fees not yet
invoiced), read only, with filters and exports for finance."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from billing.admin_base import DateRangeFilter, OrganizationAdmin, money_html
from billing.admin_export import StreamingExportMixin
from billing.money import format_units
from invoicing.admin.exports import FeeResource
from invoicing.models import Fee
from invoicing.presenters import fee_display_name


@admin.register(Fee)
class FeeAdmin(StreamingExportMixin, OrganizationAdmin):
    resource_classes = (FeeResource,)
    export_name = "fees"
    list_display = ("item", "invoice_link", "customer_link", "fee_type", "units_display",
                    "amount", "created")  # fmt: skip
    list_filter = ("fee_type", "payment_status", "amount_currency",
                   ("created_at", DateRangeFilter))  # fmt: skip
    search_fields = ("invoice__number", "customer__external_id", "customer__name",
                     "invoice_display_name")  # fmt: skip
    list_select_related = ("invoice", "customer", "subscription__plan", "charge__billable_metric",
                           "charge_filter", "fixed_charge__add_on", "add_on")  # fmt: skip
    list_per_page = 50
    ordering = ("-created_at", "-id")
    show_full_result_count = False  # a million fees: no second COUNT(*) per page

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).filter(deleted_at__isnull=True)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # fees are made by billing

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    @admin.display(description="Fee")
    def item(self, fee: Fee) -> str:
        return fee_display_name(fee)

    @admin.display(description="Invoice", ordering="invoice__number")
    def invoice_link(self, fee: Fee) -> str:
        if fee.invoice_id is None:
            return "—"
        url = reverse("admin:invoicing_invoice_change", args=[fee.invoice_id])
        return format_html('<a href="{}">{}</a>', url, fee.invoice.number or "draft")

    @admin.display(description="Customer", ordering="customer__name")
    def customer_link(self, fee: Fee) -> str:
        url = reverse("admin:customers_customer_change", args=[fee.customer_id])
        return format_html(
            '<a href="{}">{}</a>', url, fee.customer.name or fee.customer.external_id
        )

    @admin.display(description="Units")
    def units_display(self, fee: Fee) -> str:
        return format_html('<span class="money">{}</span>', format_units(fee.units))

    @admin.display(description="Amount (excl. tax)", ordering="amount_cents")
    def amount(self, fee: Fee) -> str:
        return money_html(fee.amount_cents, fee.amount_currency)

    @admin.display(description="Created", ordering="created_at")
    def created(self, fee: Fee) -> str:
        return fee.created_at.strftime("%Y-%m-%d %H:%M")
