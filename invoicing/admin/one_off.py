"""A one-off invoice of add-ons from the admin: the same `invoice_create_one_off` as
`POST /invoices`, with a preview of the totals (`invoice_one_off_estimate`) before confirming."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.forms import formset_factory
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone

from billing.actors import Actor
from billing.admin_base import (
    ThemedFormMixin,
    add_page_context,
    admin_change_url,
    pick_first,
    show_domain_error,
)
from billing.errors import DomainError
from billing.money import CURRENCIES, exponent, format_money, to_minor
from customers.models import Customer
from customers.presenters import customer_label, customer_name, customers_to_add
from invoicing.models import Invoice
from invoicing.services.one_off import OneOffFee, invoice_create_one_off, invoice_one_off_estimate
from plans.models import AddOn, Tax


class AddOnChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, add_on: AddOn) -> str:
        price = format_money(add_on.amount_cents, add_on.amount_currency)
        return f"{add_on.name} ({add_on.code}) — {price}"


class TaxChoiceField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, tax: Tax) -> str:
        return tax.name


class OneOffInvoiceForm(ThemedFormMixin, forms.Form):
    """The invoice: its currency (fixed once the customer has one)."""

    currency = forms.ChoiceField(label="Currency")

    def __init__(self, *args: object, customer: Customer, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        if customer.currency:
            self.fields["currency"].choices = [(customer.currency, customer.currency)]
            self.fields["currency"].help_text = "The customer's currency."
        else:
            self.fields["currency"].choices = [(c, c) for c in sorted(CURRENCIES)]
            self.fields["currency"].initial = customer.organization.default_currency
            self.fields["currency"].help_text = "The customer has none yet: this one becomes it."


class OneOffLineForm(ThemedFormMixin, forms.Form):
    """One add-on line (`invoice.fees[]`)."""

    add_on = AddOnChoiceField(queryset=AddOn.objects.none(), label="Add-on")
    units = forms.DecimalField(label="Units", min_value=Decimal(0), initial=Decimal(1))
    unit_amount = forms.DecimalField(
        label="Unit amount", min_value=Decimal(0), required=False,
        widget=forms.NumberInput(attrs={"placeholder": "add-on's", "step": "any"}),
    )  # fmt: skip
    description = forms.CharField(label="Description", required=False, max_length=255)
    taxes = TaxChoiceField(
        queryset=Tax.objects.none(), label="Taxes", required=False,
        widget=forms.CheckboxSelectMultiple,
    )  # fmt: skip

    def __init__(self, *args: object, customer: Customer, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        organization = customer.organization
        self.fields["add_on"].queryset = (
            AddOn.objects.for_organization(organization).alive().order_by("name", "code")
        )
        self.fields["taxes"].queryset = Tax.objects.filter(organization=organization).order_by(
            "name", "code"
        )

    def line(self, currency: str) -> OneOffFee | None:
        """The service's line, or None (with the error on the form) for a sub-cent amount."""
        data = self.cleaned_data
        unit_amount = data.get("unit_amount")
        cents = None
        if unit_amount is not None:
            if currency in CURRENCIES and -unit_amount.as_tuple().exponent > exponent(currency):
                self.add_error("unit_amount", f"Too many decimals for {currency}.")
                return None
            cents = int(to_minor(unit_amount, currency))
        taxes = data.get("taxes")
        return OneOffFee(
            add_on_code=data["add_on"].code,
            units=data["units"],
            unit_amount_cents=cents,
            description=data.get("description") or None,
            tax_codes=tuple(tax.code for tax in taxes) if taxes else None,
        )


class BaseLineFormSet(forms.BaseFormSet):
    def clean(self) -> None:
        super().clean()
        if any(self.errors):
            return
        if not any(form.cleaned_data for form in self.forms if form.has_changed()):
            raise forms.ValidationError("Add at least one add-on line.")


LineFormSet = formset_factory(OneOffLineForm, formset=BaseLineFormSet, extra=3, max_num=20)


def one_off_invoice_view(model_admin: admin.ModelAdmin, request: HttpRequest) -> HttpResponse:
    """ "New one-off invoice": the customer first (unless given), then add-on lines, a preview
    of the totals and the invoice."""
    context = add_page_context(
        model_admin,
        request,
        title="New one-off invoice",
        page_id="one-off-invoice",
        crumb="Invoices",
    )
    customer = pick_first(
        request,
        rows=customers_to_add(request, Invoice),
        model=Invoice,
        label="Customer",
        intro="Which customer is invoiced?",
        describe=customer_label,
        context=context,
    )
    if isinstance(customer, HttpResponse):
        return customer

    posted = request.method == "POST"
    form = OneOffInvoiceForm(request.POST if posted else None, customer=customer)
    lines = LineFormSet(
        request.POST if posted else None, prefix="line", form_kwargs={"customer": customer}
    )
    preview = None
    if posted and form.is_valid() and lines.is_valid():
        currency = form.cleaned_data["currency"]
        fees = [line.line(currency) for line in lines if line.has_changed() and line.cleaned_data]
        if all(fees):
            arguments = {
                "organization": customer.organization,
                "external_customer_id": customer.external_id,
                "currency": currency,
                "fees": fees,
            }
            try:
                if "_save" in request.POST:
                    invoice = invoice_create_one_off(
                        **arguments, actor=Actor.from_request(request), now=timezone.now()
                    )
                else:
                    totals = invoice_one_off_estimate(**arguments)
            except DomainError as exc:
                show_domain_error(form, exc, {"currency": "currency"})
            else:
                if "_save" in request.POST:
                    return _created(model_admin, request, invoice, customer)
                preview = [
                    ("Fees", format_money(totals.fees_amount_cents, currency)),
                    ("Taxes", format_money(totals.taxes_amount_cents, currency)),
                    ("Total", format_money(totals.total_amount_cents, currency)),
                ]
    customer_url = admin_change_url(customer)
    context.update(
        title=f"One-off invoice for {customer_name(customer)}",
        intro="Bills add-ons now: the invoice is finalized at once. Leave the unit amount empty "
        "for the add-on's price and the taxes empty for the usual ones (the add-on's, else the "
        "customer's, else the billing entity's).",
        form=form,
        sections=[(None, list(form))],
        formset=lines,
        formset_title="Add-ons",
        preview=preview,
        crumbs=[*context["crumbs"], (customer_name(customer), customer_url)],
        cancel_url=customer_url,
        facts=[("Customer", f"{customer_name(customer)} ({customer.external_id})")],
        buttons=[("_preview", "Preview total", False), ("_save", "Create invoice", True)],
    )
    return TemplateResponse(request, "admin/service_form.html", context)


def _created(
    model_admin: admin.ModelAdmin, request: HttpRequest, invoice: Invoice, customer: Customer
) -> HttpResponse:
    total = format_money(invoice.total_amount_cents, invoice.currency)
    if invoice.status == Invoice.Status.CLOSED:
        # a zero-amount invoice the settings skip: no number, not listed (as POST /invoices)
        model_admin.message_user(
            request, f"Nothing to bill ({total}): no invoice was issued.", messages.WARNING
        )
        return HttpResponseRedirect(admin_change_url(customer))
    model_admin.log_addition(request, invoice, "One-off invoice via admin")
    model_admin.message_user(
        request,
        f"Invoice {invoice.number} issued to {customer_name(customer)}: {total}.",
        messages.SUCCESS,
    )
    return HttpResponseRedirect(reverse("admin:invoicing_invoice_change", args=[invoice.pk]))
