"""Payments in the finance dashboard: the payments list (with the totals of the filtered rows),
receipts, payment requests, the "Record payment" form of invoices and payment requests, and
dunning campaigns with their thresholds, defaults and customer assignments.

Every write is a service call (`invoicing.services.payment_settlement`, `.dunning`).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, QuerySet, Sum
from django.http import FileResponse, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from unfold.widgets import UnfoldAdminCheckboxSelectMultipleWidget

from billing.actors import Actor
from billing.admin_base import (
    DateRangeFilter,
    OrganizationAdmin,
    TabularInline,
    ThemedFormMixin,
    describe,
    money_html,
    staff_may,
    staff_organizations,
)
from billing.admin_export import StreamingExportMixin
from billing.admin_search import AmountSearchMixin
from billing.errors import DomainError
from billing.models import BillingEntity
from billing.money import exponent, format_money, to_major, to_minor
from invoicing.admin.exports import PaymentResource
from invoicing.models import (
    BillingEntityDunningCampaign,
    CustomerDunning,
    DunningCampaign,
    DunningCampaignThreshold,
    Invoice,
    Payment,
    PaymentReceipt,
    PaymentRequest,
)
from invoicing.payment_selectors import invoice_amount_due
from invoicing.presenters import tag
from invoicing.receipt_pdf import payment_receipt_pdf_store
from invoicing.services.dunning import (
    billing_entity_dunning_campaign_set,
    customer_dunning_update,
    dunning_campaign_create,
    dunning_campaign_delete,
    dunning_campaign_update,
)
from invoicing.services.payment_settlement import payment_create_manual

_STATUS_KIND = {"succeeded": "succeeded", "failed": "failed", "pending": "pending"}


def _link(obj: object, label: str) -> str:
    opts = obj._meta
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
    return format_html('<a href="{}">{}</a>', url, label)


# --- "Record payment" -----------------------------------------------------------------------


class RecordPaymentForm(ThemedFormMixin, forms.Form):
    """A payment received outside a provider: amount in major units, date, reference."""

    amount = forms.DecimalField(label="Amount", min_value=Decimal("0"), decimal_places=3)
    paid_on = forms.DateField(
        label="Paid on", widget=forms.DateInput(attrs={"type": "date"}), initial=dt.date.today
    )
    reference = forms.CharField(label="Reference", max_length=40, help_text="At most 40 characters")

    def __init__(self, *args: object, currency: str, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.currency = currency
        self.fields["amount"].help_text = f"In {currency}; a partial amount is allowed"

    def clean_amount(self) -> int:
        try:
            minor = to_minor(self.cleaned_data["amount"], self.currency)
        except (InvalidOperation, TypeError) as exc:
            raise forms.ValidationError("Enter an amount.") from exc
        if minor != minor.to_integral_value() or minor <= 0:
            raise forms.ValidationError(
                f"Enter a positive amount with at most {exponent(self.currency)} decimals."
            )
        return int(minor)


def _changeable(request: HttpRequest, queryset: QuerySet) -> QuerySet:
    """The rows of organizations where the staff member's role may change invoices (recording a
    payment is an invoice change), whatever it may see elsewhere."""
    if request.user.is_superuser:
        return queryset
    return queryset.filter(organization__in=staff_organizations(request, Invoice, "change"))


def record_payment_view(
    model_admin: admin.ModelAdmin,
    request: HttpRequest,
    payable: Invoice | PaymentRequest,
    *,
    due_cents: int,
    currency: str,
    back_url: str,
) -> HttpResponse:
    """The form, and on POST the manual payment service; errors come back on the form."""
    form = RecordPaymentForm(
        request.POST or None,
        currency=currency,
        initial={"amount": to_major(due_cents, currency), "paid_on": timezone.localdate()},
    )
    if request.method == "POST" and form.is_valid():
        paid_on = form.cleaned_data["paid_on"]
        try:
            payment = payment_create_manual(
                payable=payable,
                amount_cents=form.cleaned_data["amount"],
                reference=form.cleaned_data["reference"],
                paid_at=dt.datetime.combine(paid_on, dt.time(12), tzinfo=dt.UTC),
                actor=Actor.from_request(request),
                now=timezone.now(),
            )
        except DomainError as exc:
            form.add_error(None, describe(exc))
        else:
            model_admin.log_change(request, payable, "payment recorded via admin")
            model_admin.message_user(
                request,
                f"Payment of {format_money(payment.amount_cents, currency)} recorded.",
                messages.SUCCESS,
            )
            return HttpResponseRedirect(back_url)
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        "title": f"Record a payment — {payable}",
        "payable": payable,
        "due": format_money(due_cents, currency),
        "form": form,
        "back_url": back_url,
    }
    return TemplateResponse(request, "admin/invoicing/payment/record_payment.html", context)


def record_invoice_payment(
    model_admin: admin.ModelAdmin, request: HttpRequest, object_id: str
) -> HttpResponse:
    """`Record payment` on the invoice page."""
    if not model_admin.can_operate(request):
        raise PermissionDenied
    invoice = get_object_or_404(
        _changeable(request, model_admin.get_queryset(request)), pk=object_id
    )
    back = reverse("admin:invoicing_invoice_change", args=[invoice.pk])
    return record_payment_view(
        model_admin,
        request,
        invoice,
        due_cents=invoice_amount_due(invoice),
        currency=invoice.currency,
        back_url=back,
    )


class PaymentInline(TabularInline):
    """The invoice's payments, on the invoice page."""

    model = Payment
    fk_name = "invoice"
    extra = 0
    can_delete = False
    classes = ("inv-lines",)
    verbose_name_plural = "Payments"
    fields = ("paid", "kind", "reference_or_id", "state", "amount", "receipt")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("receipt")

    @admin.display(description="Paid at")
    def paid(self, payment: Payment) -> str:
        return payment.created_at.strftime("%Y-%m-%d %H:%M")

    @admin.display(description="Type")
    def kind(self, payment: Payment) -> str:
        return payment.get_payment_type_display()

    @admin.display(description="Reference")
    def reference_or_id(self, payment: Payment) -> str:
        return payment.reference or payment.provider_payment_id or "—"

    @admin.display(description="Status")
    def state(self, payment: Payment) -> str:
        status = payment.payable_payment_status
        return tag(payment.get_payable_payment_status_display(), _STATUS_KIND.get(status, ""))

    @admin.display(description="Amount")
    def amount(self, payment: Payment) -> str:
        return money_html(payment.amount_cents, payment.amount_currency)

    @admin.display(description="Receipt")
    def receipt(self, payment: Payment) -> str:
        receipt = getattr(payment, "receipt", None)
        return _link(receipt, receipt.number) if receipt else "—"


