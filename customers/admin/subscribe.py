"""Subscribe a customer to a plan from the admin: the same `subscription_create` as
`POST /subscriptions`, with the plan overrides the API accepts for the fee, the trial and the
prices of standard and package charges (a per-subscription child plan, spec §6.3)."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time
from decimal import Decimal
from zoneinfo import ZoneInfo

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
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
    theme_widgets,
)
from billing.errors import DomainError
from billing.money import CURRENCIES, exponent, format_money, to_major, to_minor
from customers.models import Customer, Subscription
from customers.presenters import customer_label, customer_name, customers_to_add
from customers.services.subscription_reads import (
    editable_subscription,
    subscription_plan_change_effect,
)
from customers.services.subscriptions import subscription_create
from plans.models import Charge, ChargeModel, Plan

# charge model -> the properties a person may price here, with their field type
PRICED_PROPERTIES = {
    ChargeModel.STANDARD: ("amount",),
    ChargeModel.PACKAGE: ("amount", "package_size", "free_units"),
}
PROPERTY_LABELS = {
    "amount": "price per unit",
    "package_size": "units per package",
    "free_units": "free units",
}
# service field -> form field, for refusals shown next to their field
SERVICE_FIELDS = {
    "plan": "plan",
    "currency": "plan",
    "external_id": "external_id",
    "billing_time": "billing_time",
    "amount_cents": "amount",
    "trial_period": "trial_period",
    "name": "name",
}


def plan_choices(customer: Customer) -> QuerySet[Plan]:
    """The catalog plans of the customer's organization (no per-subscription children)."""
    return (
        Plan.objects.for_organization(customer.organization)
        .alive()
        .filter(parent__isnull=True)
        .order_by("name", "code")
    )


class PlanChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, plan: Plan) -> str:
        price = format_money(plan.amount_cents, plan.amount_currency)
        return f"{plan.name} ({plan.code}) — {price} / {plan.get_interval_display().lower()}"


def _charge_field_name(charge: Charge, key: str) -> str:
    return f"charge_{charge.pk.hex}_{key}"


def _plain(value: Decimal) -> str:
    return f"{value.normalize():f}"


