"""Credit note admin for finance staff: the list (filters, search), the credit note page (items,
taxes, remaining credit, void and refund outcome) and the "Issue credit note" form reached from
an invoice, whose live estimate and submission call the same services as the API."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal, InvalidOperation

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import (
    FileResponse,
    HttpRequest,
    HttpResponse,
    HttpResponseRedirect,
    JsonResponse,
)
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from billing.actors import Actor
from billing.admin_base import (
    ActionReport,
    DateRangeFilter,
    ListTotalsMixin,
    OrganizationAdmin,
    describe,
    money_html,
    staff_organizations,
)
from billing.admin_export import StreamingExportMixin
from billing.admin_search import AmountSearchMixin
from billing.errors import DomainError
from billing.money import exponent, format_money, round_cents, to_major
from invoicing.admin.exports import CreditNoteResource
from invoicing.admin.invoices import _ReadOnlyInline
from invoicing.models import CreditNote, CreditNoteAppliedTax, CreditNoteItem, Invoice
from invoicing.pdf_credit_notes import credit_note_pdf_ensure
from invoicing.presenters import fee_display_name, tag
from invoicing.services.credit_notes import (
    ItemInput,
    credit_note_create,
    credit_note_estimate,
    credit_note_update,
    credit_note_void,
    invoice_creditable_amount_cents,
)


def _status_tag(value: str | None, label: str | None) -> str:
    return tag(label, value) if value else "—"


class CreditNoteItemInline(_ReadOnlyInline):
    model = CreditNoteItem
    verbose_name_plural = "Items"
    fields = ("fee_line", "fee_amount", "credited")
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related(
            "fee__subscription__plan", "fee__charge__billable_metric", "fee__add_on",
            "fee__fixed_charge__add_on", "fee__charge_filter",
        )  # fmt: skip

    @admin.display(description="Fee")
    def fee_line(self, item: CreditNoteItem) -> str:
        return format_html(
            "<strong>{}</strong><br><span class='inv-quiet'>{}</span>",
            fee_display_name(item.fee),
            item.fee.get_fee_type_display(),
        )

    @admin.display(description="Fee amount (excl. tax)")
    def fee_amount(self, item: CreditNoteItem) -> str:
        return money_html(item.fee.amount_cents, item.amount_currency)

    @admin.display(description="Credited (excl. tax)")
    def credited(self, item: CreditNoteItem) -> str:
        return money_html(item.amount_cents, item.amount_currency)


class CreditNoteAppliedTaxInline(_ReadOnlyInline):
    model = CreditNoteAppliedTax
    verbose_name_plural = "Taxes by rate"
    fields = ("tax_name", "tax_code", "rate", "base", "tax_amount")
    readonly_fields = fields

    @admin.display(description="Rate")
    def rate(self, row: CreditNoteAppliedTax) -> str:
        return f"{row.tax_rate.normalize():f} %"

    @admin.display(description="Taxed amount")
    def base(self, row: CreditNoteAppliedTax) -> str:
        return money_html(row.base_amount_cents, row.amount_currency)

    @admin.display(description="Tax")
    def tax_amount(self, row: CreditNoteAppliedTax) -> str:
        return money_html(row.amount_cents, row.amount_currency)


@admin.register(CreditNote)
class CreditNoteAdmin(AmountSearchMixin, ListTotalsMixin, StreamingExportMixin, OrganizationAdmin):
    search_amount_fields = ("total_amount_cents",)
    resource_classes = (CreditNoteResource,)
    export_name = "credit-notes"
    list_totals = (("Total", "total_amount_cents"), ("Credit left", "balance_amount_cents"))
    list_display = ("number", "customer_link", "invoice_link", "reason", "credit_tag",
                    "refund_tag", "total", "remaining", "issued")  # fmt: skip
    list_filter = ("credit_status", "refund_status", "reason", "currency",
                   ("issuing_date", DateRangeFilter), "automatic")  # fmt: skip
    search_fields = ("number", "invoice__number", "customer__external_id", "customer__name")
    list_select_related = ("customer", "invoice")
    list_per_page = 50
    date_hierarchy = "issuing_date"
    ordering = ("-created_at",)
    actions = ("void_remaining",)
    inlines = (CreditNoteItemInline, CreditNoteAppliedTaxInline)
    change_list_template = "admin/invoicing/creditnote/change_list.html"
    change_form_template = "admin/invoicing/creditnote/change_form.html"
    fieldsets = (
        ("Credit note", {"fields": ("number", "lago_id", "invoice_link", "customer_link",
                                    "issuing_date", "reason", "description", "credit_tag",
                                    "refund_tag", "automatic", "pdf_link")}),
        ("Amounts", {"fields": ("items_total", "coupons_adjustment", "sub_total", "taxes",
                                "total", "credit_amount", "refund_amount", "offset_amount",
                                "remaining")}),
        ("Metadata", {"fields": ("metadata",), "classes": ("collapse",)}),
    )  # fmt: skip
    readonly_fields = (
        "number", "lago_id", "invoice_link", "customer_link", "issuing_date", "reason",
        "description", "credit_tag", "refund_tag", "automatic", "pdf_link", "items_total",
        "coupons_adjustment", "sub_total", "taxes", "total", "credit_amount", "refund_amount",
        "offset_amount", "remaining", "metadata",
    )  # fmt: skip

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # issued from an invoice ("Issue credit note") or by the API

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False  # read only page; the buttons are the writes

    def can_operate(self, request: HttpRequest) -> bool:
        return request.user.has_perm("invoicing.change_invoice")

    def search_result_detail(self, note: CreditNote) -> str:
        """The line under a credit note in the header search's results."""
        total = format_money(note.total_amount_cents, note.currency)
        return f"{note.invoice.number} · {total} · {note.issuing_date.isoformat()}"

    # --- columns ------------------------------------------------------------------------------

    @admin.display(description="Issued", ordering="issuing_date")
    def issued(self, note: CreditNote) -> str:
        return note.issuing_date.isoformat()

    @admin.display(description="Lago ID")
    def lago_id(self, note: CreditNote) -> str:
        return note.lago_id

    @admin.display(description="Customer", ordering="customer__name")
    def customer_link(self, note: CreditNote) -> str:
        url = reverse("admin:customers_customer_change", args=[note.customer_id])
        return format_html(
            '<a href="{}">{}</a>', url, note.customer.name or note.customer.external_id
        )

    @admin.display(description="Invoice", ordering="invoice__number")
    def invoice_link(self, note: CreditNote) -> str:
        url = reverse("admin:invoicing_invoice_change", args=[note.invoice_id])
        return format_html('<a href="{}">{}</a>', url, note.invoice.number)

    @admin.display(description="Credit", ordering="credit_status")
    def credit_tag(self, note: CreditNote) -> str:
        return _status_tag(note.credit_status, note.get_credit_status_display())

    @admin.display(description="Refund", ordering="refund_status")
    def refund_tag(self, note: CreditNote) -> str:
        return _status_tag(note.refund_status, note.get_refund_status_display())

    def _amount(field: str, description: str) -> Callable[[CreditNoteAdmin, CreditNote], str]:
        @admin.display(description=description, ordering=field)
        def display(self: CreditNoteAdmin, note: CreditNote) -> str:
            return money_html(getattr(note, field), note.currency)

        return display

    total = _amount("total_amount_cents", "Total")
    remaining = _amount("balance_amount_cents", "Credit left")
    coupons_adjustment = _amount("coupons_adjustment_amount_cents", "Discounts already granted")
    sub_total = _amount("sub_total_excluding_taxes_amount_cents", "Subtotal excl. tax")
    taxes = _amount("taxes_amount_cents", "Taxes")
    credit_amount = _amount("credit_amount_cents", "Credited to the balance")
    refund_amount = _amount("refund_amount_cents", "Refunded")
    offset_amount = _amount("offset_amount_cents", "Deducted from the invoice")

    @admin.display(description="Items (excl. tax)")
    def items_total(self, note: CreditNote) -> str:
        return money_html(sum(item.amount_cents for item in note.items.all()), note.currency)

    @admin.display(description="PDF")
    def pdf_link(self, note: CreditNote) -> str:
        url = reverse("admin:invoicing_creditnote_pdf", args=[note.pk])
        return format_html('<a class="button" href="{}">{}</a>', url, "Download PDF")

    # --- pages --------------------------------------------------------------------------------

    def get_urls(self) -> list:
        view = self.admin_site.admin_view
        return [
            path(
                "issue/<uuid:invoice_id>/", view(self.issue_view), name="invoicing_creditnote_issue"
            ),
            path(
                "issue/<uuid:invoice_id>/estimate/",
                view(self.estimate_view),
                name="invoicing_creditnote_estimate",
            ),
            path("<uuid:object_id>/pdf/", view(self.pdf_view), name="invoicing_creditnote_pdf"),
            path(
                "<uuid:object_id>/operate/<str:operation>/",
                view(self.operate_view),
                name="invoicing_creditnote_operate",
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
        obj: CreditNote | None = None,
    ) -> HttpResponse:
        if obj is not None and self.can_operate(request):
            ops = []
            if obj.credit_status == CreditNote.CreditStatus.AVAILABLE and obj.balance_amount_cents:
                ops.append(("void", "Void remaining credit"))
            if obj.refund_amount_cents and obj.refund_status != CreditNote.RefundStatus.SUCCEEDED:
                ops.append(("refund_succeeded", "Mark refund succeeded"))
            if obj.refund_amount_cents and obj.refund_status == CreditNote.RefundStatus.PENDING:
                ops.append(("refund_failed", "Mark refund failed"))
            context["operations"] = [
                (name, label, reverse("admin:invoicing_creditnote_operate", args=[obj.pk, name]))
                for name, label in ops
            ]
            context["credit_note"] = obj
            context["original_total"] = format_money(obj.total_amount_cents, obj.currency)
        return super().render_change_form(request, context, add, change, form_url, obj)

    def operate_view(self, request: HttpRequest, object_id: str, operation: str) -> HttpResponse:
        if request.method != "POST" or not self.can_operate(request):
            raise PermissionDenied
        # only where the role held in the note's organization may change credit notes
        notes = self.get_queryset(request)
        if not request.user.is_superuser:
            notes = notes.filter(
                organization__in=staff_organizations(request, CreditNote, "change")
            )
        note = get_object_or_404(notes, pk=object_id)
        actor, now = Actor.from_request(request), timezone.now()
        try:
            match operation:
                case "void":
                    credit_note_void(credit_note=note, actor=actor, now=now)
                    done = "Remaining credit voided."
                case "refund_succeeded" | "refund_failed":
                    status = operation.removeprefix("refund_")
                    credit_note_update(credit_note=note, actor=actor, now=now, refund_status=status)
                    done = f"Refund marked {status}."
                case _:
                    raise PermissionDenied
        except DomainError as exc:
            self.message_user(request, f"{note}: {describe(exc)}", messages.WARNING)
        else:
            self.log_change(request, note, done)
            self.message_user(request, done, messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:invoicing_creditnote_change", args=[note.pk]))

    def pdf_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        note = get_object_or_404(self.get_queryset(request), pk=object_id)
        note = credit_note_pdf_ensure(credit_note=note, actor=Actor.from_request(request))
        return FileResponse(
            note.file.open("rb"), content_type="application/pdf", filename=f"{note.number}.pdf"
        )

    @admin.action(description="Void the remaining credit of selected credit notes")
    def void_remaining(self, request: HttpRequest, queryset: QuerySet) -> None:
        report, now = ActionReport(self, request, "voided"), timezone.now()
        for note in queryset:
            report.attempt(note, credit_note_void, credit_note=note, actor=report.actor, now=now)
        report.send()

    # --- "Issue credit note" ------------------------------------------------------------------

    def _invoice(self, request: HttpRequest, invoice_id: str) -> Invoice:
        invoices = Invoice.objects.select_related("customer", "billing_entity")
        if not request.user.is_superuser:  # where the role held may change invoices
            invoices = invoices.filter(
                organization__in=staff_organizations(request, Invoice, "change")
            )
        return get_object_or_404(invoices, pk=invoice_id)

    @staticmethod
    def _items(invoice: Invoice, data: dict) -> list[ItemInput]:
        items = []
        for fee in invoice.fees.filter(deleted_at__isnull=True):
            raw = (data.get(f"fee_{fee.pk}") or "").strip()
            if not raw:
                continue
            try:
                amount = Decimal(raw.replace(",", "."))
            except InvalidOperation:
                continue
            # the form takes major units; items are minor units
            items.append(ItemInput(str(fee.pk), (amount * 10 ** _exponent(invoice)).normalize()))
        return items

    def estimate_view(self, request: HttpRequest, invoice_id: str) -> JsonResponse:
        """The live estimate of the form: the API's estimate service on the typed amounts."""
        invoice = self._invoice(request, invoice_id)
        data = json.loads(request.body or b"{}") if request.method == "POST" else request.GET
        items = self._items(invoice, data)
        if not items:
            return JsonResponse({"ok": False, "error": "Enter an amount to credit on a fee."})
        try:
            estimate = credit_note_estimate(invoice=invoice, items=items)
        except DomainError as exc:
            return JsonResponse({"ok": False, "error": describe(exc)})
        money = lambda cents: format_money(cents, invoice.currency)  # noqa: E731
        amounts = estimate.amounts
        return JsonResponse(
            {
                "ok": True,
                "coupons_adjustment": money(amounts.coupons_adjustment_amount_cents),
                "sub_total": money(amounts.sub_total_excluding_taxes_amount_cents),
                "taxes": money(amounts.taxes_amount_cents),
                "total": money(amounts.total_amount_cents),
                "total_major": str(to_major(amounts.total_amount_cents, invoice.currency)),
                "max_credit": money(estimate.max_creditable_amount_cents),
                "max_refund": money(estimate.max_refundable_amount_cents),
                "max_offset": money(estimate.max_offsettable_amount_cents),
            }
        )

    def issue_view(self, request: HttpRequest, invoice_id: str) -> HttpResponse:
        if not self.can_operate(request):
            raise PermissionDenied
        invoice = self._invoice(request, invoice_id)
        fees = list(invoice.fees.filter(deleted_at__isnull=True).order_by("created_at", "id"))
        error = None
        if request.method == "POST":
            data = request.POST
            try:
                note = credit_note_create(
                    invoice=invoice,
                    actor=Actor.from_request(request),
                    now=timezone.now(),
                    items=self._items(invoice, data),
                    reason=data.get("reason") or None,
                    description=data.get("description") or "",
                    credit_amount_cents=_cents(data.get("credit_amount"), invoice),
                    refund_amount_cents=_cents(data.get("refund_amount"), invoice),
                    offset_amount_cents=_cents(data.get("offset_amount"), invoice),
                )
            except DomainError as exc:
                error = describe(exc)
            else:
                self.log_addition(request, note, "issued from the invoice page")
                self.message_user(request, f"Credit note {note.number} issued.", messages.SUCCESS)
                return HttpResponseRedirect(
                    reverse("admin:invoicing_creditnote_change", args=[note.pk])
                )
        context = {
            **self.admin_site.each_context(request),
            "title": f"Issue a credit note on {invoice.number}",
            "opts": self.model._meta,
            "invoice": invoice,
            "error": error,
            "data": request.POST if request.method == "POST" else {},
            "fees": [
                {
                    "id": str(fee.pk),
                    "name": fee_display_name(fee),
                    "amount": format_money(fee.amount_cents, invoice.currency),
                    "taxes": f"{fee.taxes_rate.normalize():f} %" if fee.taxes_rate else "—",
                }
                for fee in fees
            ],
            "creditable": format_money(invoice_creditable_amount_cents(invoice), invoice.currency),
            "reasons": CreditNote.Reason.choices,
            "estimate_url": reverse("admin:invoicing_creditnote_estimate", args=[invoice.pk]),
            "invoice_url": reverse("admin:invoicing_invoice_change", args=[invoice.pk]),
        }
        return TemplateResponse(request, "admin/invoicing/creditnote/issue.html", context)


def _exponent(invoice: Invoice) -> int:
    return exponent(invoice.currency)


def _cents(raw: str | None, invoice: Invoice) -> int:
    """A form amount in major units -> minor units (blank: 0; unreadable: 0, refused later)."""
    try:
        value = Decimal((raw or "0").strip().replace(",", ".") or "0")
    except InvalidOperation:
        return -1  # the service answers "invalid value"
    return round_cents(value.scaleb(_exponent(invoice)))