# --- payments list --------------------------------------------------------------------------


@admin.register(Payment)
class PaymentAdmin(AmountSearchMixin, StreamingExportMixin, OrganizationAdmin):
    search_amount_fields = ("amount_cents",)
    search_amount_currency = "amount_currency"
    resource_classes = (PaymentResource,)
    export_name = "payments"
    list_display = ("paid_at", "customer_link", "payable", "payment_type", "state",
                    "reference_or_id", "amount")  # fmt: skip
    list_filter = ("payable_payment_status", "payment_type", "amount_currency",
                   ("created_at", DateRangeFilter), "payment_provider_code")  # fmt: skip
    search_fields = ("reference", "provider_payment_id", "customer__external_id",
                     "customer__name", "invoice__number")  # fmt: skip
    list_select_related = ("customer", "invoice", "payment_request", "receipt")
    date_hierarchy = "created_at"
    ordering = ("-created_at", "-id")
    list_per_page = 50
    change_list_template = "admin/invoicing/payment/change_list.html"
    readonly_fields = ("lago_id", "customer_link", "payable", "payment_type", "state", "status",
                       "amount", "reference", "payment_provider_code", "payment_provider_type",
                       "provider_payment_id", "provider_customer_id", "error_code", "paid_at",
                       "receipt_link")  # fmt: skip
    fields = readonly_fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # recorded from the invoice or payment request page

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def search_result_detail(self, payment: Payment) -> str:
        """The line under a payment in the header search's results."""
        amount = format_money(payment.amount_cents, payment.amount_currency)
        return f"{amount} · {payment.created_at.strftime('%Y-%m-%d %H:%M')}"

    @admin.display(description="Lago ID")
    def lago_id(self, payment: Payment) -> str:
        return payment.lago_id

    @admin.display(description="Paid at", ordering="created_at")
    def paid_at(self, payment: Payment) -> str:
        return payment.created_at.strftime("%Y-%m-%d %H:%M")

    @admin.display(description="Customer", ordering="customer__name")
    def customer_link(self, payment: Payment) -> str:
        customer = payment.customer
        return _link(customer, customer.name or customer.external_id)

    @admin.display(description="Pays")
    def payable(self, payment: Payment) -> str:
        if payment.invoice_id:
            return _link(payment.invoice, payment.invoice.number or "Invoice")
        return _link(payment.payment_request, str(payment.payment_request))

    @admin.display(description="Status", ordering="payable_payment_status")
    def state(self, payment: Payment) -> str:
        status = payment.payable_payment_status
        return tag(payment.get_payable_payment_status_display(), _STATUS_KIND.get(status, ""))

    @admin.display(description="Reference")
    def reference_or_id(self, payment: Payment) -> str:
        return payment.reference or payment.provider_payment_id or "—"

    @admin.display(description="Amount", ordering="amount_cents")
    def amount(self, payment: Payment) -> str:
        return money_html(payment.amount_cents, payment.amount_currency)

    @admin.display(description="Receipt")
    def receipt_link(self, payment: Payment) -> str:
        receipt = getattr(payment, "receipt", None)
        return _link(receipt, receipt.number) if receipt else "—"

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None):
        response = super().changelist_view(request, extra_context)
        changelist = getattr(response, "context_data", {}).get("cl")
        if changelist is not None:
            rows = (
                changelist.queryset.order_by()
                .values("amount_currency")
                .annotate(total=Sum("amount_cents"), count=Count("id"))
                .order_by("amount_currency")
            )
            response.context_data["payment_totals"] = [
                {
                    "currency": row["amount_currency"],
                    "total": format_money(row["total"], row["amount_currency"]),
                    "count": row["count"],
                }
                for row in rows
            ]
        return response