class SubscribeForm(ThemedFormMixin, forms.Form):
    """A new subscription of one customer; empty overrides keep the plan's prices."""

    plan = PlanChoiceField(queryset=Plan.objects.none())
    external_id = forms.CharField(
        label="External ID", max_length=255, help_text="The subscription's id in your systems."
    )
    name = forms.CharField(label="Name", max_length=255, required=False)
    subscription_date = forms.DateField(
        label="Start date",
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="Today starts it now; a later day leaves it pending until then.",
    )
    billing_time = forms.ChoiceField(
        label="Billing time",
        choices=Subscription.BillingTime.choices,
        initial=Subscription.BillingTime.CALENDAR,
        widget=forms.RadioSelect,
        help_text="Calendar: periods start on the 1st; anniversary: on the start date.",
    )
    amount = forms.DecimalField(
        label="Subscription fee", min_value=Decimal(0), required=False,
        help_text="Per billing period, in the plan's currency; empty: the plan's.",
    )  # fmt: skip
    trial_period = forms.DecimalField(
        label="Trial days", min_value=Decimal(0), decimal_places=5, required=False,
        help_text="Empty: the plan's.",
    )  # fmt: skip
    # the plan whose prices the form shows: another plan posted must be priced first
    priced_plan = forms.CharField(required=False, widget=forms.HiddenInput)
    # the running subscription whose plan change the person was shown and confirms
    confirm_change = forms.CharField(required=False, widget=forms.HiddenInput)

    SECTIONS = (
        (
            None,
            (
                "plan",
                "priced_plan",
                "confirm_change",
                "external_id",
                "name",
                "subscription_date",
                "billing_time",
            ),
        ),
        ("Plan overrides", ("amount", "trial_period")),
    )

    def __init__(self, *args: object, customer: Customer, now: datetime, **kwargs: object):
        super().__init__(*args, **kwargs)
        self.customer = customer
        self.zone = ZoneInfo(customer.applicable_timezone)
        self.today = now.astimezone(self.zone).date()
        self.fields["plan"].queryset = plan_choices(customer)
        self.fields["external_id"].initial = str(uuid.uuid4())
        self.fields["subscription_date"].initial = self.today
        self.plan = self._chosen_plan()
        self.charges: list[Charge] = []
        if self.plan is not None:
            self._add_plan_fields(self.plan)

    def _chosen_plan(self) -> Plan | None:
        chosen = self.data.get("plan") if self.is_bound else self.initial.get("plan")
        if not chosen:
            return None
        try:
            return self.fields["plan"].queryset.filter(pk=chosen).first()
        except (ValueError, ValidationError):  # a malformed id is no plan
            return None

    def _add_plan_fields(self, plan: Plan) -> None:
        currency = plan.amount_currency
        self.fields["amount"].help_text = f"Per billing period, in {currency}; plan: " + (
            format_money(plan.amount_cents, currency)
        )
        self.fields["trial_period"].help_text = f"Plan: {_plain(plan.trial_period)} days."
        if not self.is_bound:
            self.initial.setdefault("amount", to_major(plan.amount_cents, currency))
            self.initial.setdefault("trial_period", _plain(plan.trial_period))
        self.charges = list(
            Charge.objects.alive()
            .filter(plan=plan, charge_model__in=list(PRICED_PROPERTIES))
            .select_related("billable_metric")
            .order_by("created_at", "id")
        )
        for charge in self.charges:
            metric = charge.billable_metric
            for key in PRICED_PROPERTIES[charge.charge_model]:
                name = _charge_field_name(charge, key)
                if key == "amount":
                    field = forms.DecimalField(min_value=Decimal(0), required=False)
                elif key == "package_size":
                    field = forms.IntegerField(min_value=1, required=False)
                else:
                    field = forms.IntegerField(min_value=0, required=False)
                label = PROPERTY_LABELS[key]
                if key == "amount" and charge.charge_model == ChargeModel.PACKAGE:
                    label = "price per package"
                field.label = f"{metric.name}: {label}"
                current = (charge.properties or {}).get(key)
                field.help_text = f"Plan: {current}" + (f" {currency}" if key == "amount" else "")
                self.fields[name] = field
                if not self.is_bound and current is not None:
                    self.initial.setdefault(name, current)
        self.fields["priced_plan"].initial = str(plan.pk)
        theme_widgets(self.fields)

    def sections(self) -> list[tuple[str | None, list[forms.BoundField]]]:
        sections = [(title, [self[name] for name in names]) for title, names in self.SECTIONS]
        charge_fields = [self[name] for name in self.fields if name.startswith("charge_")]
        if charge_fields:
            sections.append(("Charge prices (empty: the plan's)", charge_fields))
        return sections

    def clean_external_id(self) -> str:
        external_id = self.cleaned_data["external_id"].strip()
        # this customer's running subscription with the id gets the plan (`existing`); another
        # customer's keeps it
        taken = (
            Subscription.objects.for_organization(self.customer.organization)
            .filter(external_id=external_id, status=Subscription.Status.ACTIVE)
            .exclude(customer=self.customer)
            .exists()
        )
        if taken:
            raise forms.ValidationError(
                "Already used by a running subscription of another customer."
            )
        return external_id

    def existing(self) -> Subscription | None:
        """The running subscription of the customer that subscribing with this external id
        moves to the chosen plan, as `POST /subscriptions` does (None: a new subscription)."""
        return editable_subscription(self.customer, self.cleaned_data["external_id"])

    def change_effect(self, existing: Subscription, now: datetime) -> tuple[str, date | None]:
        """What subscribing does to it: same, swap, upgrade or downgrade (with its day)."""
        overrides = self.plan_overrides() or {}
        return subscription_plan_change_effect(
            existing,
            plan=self.cleaned_data["plan"],
            now=now,
            amount_cents=overrides.get("amount_cents"),
        )

    @staticmethod
    def confirmation(existing: Subscription, kind: str) -> str:
        # the effect is part of it: a price edited since the notice may turn it around
        return f"{existing.pk}:{kind}"

    def change_notice(self, existing: Subscription, kind: str, day: date | None) -> str:
        """What subscribing does to the customer's running subscription with this external id."""
        plan: Plan = self.cleaned_data["plan"]
        current = existing.plan.parent or existing.plan
        if kind == "same":
            ignored = " The prices entered here are not applied." if self.plan_overrides() else ""
            return (
                f"“{existing.external_id}” is already on {current.name}: subscribing again "
                f"only changes its name.{ignored}"
            )
        head = (
            f"“{existing.external_id}” is already the {existing.get_status_display().lower()} "
            f"subscription of this customer on {current.name}: subscribing with it "
        )
        kept = " Its start date and billing time stay as they are."
        if kind == "swap":
            return head + f"replaces its plan by {plan.name} (it has not started yet)." + kept
        if kind == "upgrade":
            return (
                head + f"is an upgrade to {plan.name}: it is terminated and billed now, and a "
                f"subscription on {plan.name} with the same external id starts now." + kept
            )
        return (
            head + f"is a downgrade to {plan.name}: it goes on until the end of its billing "
            f"period, and {plan.name} starts on {day.isoformat() if day else 'its next period'}."
            + kept
        )

    def clean(self) -> dict:
        data = super().clean()
        plan = data.get("plan")
        if plan is not None and data.get("priced_plan") != str(plan.pk):
            self.add_error(
                "plan", "Load the prices of the plan you chose and check them, then subscribe."
            )
        amount = data.get("amount")
        if plan is not None and amount is not None:
            currency = plan.amount_currency
            if currency in CURRENCIES and -amount.as_tuple().exponent > exponent(currency):
                self.add_error("amount", f"Too many decimals for {currency}.")
        return data

    def plan_overrides(self) -> dict | None:
        """Lago's `plan_overrides`: only what differs from the plan."""
        data, plan = self.cleaned_data, self.plan
        overrides: dict = {}
        amount = data.get("amount")
        if amount is not None:
            cents = int(to_minor(amount, plan.amount_currency))
            if cents != plan.amount_cents:
                overrides["amount_cents"] = cents
        trial = data.get("trial_period")
        if trial is not None and trial != plan.trial_period:
            overrides["trial_period"] = trial
        charges = []
        for charge in self.charges:
            properties = dict(charge.properties or {})
            changed = False
            for key in PRICED_PROPERTIES[charge.charge_model]:
                value = data.get(_charge_field_name(charge, key))
                if value is None:
                    continue
                typed = _plain(value) if key == "amount" else value
                if str(properties.get(key)) != str(typed):
                    properties[key] = typed
                    changed = True
            if changed:
                charges.append({"id": str(charge.pk), "properties": properties})
        if charges:
            overrides["charges"] = charges
        return overrides or None

    def subscription_at(self, now: datetime) -> datetime:
        """Today: now; another day: its midnight in the customer's time zone."""
        day: date = self.cleaned_data["subscription_date"]
        if day == self.today:
            return now
        return datetime.combine(day, time.min, tzinfo=self.zone)


