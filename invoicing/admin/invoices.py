"""Invoice admin for finance staff: the list (filters, search, CSV export), the invoice page (fees,
taxes, credits, PDF) and the actions, each calling the same service as the API (spec §12).

Fee lines read through `invoicing.presenters`, as on the PDF and in the API.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import FileResponse, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from import_export.formats.base_formats import CSV

from billing.actors import Actor
from billing.admin_audit import ActivityTimelineMixin
from billing.admin_base import (
    ActionReport,
    DateRangeFilter,
    ListTotalsMixin,
    OrganizationAdmin,
    TabularInline,
    money_html,
)
from billing.admin_export import StreamingExportMixin
from billing.admin_search import AmountSearchMixin
from billing.errors import DomainError
from billing.money import format_money, format_unit_price, format_units
from invoicing.admin.exports import InvoiceResource
from invoicing.admin.invoice_void import void_invoice_view
from invoicing.admin.one_off import one_off_invoice_view
from invoicing.admin.payments import PaymentInline, record_invoice_payment
from invoicing.models import Credit, Fee, Invoice, InvoiceAppliedTax
from invoicing.pdf import invoice_pdf_ensure
from invoicing.presenters import (
    fee_breakdown_labels,
    fee_display_name,
    fee_item,
    payment_state,
    tag,
)
from invoicing.services.credit_notes import invoice_refundable_amount_cents
from invoicing.services.lifecycle import invoice_finalize, invoice_refresh
from invoicing.services.payments import invoice_mark_paid
from invoicing.services.void import invoice_void


def _refresh(*, invoice: Invoice, actor: Actor, now: datetime) -> Invoice:
    return invoice_refresh(invoice=invoice, actor=actor, now=now)


def _finalize(*, invoice: Invoice, actor: Actor, now: datetime) -> Invoice:
    return invoice_finalize(invoice=invoice, actor=actor, now=now)


def _void(*, invoice: Invoice, actor: Actor, now: datetime) -> Invoice:
    # staff voiding from the admin say so explicitly: a paid invoice may be voided too
    return invoice_void(invoice=invoice, actor=actor, now=now, generate_credit_note=False)


# the list's bulk void: a paid invoice asks whether the money becomes a credit note
PAID_VOID_REFUSAL = (
    'something was paid: use "Void selected invoices and credit what was paid", '
    "or its page's Void to choose credit and refund amounts"
)


def _void_unpaid(*, invoice: Invoice, actor: Actor, now: datetime) -> Invoice:
    """The list's "Void selected invoices": void only, so an invoice with money paid on it is
    refused rather than voided without a credit note."""
    if invoice.total_paid_amount_cents > 0 or (
        invoice.payment_status == Invoice.PaymentStatus.SUCCEEDED
    ):
        raise DomainError(PAID_VOID_REFUSAL)
    return invoice_void(invoice=invoice, actor=actor, now=now, generate_credit_note=False)


def _void_crediting_paid(*, invoice: Invoice, actor: Actor, now: datetime) -> Invoice:
    """The list's "Void ... and credit what was paid": as the page's form with a credit amount
    of what was paid and not refunded (the rest of the creditable amount goes to a credit note
    voided at once)."""
    return invoice_void(
        invoice=invoice,
        actor=actor,
        now=now,
        generate_credit_note=True,
        credit_amount_cents=invoice_refundable_amount_cents(invoice),
    )


def _download(*, invoice: Invoice, actor: Actor, now: datetime) -> Invoice:
    return invoice_pdf_ensure(invoice=invoice)


# (name, label, service, past tense) of the buttons and actions; every one is a service call
OPERATIONS: dict[str, tuple[str, Callable, str]] = {
    "refresh": ("Refresh draft", _refresh, "refreshed"),
    "finalize": ("Finalize", _finalize, "finalized"),
    "void": ("Void", _void, "voided"),
    "mark_paid": ("Mark paid", invoice_mark_paid, "marked paid"),
    "download": ("Generate PDF", _download, "rendered"),
}
# list actions only (the page's Void asks with a form)
BULK_OPERATIONS: dict[str, tuple[str, Callable, str]] = {
    "void_unpaid": ("Void", _void_unpaid, "voided"),
    "void_crediting_paid": ("Void and credit", _void_crediting_paid, "voided with a credit note"),
}


class _ReadOnlyInline(TabularInline):
    extra = 0
    hide_title = True  # each row is described by its columns
    classes = ("inv-lines",)
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class FeeInline(_ReadOnlyInline):
    model = Fee
    verbose_name_plural = "Fees"
    fields = ("line", "period", "units_display", "unit_price", "tax_rate", "amount", "taxes")
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return (
            super()
            .get_queryset(request)
            .filter(deleted_at__isnull=True)
            .select_related(
                "subscription__plan",
                "charge__billable_metric",
                "charge_filter",
                "fixed_charge__add_on",
                "add_on",
            )
        )

    @admin.display(description="Fee")
    def line(self, fee: Fee) -> str:
        item = fee_item(fee)
        line = format_html(
            "<strong>{}</strong><br><span class='inv-quiet'>{} · {}</span>",
            fee_display_name(fee, item),
            fee.get_fee_type_display(),
            item["code"] or "—",
        )
        # presentation breakdowns (spec §7.13): the fee's units per presented values
        breakdowns = fee_breakdown_labels(fee)
        if breakdowns:
            line += format_html("<br><span class='inv-quiet'>{}</span>", " · ".join(breakdowns))
        return line

    @admin.display(description="Period")
    def period(self, fee: Fee) -> str:
        props = fee.properties or {}
        start = props.get("charges_from_datetime") or props.get("from_datetime")
        end = props.get("charges_to_datetime") or props.get("to_datetime")
        return f"{start[:10]} → {end[:10]}" if start and end else "—"

    @admin.display(description="Units")
    def units_display(self, fee: Fee) -> str:
        return format_html('<span class="money">{}</span>', format_units(fee.units))

    @admin.display(description="Unit price")
    def unit_price(self, fee: Fee) -> str:
        return format_html(
            '<span class="money">{}</span>',
            format_unit_price(fee.precise_unit_amount, fee.amount_currency),
        )

    @admin.display(description="Tax rate")
    def tax_rate(self, fee: Fee) -> str:
        return f"{fee.taxes_rate.normalize():f} %" if fee.taxes_rate else "—"

    @admin.display(description="Amount (excl. tax)")
    def amount(self, fee: Fee) -> str:
        return money_html(fee.amount_cents, fee.amount_currency)

    @admin.display(description="Taxes")
    def taxes(self, fee: Fee) -> str:
        return money_html(fee.taxes_amount_cents, fee.amount_currency)


class InvoiceAppliedTaxInline(_ReadOnlyInline):
    model = InvoiceAppliedTax
    verbose_name_plural = "Taxes by rate"
    fields = ("tax_name", "tax_code", "rate", "base", "tax_amount")
    readonly_fields = fields

    @admin.display(description="Rate")
    def rate(self, row: InvoiceAppliedTax) -> str:
        return f"{row.tax_rate.normalize():f} %"

    @admin.display(description="Taxed amount")
    def base(self, row: InvoiceAppliedTax) -> str:
        return money_html(row.fees_amount_cents, row.invoice.currency)

    @admin.display(description="Tax")
    def tax_amount(self, row: InvoiceAppliedTax) -> str:
        return money_html(row.amount_cents, row.invoice.currency)


class CreditInline(_ReadOnlyInline):
    model = Credit
    fk_name = "invoice"
    verbose_name_plural = "Coupons and credits"
    fields = ("what", "before_taxes", "credit_amount", "voided_at")
    readonly_fields = fields

    @admin.display(description="Credit")
    def what(self, credit: Credit) -> str:
        if credit.applied_coupon_id:
            coupon = credit.applied_coupon.coupon
            return f"Coupon {coupon.name} ({coupon.code})"
        if credit.progressive_billing_invoice_id:
            return f"Progressive billing {credit.progressive_billing_invoice}"
        return "Credit note"

    @admin.display(description="Amount")
    def credit_amount(self, credit: Credit) -> str:
        return money_html(credit.amount_cents, credit.amount_currency)


class PaymentFilter(admin.SimpleListFilter):
    """Payment status as finance reads it: a voided invoice is no payment pending or failed."""

    title = "payment status"
    parameter_name = "payment_status__exact"  # the field filter's name: saved links still work

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list:
        return list(Invoice.PaymentStatus.choices)

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if value not in Invoice.PaymentStatus.values:
            return queryset
        queryset = queryset.filter(payment_status=value)
        if value != Invoice.PaymentStatus.SUCCEEDED:
            queryset = queryset.exclude(status=Invoice.Status.VOIDED)
        return queryset


class OverdueFilter(admin.SimpleListFilter):
    title = "overdue"
    parameter_name = "overdue"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list:
        return [("yes", "Overdue"), ("no", "Not overdue")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() in ("yes", "no"):
            return queryset.filter(payment_overdue=self.value() == "yes")
        return queryset


@admin.register(Invoice)
class InvoiceAdmin(
    ActivityTimelineMixin,
    AmountSearchMixin,
    ListTotalsMixin,
    StreamingExportMixin,
    OrganizationAdmin,
):
    search_amount_fields = ("total_amount_cents",)
    resource_classes = (InvoiceResource,)
    export_name = "invoices"
    list_totals = (("Total", "total_amount_cents"), ("Paid", "total_paid_amount_cents"))
    list_display = ("number_display", "customer_link", "invoice_type", "status_tag",
                    "payment_tag", "total", "issued", "due")  # fmt: skip
    list_display_links = ("number_display",)
    list_filter = ("status", PaymentFilter, "invoice_type", "currency",
                   ("issuing_date", DateRangeFilter), OverdueFilter,
                   ("billing_entity", admin.RelatedOnlyFieldListFilter))  # fmt: skip
    search_fields = ("number", "customer__external_id", "customer__name", "customer__legal_name")
    list_select_related = ("customer", "billing_entity")
    list_per_page = 50
    date_hierarchy = "issuing_date"
    ordering = ("-issuing_date", "-created_at")
    actions = ("refresh_drafts", "finalize_drafts", "void_invoices", "void_crediting_paid",
               "mark_paid", "render_pdfs", "export_csv")  # fmt: skip
    inlines = (FeeInline, InvoiceAppliedTaxInline, CreditInline, PaymentInline)
    change_list_template = "admin/invoicing/invoice/change_list.html"
    change_form_template = "admin/invoicing/invoice/change_form.html"
    fieldsets = (
        ("Invoice", {"fields": ("number_display", "lago_id", "invoice_type", "status_tag",
                                "payment_tag", "customer_link", "billing_entity", "currency",
                                "pdf_link")}),
        ("Dates", {"fields": ("issuing_date", "payment_due_date", "net_payment_term",
                              "finalized_at", "voided_at", "payment_dispute_lost_at"),
                   "classes": ("collapse",)}),
        ("Amounts", {"fields": ("fees_amount", "coupons_amount", "progressive_credit",
                                "sub_total_excl", "taxes_amount", "sub_total_incl",
                                "credit_notes_amount", "prepaid_credits", "total",
                                "total_paid")}),
        ("Metadata", {"fields": ("metadata_display", "error_details"), "classes": ("collapse",)}),
    )  # fmt: skip
    readonly_fields = (
        "number_display", "lago_id", "invoice_type", "status_tag", "payment_tag",
        "customer_link", "billing_entity", "currency", "pdf_link", "issuing_date",
        "payment_due_date", "net_payment_term", "finalized_at", "voided_at",
        "payment_dispute_lost_at", "fees_amount", "coupons_amount", "progressive_credit",
        "sub_total_excl", "taxes_amount", "sub_total_incl", "credit_notes_amount",
        "prepaid_credits", "total", "total_paid", "metadata_display", "error_details",
    )  # fmt: skip

    # --- permissions: invoices change through services only ---------------------------------

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: dict | None = None
    ) -> HttpResponse:
        """A one-off invoice of add-ons through the service of POST /invoices (spec §12.10)."""
        return one_off_invoice_view(self, request)

    def has_delete_permission(self, request: HttpRequest, obj: Invoice | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Invoice | None = None) -> bool:
        return False  # read only page; the buttons below are the writes

    def can_operate(self, request: HttpRequest) -> bool:
        return request.user.has_perm("invoicing.change_invoice")

    def get_actions(self, request: HttpRequest) -> dict:
        actions = super().get_actions(request)
        if not self.can_operate(request):
            actions = {k: v for k, v in actions.items() if k == "export_csv"}
        return actions

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).exclude(status=Invoice.Status.GENERATING)

    def search_result_detail(self, invoice: Invoice) -> str:
        """The line under an invoice in the header search's results."""
        customer = invoice.customer.name or invoice.customer.external_id
        total = format_money(invoice.total_amount_cents, invoice.currency)
        return f"{customer} · {total} · {invoice.issuing_date.isoformat()}"

    # --- columns ------------------------------------------------------------------------------

    @admin.display(description="Number", ordering="number")
    def number_display(self, invoice: Invoice) -> str:
        return invoice.number or "—"

    @admin.display(description="Issued", ordering="issuing_date")
    def issued(self, invoice: Invoice) -> str:
        return invoice.issuing_date.isoformat()

    @admin.display(description="Due", ordering="payment_due_date")
    def due(self, invoice: Invoice) -> str:
        return invoice.payment_due_date.isoformat()

    @admin.display(description="Lago ID")
    def lago_id(self, invoice: Invoice) -> str:
        return invoice.lago_id

    @admin.display(description="Customer", ordering="customer__name")
    def customer_link(self, invoice: Invoice) -> str:
        url = reverse("admin:customers_customer_change", args=[invoice.customer_id])
        return format_html(
            '<a href="{}">{}</a><br><span class="inv-quiet">{}</span>',
            url,
            invoice.customer.name or invoice.customer.external_id,
            invoice.customer.external_id,
        )

    @admin.display(description="Status", ordering="status")
    def status_tag(self, invoice: Invoice) -> str:
        return tag(invoice.get_status_display(), invoice.status)

    @admin.display(description="Payment", ordering="payment_status")
    def payment_tag(self, invoice: Invoice) -> str:
        label = tag(*payment_state(invoice))
        if invoice.payment_overdue:
            label = format_html("{} {}", label, tag("Overdue", "overdue"))
        if invoice.payment_dispute_lost_at:
            label = format_html("{} {}", label, tag("Dispute lost", "failed"))
        return label

    def _amount(field: str, description: str) -> Callable[[InvoiceAdmin, Invoice], str]:
        @admin.display(description=description, ordering=field)
        def display(self: InvoiceAdmin, invoice: Invoice) -> str:
            return money_html(getattr(invoice, field), invoice.currency)

        return display

    total = _amount("total_amount_cents", "Total")
    fees_amount = _amount("fees_amount_cents", "Fees")
    coupons_amount = _amount("coupons_amount_cents", "Coupons")
    progressive_credit = _amount("progressive_billing_credit_amount_cents", "Progressive credit")
    sub_total_excl = _amount("sub_total_excluding_taxes_amount_cents", "Subtotal excl. tax")
    taxes_amount = _amount("taxes_amount_cents", "Taxes")
    sub_total_incl = _amount("sub_total_including_taxes_amount_cents", "Subtotal incl. tax")
    credit_notes_amount = _amount("credit_notes_amount_cents", "Credit notes")
    prepaid_credits = _amount("prepaid_credit_amount_cents", "Prepaid credits")
    total_paid = _amount("total_paid_amount_cents", "Paid")

    @admin.display(description="PDF")
    def pdf_link(self, invoice: Invoice) -> str:
        if invoice.status not in (Invoice.Status.FINALIZED, Invoice.Status.VOIDED):
            return "—"
        url = reverse("admin:invoicing_invoice_pdf", args=[invoice.pk])
        label = "Download PDF" if invoice.file else "Generate and download PDF"
        return format_html('<a class="button" href="{}">{}</a>', url, label)

    @admin.display(description="Metadata")
    def metadata_display(self, invoice: Invoice) -> str:
        rows = list(invoice.metadata.values_list("key", "value"))
        if not rows:
            return "—"
        return format_html_join(format_html("<br>"), "<code>{}</code> = {}", rows)

    # --- pages --------------------------------------------------------------------------------

    def get_urls(self) -> list:
        view = self.admin_site.admin_view
        return [
            path("<uuid:object_id>/pdf/", view(self.pdf_view), name="invoicing_invoice_pdf"),
            path(
                "<uuid:object_id>/record_payment/",
                view(self.record_payment_view),
                name="invoicing_invoice_record_payment",
            ),
            path("<uuid:object_id>/void/", view(self.void_view), name="invoicing_invoice_void"),
            path(
                "<uuid:object_id>/operate/<str:operation>/",
                view(self.operate_view),
                name="invoicing_invoice_operate",
            ),
            *super().get_urls(),
        ]

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict,
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Invoice | None = None,
    ) -> HttpResponse:
        if obj is not None:
            context["operations"] = [
                (name, label, reverse("admin:invoicing_invoice_operate", args=[obj.pk, name]))
                for name, (label, _, _) in OPERATIONS.items()
                if self.can_operate(request) and self._offers(obj, name)
            ]
            if any(name == "void" for name, _, _ in context["operations"]):
                # the page's "Void" asks first: void only, or with a credit note
                context["operations"] = [op for op in context["operations"] if op[0] != "void"]
                context["void_url"] = reverse("admin:invoicing_invoice_void", args=[obj.pk])
            if self.can_operate(request) and self._offers(obj, "record_payment"):
                context["record_payment_url"] = reverse(
                    "admin:invoicing_invoice_record_payment", args=[obj.pk]
                )
            context["invoice"] = obj
            context["original_total"] = format_money(obj.total_amount_cents, obj.currency)
            if self.can_operate(request) and obj.status == Invoice.Status.FINALIZED:
                context["issue_credit_note_url"] = reverse(
                    "admin:invoicing_creditnote_issue", args=[obj.pk]
                )
        return super().render_change_form(request, context, add, change, form_url, obj)

    @staticmethod
    def _offers(invoice: Invoice, operation: str) -> bool:
        """The buttons that make sense for the invoice's state (the services re-check)."""
        issued = invoice.status == Invoice.Status.FINALIZED
        match operation:
            case "refresh" | "finalize":
                return invoice.status == Invoice.Status.DRAFT
            case "void":
                return issued and invoice.payment_dispute_lost_at is None
            case "record_payment":  # a partial payment of an issued invoice
                return issued and invoice.payment_status != Invoice.PaymentStatus.SUCCEEDED
            case "mark_paid":  # an open credit invoice waits for its payment (spec §17.3)
                payable = issued or invoice.status == Invoice.Status.OPEN
                return payable and invoice.payment_status != Invoice.PaymentStatus.SUCCEEDED
            case "download":
                return issued or invoice.status == Invoice.Status.VOIDED
        return False

    def operate_view(self, request: HttpRequest, object_id: str, operation: str) -> HttpResponse:
        if request.method != "POST" or operation not in OPERATIONS:
            raise PermissionDenied
        if not self.can_operate(request):
            raise PermissionDenied
        invoice = get_object_or_404(self.get_queryset(request), pk=object_id)
        _, service, verb = OPERATIONS[operation]
        report = ActionReport(self, request, verb)
        report.attempt(invoice, service, invoice=invoice, actor=report.actor, now=timezone.now())
        report.send()
        return HttpResponseRedirect(reverse("admin:invoicing_invoice_change", args=[invoice.pk]))

    def void_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return void_invoice_view(self, request, object_id)

    def record_payment_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return record_invoice_payment(self, request, object_id)

    def pdf_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        invoice = get_object_or_404(self.get_queryset(request), pk=object_id)
        if invoice.status not in (Invoice.Status.FINALIZED, Invoice.Status.VOIDED):
            raise PermissionDenied
        invoice = invoice_pdf_ensure(invoice=invoice)
        return FileResponse(
            invoice.file.open("rb"),
            content_type="application/pdf",
            filename=f"{invoice.number or invoice.lago_id}.pdf",
        )

    # --- actions ------------------------------------------------------------------------------

    def _run(self, request: HttpRequest, queryset: QuerySet, operation: str) -> None:
        _, service, verb = OPERATIONS.get(operation) or BULK_OPERATIONS[operation]
        report, now = ActionReport(self, request, verb), timezone.now()
        for invoice in queryset:
            report.attempt(invoice, service, invoice=invoice, actor=report.actor, now=now)
        report.send()

    @admin.action(description="Refresh selected drafts")
    def refresh_drafts(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._run(request, queryset, "refresh")

    @admin.action(description="Finalize selected drafts")
    def finalize_drafts(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._run(request, queryset, "finalize")

    @admin.action(description="Void selected invoices")
    def void_invoices(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._run(request, queryset, "void_unpaid")

    @admin.action(description="Void selected invoices and credit what was paid")
    def void_crediting_paid(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._run(request, queryset, "void_crediting_paid")

    @admin.action(description="Mark selected invoices paid")
    def mark_paid(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._run(request, queryset, "mark_paid")

    @admin.action(description="Generate PDFs of selected invoices")
    def render_pdfs(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._run(request, queryset, "download")

    @admin.action(description="Export selected invoices as CSV")
    def export_csv(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse:
        return self._do_file_export(CSV(), request, queryset)
