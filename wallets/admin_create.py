"""A new wallet from the admin: the same `wallet_create` as `POST /wallets`, with its first top-up
(paid and granted credits), an expiration and an optional recurring top-up rule (spec §17.1,
§17.6). Its later top-ups and grants are the wallet page's buttons."""

from __future__ import annotations

from datetime import UTC, datetime, time
from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
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
from billing.money import CURRENCIES
from customers.models import Customer
from customers.presenters import customer_label, customer_name, customers_to_add
from wallets.models import RecurringTransactionRule, Wallet
from wallets.presenters import credits_text, wallet_url

Rule = RecurringTransactionRule
NO_RULE = ""
# service field -> form field, for refusals shown next to their field
SERVICE_FIELDS = {
    "name": "name",
    "currency": "currency",
    "rate_amount": "rate_amount",
    "paid_credits": "paid_credits",
    "granted_credits": "granted_credits",
    "expiration_at": "expiration_date",
    "recurring_transaction_rules": "rule_trigger",
    "code": "name",
}


class WalletCreateForm(ThemedFormMixin, forms.Form):
    """A wallet of one customer and its first top-up."""

    name = forms.CharField(label="Name", max_length=255, required=False)
    currency = forms.ChoiceField(label="Currency")
    rate_amount = forms.DecimalField(
        label="Value of one credit", min_value=Decimal("0.00001"), initial=Decimal(1),
        decimal_places=5, help_text="In the wallet's currency, e.g. 1.00",
    )  # fmt: skip
    paid_credits = forms.DecimalField(
        label="Paid credits", min_value=Decimal(0), decimal_places=5, required=False,
        help_text="Bought now: an invoice for their value is issued.",
    )  # fmt: skip
    granted_credits = forms.DecimalField(
        label="Granted credits", min_value=Decimal(0), decimal_places=5, required=False,
        help_text="Offered now, free of charge.",
    )  # fmt: skip
    invoice_requires_successful_payment = forms.BooleanField(
        label="Credit paid credits only once their invoice is paid", required=False
    )
    expiration_date = forms.DateField(
        label="Expires on", required=False, widget=forms.DateInput(attrs={"type": "date"}),
        help_text="The remaining credits are voided at the start of this day (UTC).",
    )  # fmt: skip
    rule_trigger = forms.ChoiceField(
        label="Recurring top-up",
        choices=[(NO_RULE, "None"), *Rule.Trigger.choices],
        required=False,
        widget=forms.RadioSelect,
        initial=NO_RULE,
    )
    rule_interval = forms.ChoiceField(
        label="Every", choices=[("", "—"), *Rule.Interval.choices], required=False
    )
    rule_threshold_credits = forms.DecimalField(
        label="When ongoing credits fall to", min_value=Decimal(0), decimal_places=5,
        required=False,
    )  # fmt: skip
    rule_paid_credits = forms.DecimalField(
        label="Paid credits each time", min_value=Decimal(0), decimal_places=5, required=False
    )
    rule_granted_credits = forms.DecimalField(
        label="Granted credits each time", min_value=Decimal(0), decimal_places=5, required=False
    )

    SECTIONS = (
        (None, ("name", "currency", "rate_amount", "expiration_date")),
        ("First top-up", ("paid_credits", "granted_credits",
                          "invoice_requires_successful_payment")),
        ("Recurring top-up rule", ("rule_trigger", "rule_interval", "rule_threshold_credits",
                                   "rule_paid_credits", "rule_granted_credits")),
    )  # fmt: skip

    def __init__(self, *args: object, customer: Customer, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.customer = customer
        currency = self.fields["currency"]
        if customer.currency:
            currency.choices = [(customer.currency, customer.currency)]
            currency.help_text = "The customer's currency."
        else:
            currency.choices = [(c, c) for c in sorted(CURRENCIES)]
            currency.initial = customer.organization.default_currency
            currency.help_text = "The customer has none yet: this one becomes it."

    def sections(self) -> list[tuple[str | None, list[forms.BoundField]]]:
        return [(title, [self[name] for name in names]) for title, names in self.SECTIONS]

    def clean(self) -> dict:
        data = super().clean()
        trigger = data.get("rule_trigger")
        if trigger == Rule.Trigger.INTERVAL and not data.get("rule_interval"):
            self.add_error("rule_interval", "Choose how often credits are topped up.")
        if trigger == Rule.Trigger.THRESHOLD and data.get("rule_threshold_credits") is None:
            self.add_error("rule_threshold_credits", "Enter the balance that triggers a top-up.")
        if trigger and not (data.get("rule_paid_credits") or data.get("rule_granted_credits")):
            self.add_error("rule_paid_credits", "Enter the paid or granted credits of each top-up.")
        return data

    def service_values(self) -> dict:
        """The `wallet` object of POST /wallets."""
        data = self.cleaned_data
        values: dict = {
            "name": data.get("name") or None,
            "currency": data["currency"],
            "rate_amount": str(data["rate_amount"]),
            "invoice_requires_successful_payment": data["invoice_requires_successful_payment"],
        }
        for field in ("paid_credits", "granted_credits"):
            if data.get(field) is not None:
                values[field] = str(data[field])
        if data.get("expiration_date"):
            values["expiration_at"] = datetime.combine(data["expiration_date"], time.min, UTC)
        trigger = data.get("rule_trigger")
        if trigger:
            rule = {
                "trigger": trigger,
                "method": Rule.Method.FIXED.value,
                "paid_credits": str(data.get("rule_paid_credits") or 0),
                "granted_credits": str(data.get("rule_granted_credits") or 0),
            }
            if trigger == Rule.Trigger.INTERVAL:
                rule["interval"] = data["rule_interval"]
            else:
                rule["threshold_credits"] = str(data["rule_threshold_credits"])
            values["recurring_transaction_rules"] = [rule]
        return values


def wallet_create_view(model_admin: admin.ModelAdmin, request: HttpRequest) -> HttpResponse:
    """ "New wallet": the customer first (unless given), then the wallet and its first top-up."""
    context = add_page_context(
        model_admin, request, title="New wallet", page_id="new-wallet", crumb="Wallets"
    )
    customer = pick_first(
        request,
        rows=customers_to_add(request, Wallet),
        model=Wallet,
        label="Customer",
        intro="Whose wallet is it?",
        describe=customer_label,
        context=context,
    )
    if isinstance(customer, HttpResponse):
        return customer

    form = WalletCreateForm(request.POST or None, customer=customer)
    if request.method == "POST" and form.is_valid():
        from wallets.services.wallets import wallet_create

        try:
            wallet = wallet_create(
                customer=customer,
                values=form.service_values(),
                actor=Actor.from_request(request),
                now=timezone.now(),
            )
        except DomainError as exc:
            show_domain_error(form, exc, SERVICE_FIELDS)
        else:
            model_admin.log_addition(request, wallet, "Created via admin")
            model_admin.message_user(
                request,
                f"Wallet {wallet} created for {customer_name(customer)}: "
                f"{credits_text(wallet.credits_balance)} credits available.",
                messages.SUCCESS,
            )
            return HttpResponseRedirect(wallet_url(wallet))
    customer_url = admin_change_url(customer)
    context.update(
        title=f"New wallet for {customer_name(customer)}",
        intro="Prepaid credits the customer's invoices use. Paid credits are invoiced now; "
        "granted ones are free.",
        form=form,
        sections=form.sections(),
        crumbs=[*context["crumbs"], (customer_name(customer), customer_url)],
        cancel_url=customer_url,
        facts=[("Customer", f"{customer_name(customer)} ({customer.external_id})")],
        buttons=[("_save", "Create wallet", True)],
    )
    return TemplateResponse(request, "admin/service_form.html", context)