def subscribe_view(model_admin: admin.ModelAdmin, request: HttpRequest) -> HttpResponse:
    """ "New subscription": the customer first (unless given), then the plan and its terms."""
    context = add_page_context(
        model_admin, request, title="New subscription", page_id="subscribe", crumb="Subscriptions"
    )
    customer = pick_first(
        request,
        rows=customers_to_add(request, Subscription),
        model=Subscription,
        label="Customer",
        intro="Which customer subscribes?",
        describe=customer_label,
        context=context,
    )
    if isinstance(customer, HttpResponse):
        return customer

    now = timezone.now()
    refresh = request.method == "POST" and "_refresh" in request.POST
    if request.method == "POST" and not refresh:
        form = SubscribeForm(request.POST, customer=customer, now=now)
    else:
        initial = {k: v for k, v in request.POST.items() if not k.startswith("charge_")}
        for name in ("amount", "trial_period", "priced_plan", "confirm_change"):
            initial.pop(name, None)
        initial.setdefault("plan", request.GET.get("plan"))
        form = SubscribeForm(initial=initial, customer=customer, now=now)
    notice, submit = "", "Subscribe"
    if request.method == "POST" and not refresh and form.is_valid():
        existing = form.existing()
        effect = form.change_effect(existing, now) if existing is not None else None
        confirmation = form.confirmation(existing, effect[0]) if existing and effect else ""
        if confirmation and form.cleaned_data["confirm_change"] != confirmation:
            # the same external id changes that subscription's plan (spec §9.4): say how first
            notice = form.change_notice(existing, *effect)
            form.data = form.data.copy()
            form.data["confirm_change"] = confirmation
            submit = f"Change “{existing.external_id}”"
        else:
            response = _subscribe(model_admin, request, form, customer, existing, effect, now)
            if response is not None:
                return response
    customer_url = admin_change_url(customer)
    context.update(
        title=f"Subscribe {customer_name(customer)} to a plan",
        form=form,
        sections=form.sections(),
        refresh_on="plan",
        crumbs=[*context["crumbs"], (customer_name(customer), customer_url)],
        cancel_url=customer_url,
        facts=[
            ("Customer", f"{customer_name(customer)} ({customer.external_id})"),
            ("Currency", customer.currency or "set by this plan"),
            ("Time zone", customer.applicable_timezone),
        ],
        notice=notice,
        buttons=[("_refresh", "Load the plan's prices", False), ("_save", submit, True)],
    )
    return TemplateResponse(request, "admin/service_form.html", context)