@admin.register(PaymentReceipt)
class PaymentReceiptAdmin(OrganizationAdmin):
    list_display = ("number", "customer", "payment_link", "amount", "created_at", "pdf")
    search_fields = ("number", "payment__customer__external_id", "payment__customer__name")
    list_select_related = ("payment__customer",)
    ordering = ("-created_at", "-id")
    readonly_fields = ("number", "customer", "payment_link", "amount", "created_at", "pdf")
    fields = readonly_fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    @admin.display(description="Customer")
    def customer(self, receipt: PaymentReceipt) -> str:
        return receipt.payment.customer.name or receipt.payment.customer.external_id

    @admin.display(description="Payment")
    def payment_link(self, receipt: PaymentReceipt) -> str:
        payment = receipt.payment
        return _link(payment, payment.reference or payment.provider_payment_id or "payment")

    @admin.display(description="Amount")
    def amount(self, receipt: PaymentReceipt) -> str:
        return money_html(receipt.payment.amount_cents, receipt.payment.amount_currency)

    @admin.display(description="PDF")
    def pdf(self, receipt: PaymentReceipt) -> str:
        url = reverse("admin:invoicing_paymentreceipt_pdf", args=[receipt.pk])
        return format_html('<a href="{}">Download PDF</a>', url)

    def get_urls(self) -> list:
        view = self.admin_site.admin_view
        return [
            path("<uuid:object_id>/pdf/", view(self.pdf_view), name="invoicing_paymentreceipt_pdf"),
            *super().get_urls(),
        ]

    def pdf_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        receipt = get_object_or_404(self.get_queryset(request), pk=object_id)
        if not receipt.file:
            receipt = payment_receipt_pdf_store(
                receipt_id=receipt.pk, actor=Actor.from_request(request)
            )
        return FileResponse(
            receipt.file.open("rb"),
            content_type="application/pdf",
            filename=f"{receipt.number}.pdf",
        )


