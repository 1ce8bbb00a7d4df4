"""The invoice page's "Void": void only, or void and issue a credit note of a credit amount and a
refund amount (the rest of the creditable amount goes to a credit note voided at once), through
`invoice_void` as `POST /invoices/{id}/void` with `generate_credit_note` does."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone

from billing.actors import Actor
from billing.admin_base import describe
from billing.errors import DomainError
from billing.money import exponent, format_money, to_minor
from invoicing.services.credit_notes import (
    invoice_creditable_amount_cents,
    invoice_refundable_amount_cents,
)
from invoicing.services.void import invoice_void


class VoidForm(forms.Form):
    """Void only, or void with a credit note; amounts in major units of the invoice currency."""

    generate_credit_note = forms.TypedChoiceField(
        label="Credit note",
        choices=(("no", "Void only"), ("yes", "Void and issue a credit note")),
        coerce=lambda value: value == "yes",
        initial="no",
        widget=forms.RadioSelect,
    )
    credit_amount = forms.DecimalField(
        label="Credit amount", min_value=Decimal(0), required=False, initial=Decimal(0)
    )
    refund_amount = forms.DecimalField(
        label="Refund amount", min_value=Decimal(0), required=False, initial=Decimal(0)
    )

    def __init__(self, *args: object, currency: str, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.currency = currency
        self.fields[
            "credit_amount"
        ].help_text = f"In {currency}: credited to the customer's balance"
        self.fields["refund_amount"].help_text = f"In {currency}: paid back to the customer"

    def _cents(self, name: str) -> int:
        value = self.cleaned_data.get(name) or Decimal(0)
        try:
            minor = to_minor(value, self.currency)
        except (InvalidOperation, TypeError) as exc:
            raise forms.ValidationError("Enter an amount.") from exc
        if minor != minor.to_integral_value():
            raise forms.ValidationError(f"Enter at most {exponent(self.currency)} decimals.")
        return int(minor)

    def clean_credit_amount(self) -> int:
        return self._cents("credit_amount")

    def clean_refund_amount(self) -> int:
        return self._cents("refund_amount")


def void_invoice_view(
    model_admin: admin.ModelAdmin, request: HttpRequest, object_id: str
) -> HttpResponse:
    """The form, and on POST the void service; refusals come back on the form."""
    if not model_admin.can_operate(request):
        raise PermissionDenied
    invoice = get_object_or_404(model_admin.get_queryset(request), pk=object_id)
    back_url = reverse("admin:invoicing_invoice_change", args=[invoice.pk])
    currency = invoice.currency
    form = VoidForm(request.POST or None, currency=currency)
    if request.method == "POST" and form.is_valid():
        with_note = form.cleaned_data["generate_credit_note"]
        try:
            invoice_void(
                invoice=invoice,
                actor=Actor.from_request(request),
                now=timezone.now(),
                generate_credit_note=with_note,
                credit_amount_cents=form.cleaned_data["credit_amount"] if with_note else 0,
                refund_amount_cents=form.cleaned_data["refund_amount"] if with_note else 0,
            )
        except DomainError as exc:
            form.add_error(None, describe(exc))
        else:
            model_admin.log_change(request, invoice, "voided via admin")
            done = "Invoice voided with a credit note." if with_note else "Invoice voided."
            model_admin.message_user(request, done, messages.SUCCESS)
            return HttpResponseRedirect(back_url)
    creditable = invoice_creditable_amount_cents(invoice)
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        "title": f"Void invoice {invoice.number}",
        "invoice": invoice,
        "creditable": format_money(creditable, currency),
        "refundable": format_money(invoice_refundable_amount_cents(invoice, creditable), currency),
        "form": form,
        "back_url": back_url,
    }
    return TemplateResponse(request, "admin/invoicing/invoice/void.html", context)