def _subscribe(
    model_admin: admin.ModelAdmin,
    request: HttpRequest,
    form: SubscribeForm,
    customer: Customer,
    existing: Subscription | None,
    effect: tuple[str, date | None] | None,
    now: datetime,
) -> HttpResponse | None:
    """`POST /subscriptions` with the form's terms; None when the service refused (shown on
    the form)."""
    try:
        subscription = subscription_create(
            organization=customer.organization,
            external_customer_id=customer.external_id,
            plan_code=form.cleaned_data["plan"].code,
            external_id=form.cleaned_data["external_id"],
            # blank: a plan change keeps the name (the API's absent name)
            name=form.cleaned_data["name"] or None,
            billing_time=form.cleaned_data["billing_time"],
            subscription_at=form.subscription_at(now),
            plan_overrides=form.plan_overrides(),
            actor=Actor.from_request(request),
            now=now,
        )
    except DomainError as exc:
        show_domain_error(form, exc, SERVICE_FIELDS)
        return None
    plan_name = form.cleaned_data["plan"].name
    if existing is None or effect is None:
        model_admin.log_addition(request, subscription, "Subscribed via admin")
        state = subscription.get_status_display().lower()
        text = f"{customer_name(customer)} subscribed to {plan_name} ({state})."
    else:
        kind, day = effect
        model_admin.log_change(request, existing, f"Subscribe form with its external id: {kind}")
        text = {
            "same": f"“{existing.external_id}” stays on {plan_name}.",
            "swap": f"“{existing.external_id}” will start on {plan_name}.",
            "upgrade": f"“{existing.external_id}” upgraded to {plan_name}.",
            "downgrade": f"“{existing.external_id}” moves to {plan_name} on {day}.",
        }[kind]
    model_admin.message_user(request, text, messages.SUCCESS)
    changelist = reverse("admin:customers_subscription_changelist")
    return HttpResponseRedirect(admin_change_url(subscription) or changelist)