# --- payment requests -----------------------------------------------------------------------


@admin.register(PaymentRequest)
class PaymentRequestAdmin(OrganizationAdmin):
    list_display = ("created", "customer_link", "state", "campaign", "invoice_count", "amount")
    list_filter = ("payment_status", "amount_currency", ("created_at", admin.DateFieldListFilter))
    search_fields = ("customer__external_id", "customer__name", "email")
    list_select_related = ("customer", "dunning_campaign")
    ordering = ("-created_at", "-id")
    change_form_template = "admin/invoicing/payment/payment_request_change_form.html"
    readonly_fields = ("lago_id", "customer_link", "email", "state", "campaign", "amount",
                       "invoices_list", "payments_list", "created_at")  # fmt: skip
    fields = readonly_fields

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).annotate(_invoices=Count("applied_invoices"))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # POST /payment_requests, or the dunning campaigns

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    @admin.display(description="Lago ID")
    def lago_id(self, request_row: PaymentRequest) -> str:
        return request_row.lago_id

    @admin.display(description="Created", ordering="created_at")
    def created(self, request_row: PaymentRequest) -> str:
        return request_row.created_at.strftime("%Y-%m-%d %H:%M")

    @admin.display(description="Customer", ordering="customer__name")
    def customer_link(self, request_row: PaymentRequest) -> str:
        customer = request_row.customer
        return _link(customer, customer.name or customer.external_id)

    @admin.display(description="Status", ordering="payment_status")
    def state(self, request_row: PaymentRequest) -> str:
        status = request_row.payment_status
        return tag(request_row.get_payment_status_display(), _STATUS_KIND.get(status, ""))

    @admin.display(description="Dunning campaign")
    def campaign(self, request_row: PaymentRequest) -> str:
        return request_row.dunning_campaign.name if request_row.dunning_campaign else "—"

    @admin.display(description="Invoices", ordering="_invoices")
    def invoice_count(self, request_row: PaymentRequest) -> int:
        return request_row._invoices

    @admin.display(description="Amount", ordering="amount_cents")
    def amount(self, request_row: PaymentRequest) -> str:
        return money_html(request_row.amount_cents, request_row.amount_currency)

    @admin.display(description="Invoices")
    def invoices_list(self, request_row: PaymentRequest) -> str:
        rows = [
            (
                reverse("admin:invoicing_invoice_change", args=[i.invoice_id]),
                i.invoice.number,
                format_money(i.invoice.total_amount_cents, i.invoice.currency),
            )
            for i in request_row.applied_invoices.select_related("invoice")
        ]
        return format_html_join(mark_safe("<br>"), '<a href="{}">{}</a> · {}', rows) or "—"

    @admin.display(description="Payments")
    def payments_list(self, request_row: PaymentRequest) -> str:
        rows = [
            (p.created_at.strftime("%Y-%m-%d"), p.reference or p.provider_payment_id or "",
             format_money(p.amount_cents, p.amount_currency), p.payable_payment_status)
            for p in request_row.payments.all()
        ]  # fmt: skip
        return format_html_join(mark_safe("<br>"), "{} · {} · {} ({})", rows) or "—"

    def get_urls(self) -> list:
        view = self.admin_site.admin_view
        return [
            path(
                "<uuid:object_id>/record_payment/",
                view(self.record_payment),
                name="invoicing_paymentrequest_record_payment",
            ),
            *super().get_urls(),
        ]

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        unpaid = obj is not None and obj.payment_status != PaymentRequest.PaymentStatus.SUCCEEDED
        if unpaid and staff_may(request, "change", Invoice, obj):  # the invoices' right
            context["record_payment_url"] = reverse(
                "admin:invoicing_paymentrequest_record_payment", args=[obj.pk]
            )
        return super().render_change_form(request, context, add, change, form_url, obj)

    def record_payment(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if not request.user.has_perm("invoicing.change_invoice"):
            raise PermissionDenied
        request_row = get_object_or_404(
            _changeable(request, self.get_queryset(request)), pk=object_id
        )
        due = sum(
            invoice_amount_due(applied.invoice)
            for applied in request_row.applied_invoices.select_related("invoice")
        )
        return record_payment_view(
            self,
            request,
            request_row,
            due_cents=due,
            currency=request_row.amount_currency,
            back_url=reverse("admin:invoicing_paymentrequest_change", args=[request_row.pk]),
        )


# --- dunning campaigns ----------------------------------------------------------------------


class ThresholdInline(TabularInline):
    model = DunningCampaignThreshold
    extra = 1
    fields = ("currency", "amount_cents")
    verbose_name = "threshold"
    verbose_name_plural = "Thresholds (one per currency, overdue balance in minor units)"


class DunningCampaignForm(forms.ModelForm):
    bcc_emails_text = forms.CharField(
        label="BCC e-mails",
        required=False,
        help_text="Comma-separated; copied on every reminder",
    )
    default_for = forms.ModelMultipleChoiceField(
        label="Default campaign of",
        queryset=BillingEntity.objects.none(),
        required=False,
        widget=UnfoldAdminCheckboxSelectMultipleWidget,
        help_text="Billing entities whose customers without a campaign of their own follow it",
    )

    class Meta:
        model = DunningCampaign
        fields = ("organization", "name", "code", "description", "max_attempts",
                  "days_between_attempts")  # fmt: skip


@admin.register(DunningCampaign)
class DunningCampaignAdmin(OrganizationAdmin):
    """The campaigns editor: every save goes through the dunning services."""

    form = DunningCampaignForm
    inlines = (ThresholdInline,)
    list_display = ("name", "code", "max_attempts", "days_between_attempts", "thresholds_text",
                    "defaults", "customers_count")  # fmt: skip
    search_fields = ("name", "code")
    fields = ("organization", "name", "code", "description", "max_attempts",
              "days_between_attempts", "bcc_emails_text", "default_for")  # fmt: skip

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return (
            super()
            .get_queryset(request)
            .filter(deleted_at__isnull=True)
            .prefetch_related("thresholds", "default_for__billing_entity")
        )

    def get_readonly_fields(self, request: HttpRequest, obj: object = None) -> tuple:
        return ("organization", "code") if obj is not None else ()

    def get_form(self, request: HttpRequest, obj: DunningCampaign | None = None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        entities = BillingEntity.objects.filter(organization__in=staff_organizations(request))
        if obj is not None:
            entities = entities.filter(organization_id=obj.organization_id)
        form.base_fields["default_for"].queryset = entities
        if obj is not None:
            form.base_fields["bcc_emails_text"].initial = ", ".join(obj.bcc_emails)
            form.base_fields["default_for"].initial = list(
                obj.default_for.values_list("billing_entity_id", flat=True)
            )
        return form

    @admin.display(description="Thresholds")
    def thresholds_text(self, campaign: DunningCampaign) -> str:
        return ", ".join(
            format_money(t.amount_cents, t.currency) for t in campaign.thresholds.all()
        )

    @admin.display(description="Default of")
    def defaults(self, campaign: DunningCampaign) -> str:
        return ", ".join(d.billing_entity.code for d in campaign.default_for.all()) or "—"

    @admin.display(description="Customers")
    def customers_count(self, campaign: DunningCampaign) -> int:
        return campaign.customers.count()

    # The model, its thresholds and the defaults are saved together by the services.
    def save_model(self, request, obj, form, change) -> None:
        self._pending = (obj, form)

    def save_related(self, request, form, formsets, change) -> None:
        obj, form = self._pending
        for formset in formsets:  # saved below by the service, not by the formset
            formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        thresholds = [
            {"currency": f.cleaned_data["currency"], "amount_cents": f.cleaned_data["amount_cents"]}
            for formset in formsets
            for f in formset.forms
            if f.cleaned_data and not f.cleaned_data.get("DELETE")
        ]
        emails = [
            e.strip()
            for e in (form.cleaned_data.get("bcc_emails_text") or "").split(",")
            if e.strip()
        ]
        actor, now = Actor.from_request(request), timezone.now()
        values = {
            "name": obj.name,
            "description": obj.description,
            "max_attempts": obj.max_attempts,
            "days_between_attempts": obj.days_between_attempts,
            "bcc_emails": emails,
        }
        if change:
            saved = dunning_campaign_update(
                campaign=obj, values=values, thresholds=thresholds, actor=actor, now=now
            )
        else:
            saved = dunning_campaign_create(
                organization=obj.organization, code=obj.code, thresholds=thresholds, actor=actor,
                now=now, **values,
            )  # fmt: skip
        # the admin redirects to and logs the object it built: it is the row the service saved
        obj.id, obj.created_at, obj.updated_at = saved.id, saved.created_at, saved.updated_at
        chosen = set(form.cleaned_data.get("default_for") or [])
        for entity in BillingEntity.objects.filter(organization_id=saved.organization_id):
            current = BillingEntityDunningCampaign.objects.filter(billing_entity=entity).first()
            follows = current is not None and current.dunning_campaign_id == saved.pk
            if entity in chosen and not follows:
                billing_entity_dunning_campaign_set(
                    billing_entity=entity, campaign=saved, actor=actor, now=now
                )
            elif entity not in chosen and follows:
                billing_entity_dunning_campaign_set(
                    billing_entity=entity, campaign=None, actor=actor, now=now
                )

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except DomainError as exc:
            self.message_user(request, f"Not saved: {describe(exc)}", messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def delete_model(self, request: HttpRequest, obj: DunningCampaign) -> None:
        dunning_campaign_delete(campaign=obj, actor=Actor.from_request(request), now=timezone.now())

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for campaign in queryset:
            self.delete_model(request, campaign)


class CustomerDunningForm(forms.ModelForm):
    class Meta:
        model = CustomerDunning
        fields = ("applied_dunning_campaign", "exclude_from_dunning_campaign")


@admin.register(CustomerDunning)
class CustomerDunningAdmin(OrganizationAdmin):
    """A customer's campaign (or opt-out) and its attempts per currency."""

    form = CustomerDunningForm
    list_display = ("customer", "applied_dunning_campaign", "exclude_from_dunning_campaign",
                    "currency_attempts", "last_attempt_at")  # fmt: skip
    list_filter = ("exclude_from_dunning_campaign", "applied_dunning_campaign")
    search_fields = ("customer__external_id", "customer__name")
    list_select_related = ("customer", "applied_dunning_campaign")
    readonly_fields = ("customer", "currency_attempts", "last_attempt_at")
    fields = ("customer", "applied_dunning_campaign", "exclude_from_dunning_campaign",
              "currency_attempts", "last_attempt_at")  # fmt: skip

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # created from the customer page

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "applied_dunning_campaign":
            kwargs["queryset"] = DunningCampaign.objects.filter(
                organization__in=staff_organizations(request), deleted_at__isnull=True
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request, obj, form, change) -> None:
        customer_dunning_update(
            customer=obj.customer,
            applied_dunning_campaign=form.cleaned_data["applied_dunning_campaign"],
            exclude_from_dunning_campaign=form.cleaned_data["exclude_from_dunning_campaign"],
            actor=Actor.from_request(request),
            now=timezone.now(),
        )

    def get_urls(self) -> list:
        view = self.admin_site.admin_view
        return [
            path(
                "for-customer/<uuid:customer_id>/",
                view(self.for_customer),
                name="invoicing_customerdunning_for_customer",
            ),
            *super().get_urls(),
        ]

    def for_customer(self, request: HttpRequest, customer_id: str) -> HttpResponse:
        """Opens the dunning settings of a customer, creating them on first use."""
        from customers.models import Customer

        # the settings row is created here: only where the role may change dunning settings
        organizations = staff_organizations(request, CustomerDunning, "change")
        customer = get_object_or_404(
            Customer.objects.filter(organization__in=organizations), pk=customer_id
        )
        state, _ = CustomerDunning.objects.get_or_create(
            customer=customer, defaults={"organization_id": customer.organization_id}
        )
        return HttpResponseRedirect(
            reverse("admin:invoicing_customerdunning_change", args=[state.pk])
        )
