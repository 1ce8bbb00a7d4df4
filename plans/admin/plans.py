"""The plan editor for finance staff (spec §6-8, §21, §22).

A plan page edits the plan, its charges, fixed charges, usage thresholds and minimum commitment
in one form; a charge page edits one charge and its filters. Prices are typed in plain fields
(amount, package size, rate, a tier table of one line per tier), never raw JSON: the forms build
Lago's properties and validate them with `plans.charge_models.validate_properties`, the API's
own function, showing each code next to its field. A valid page is then saved through the same
services as the API (`plan_create` / `plan_update` / `charge_update`), in one transaction.
"""

from __future__ import annotations

import re
from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy as _

from billing.actors import Actor
from billing.admin_audit import ActivityTimelineMixin
from billing.admin_base import (
    OrganizationAdmin,
    StackedInline,
    TabularInline,
    staff_organizations,
)
from billing.errors import DomainError, Invalid
from billing.money import CURRENCIES, format_money, to_major, to_minor
from plans.admin.entitlements import plan_entitlements_view
from plans.admin.tiers import TierTableWidget
from plans.charge_models import validate_properties
from plans.entitlement_forms import entitlements_summary
from plans.models import (
    AddOn,
    BillableMetric,
    Charge,
    ChargeFilter,
    ChargeModel,
    FixedCharge,
    FixedChargeModel,
    MinimumCommitment,
    Plan,
    Tax,
    UsageThreshold,
)
from plans.services.charges import (
    ALL_FILTER_VALUES,
    charge_delete,
    charge_filter_errors,
    charge_update,
)
from plans.services.entitlements import plan_entitlement_list
from plans.services.plans import (
    LOCKED_FIELDS,
    plan_code_taken,
    plan_create,
    plan_delete,
    plan_field_errors,
    plan_has_subscriptions,
    plan_update,
)

# Lago's validation codes, as a finance user should read them.
MESSAGES = {
    "value_is_mandatory": _("This field is required."),
    "value_is_invalid": _("Invalid value."),
    "value_already_exist": _("Already used."),
    "value_is_out_of_range": _("Must be 0 or more."),
    "invalid_amount": _("Enter an amount of 0 or more, e.g. 0.05."),
    "invalid_package_size": _("Enter a whole number of units, at least 1."),
    "invalid_free_units": _("Enter a whole number of units, 0 or more."),
    "invalid_rate": _("Enter a percentage of 0 or more, e.g. 1.5."),
    "invalid_fixed_amount": _("Enter an amount of 0 or more."),
    "invalid_free_units_per_events": _("Enter a whole number of events, at least 1."),
    "invalid_free_units_per_total_aggregation": _("Enter an amount of 0 or more."),
    "per_transaction_max_lower_than_per_transaction_min": _(
        "The maximum per transaction cannot be lower than the minimum."
    ),
    "invalid_graduated_ranges": _(
        "Tiers must start at 0, follow each other without gaps (next tier starts at the "
        "previous end, or one above it) and end with an open tier (nothing after the dash)."
    ),
    "missing_graduated_ranges": _("Enter at least one tier."),
    "invalid_type": _("Enter property keys separated by commas."),
    "invalid_aggregation_type_or_charge_model": _(
        "Not possible with this billable metric's aggregation or with this charge model."
    ),
    "must_be_true_unless_pay_in_advance": _(
        "Only pay-in-advance charges can be left off invoices."
    ),
    "only_compatible_with_pay_in_advance_and_non_invoiceable": _(
        "Only for pay-in-advance charges that are not invoiceable."
    ),
    "not_compatible_with_pay_in_advance": _(
        "A spending minimum is not possible on a pay-in-advance charge."
    ),
    "invalid_billable_metric_or_charge_model": _(
        "Proration needs a recurring metric (not a weighted sum) and a standard, graduated or "
        "volume model (standard only when paid in advance)."
    ),
    "invalid_value": _("Percentage charges are not possible on a 'latest' aggregation."),
    "tax_not_found": _("Unknown tax."),
}
for _model in ("volume", "graduated_percentage"):
    MESSAGES[f"invalid_{_model}_ranges"] = MESSAGES["invalid_graduated_ranges"]
    MESSAGES[f"missing_{_model}_ranges"] = MESSAGES["missing_graduated_ranges"]

RANGE_KEYS = {
    ChargeModel.GRADUATED: "graduated_ranges",
    ChargeModel.VOLUME: "volume_ranges",
    ChargeModel.GRADUATED_PERCENTAGE: "graduated_percentage_ranges",
}
# validate_properties field -> form field
ERROR_FIELDS = {
    "graduated_ranges": "ranges",
    "volume_ranges": "ranges",
    "graduated_percentage_ranges": "ranges",
    "per_unit_amount": "ranges",
    "flat_amount": "ranges",
    "grouped_by": "pricing_group_keys",
    "min_amount_cents": "min_amount",
    "presentation_group_keys": None,
}
CURRENCY_CHOICES = [("", "—"), *((code, code) for code in sorted(CURRENCIES))]


def show_errors(form: forms.BaseForm, details: dict[str, list[str]], fields: dict) -> None:
    """Puts Lago codes next to the form field they are about (the rest on top of the form)."""
    for field, codes in details.items():
        target = fields.get(field, field)
        text = [str(MESSAGES.get(code, code)) for code in codes]
        if target in form.fields and target not in form.errors:
            form.add_error(target, text)
        elif target not in form.fields:
            form.add_error(None, [f"{field}: {message}" for message in text])


def to_cents(
    form: forms.BaseForm, field: str, amount: Decimal | None, currency: str | None
) -> int | None:
    """Major units typed by a person -> integer minor units of the plan currency."""
    if amount is None or currency not in CURRENCIES:
        return None
    cents = to_minor(amount, currency)
    if cents != cents.to_integral_value():
        form.add_error(field, _("Too many decimals for %(currency)s.") % {"currency": currency})
        return None
    return int(cents)


def saved(obj: object) -> bool:
    """Stored already (UUID keys exist before the first save, so `pk` cannot tell)."""
    return not obj._state.adding


def major(cents: int | None, currency: str) -> Decimal | None:
    return None if cents is None or not currency else to_major(cents, currency)


# --- the tier table ----------------------------------------------------------------------------

_TIER = re.compile(
    r"^(?P<low>\d+(?:\.\d+)?)\s*-\s*(?P<high>\d+(?:\.\d+)?|inf|∞)?\s*:\s*"
    r"(?P<price>[^\s+%]+)\s*(?P<percent>%)?\s*(?:\+\s*(?P<flat>\S+))?$"
)


def _bound(text: str) -> int | float:
    # JSON numbers, as the API receives them: whole bounds as integers (the usual style)
    return int(text) if text.isdigit() else float(text)


def parse_tiers(text: str, *, percentage: bool) -> list[dict]:
    """`0-100: 0.10 + 0` per line (graduated percentage: `0-1000: 1% + 0`) -> Lago ranges."""
    price_key = "rate" if percentage else "per_unit_amount"
    tiers = []
    for number, line in enumerate((text or "").splitlines(), start=1):
        if not line.strip():
            continue
        match = _TIER.match(line.strip())
        if match is None:
            raise forms.ValidationError(
                _("Line %(line)s: write `from-to: price + flat fee`, e.g. `0-100: 0.10 + 0`.")
                % {"line": number}
            )
        high = match["high"]
        tiers.append(
            {
                "from_value": _bound(match["low"]),
                "to_value": None if high in (None, "inf", "∞") else _bound(high),
                price_key: match["price"],
                "flat_amount": match["flat"] or "0",
            }
        )
    return tiers


def format_tiers(ranges: list[dict], *, percentage: bool) -> str:
    price_key, suffix = ("rate", "%") if percentage else ("per_unit_amount", "")
    return "\n".join(
        f"{tier.get('from_value')}-{'' if tier.get('to_value') is None else tier['to_value']}: "
        f"{tier.get(price_key)}{suffix} + {tier.get('flat_amount') or '0'}"
        for tier in ranges
    )


# --- rows of a page ----------------------------------------------------------------------------


class ParentFormSet(forms.BaseInlineFormSet):
    """Hands each form the page's object (the plan, or the charge) as the main form just
    changed it: its organization, currency and charge model are what the rows are checked
    against (the formset only sets the parent's id on the rows, and a new plan is not saved)."""

    def get_form_kwargs(self, index: int | None) -> dict:
        kwargs = super().get_form_kwargs(index)
        kwargs["parent"] = self.instance
        return kwargs


class RowForm(forms.ModelForm):
    """A row of a plan page: knows its plan, and lists only that tenant's choices."""

    def __init__(self, *args: object, parent: object = None, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.parent = parent
        _limit_choices(self, getattr(parent, "organization_id", None))

    def plan(self) -> Plan | None:
        if isinstance(self.parent, Plan):
            return self.parent
        return self.instance.plan if saved(self.instance) else None


def tax_label(tax: Tax) -> str:
    return f"{tax.name} ({tax.rate.normalize():f} %)"


def _limit_choices(form: forms.BaseForm, organization_id: object) -> None:
    for field in form.fields.values():
        model = getattr(getattr(field, "queryset", None), "model", None)
        if model is Tax:
            field.label_from_instance = tax_label
        if organization_id and model in (BillableMetric, AddOn, Tax):
            field.queryset = field.queryset.filter(organization_id=organization_id)


def _check_tenant(form: forms.BaseForm, organization_id: object, *fields: str) -> None:
    """Everything chosen must belong to the plan's organization (another tenant's row is
    unknown to the services)."""
    for name in fields:
        value = form.cleaned_data.get(name)
        rows = value if isinstance(value, QuerySet | list) else [value] if value else []
        if organization_id and any(row.organization_id != organization_id for row in rows):
            form.add_error(name, _("Choose among the plan's organization's entries."))


# --- pricing fields shared by charges, filters and fixed charges ------------------------------

# Shows only the price sections of the chosen charge model (fieldsets classed `pricing` and
# `pricing-<model>`), in the row of the select, or on the whole page for the charge page (its
# filters are priced with the charge's model). Without JavaScript every section stays visible.
_PRICING_SCRIPT = """<script>
(function () {
  if (window.planEditorPricing) { return; }
  window.planEditorPricing = true;
  // one inline row: `.form-group` in the admin theme, `.inline-related` in Django's own
  var ROW = '.form-group, .inline-related';
  function toggle(select) {
    var box = select.closest(ROW) || select.closest('form');
    if (!box) { return; }
    box.querySelectorAll('fieldset.pricing').forEach(function (fieldset) {
      var own = fieldset.closest(ROW) === select.closest(ROW) || !select.closest(ROW);
      if (!own) { return; }
      var shown = !select.value || fieldset.classList.contains('pricing-' + select.value);
      fieldset.style.display = shown ? '' : 'none';
    });
  }
  function all() { document.querySelectorAll('select.charge-model').forEach(toggle); }
  document.addEventListener('change', function (event) {
    if (event.target.matches && event.target.matches('select.charge-model')) {
      toggle(event.target);
    }
  });
  document.addEventListener('DOMContentLoaded', all);
  document.addEventListener('formset:added', all);
})();
</script>"""


class ChargeModelSelect(forms.Select):
    """The charge model select; its page shows the price fields of the chosen model only."""

    def __init__(self, attrs: dict | None = None, choices: object = ()) -> None:
        super().__init__({"class": "charge-model", **(attrs or {})}, choices)

    def render(self, *args: object, **kwargs: object) -> str:
        # the select is escaped by Django; the script is a constant
        return mark_safe(super().render(*args, **kwargs) + _PRICING_SCRIPT)


def pricing(*models: str) -> dict:
    """Fieldset options of a price section shown for `models`."""
    return {"classes": ("pricing", *(f"pricing-{model}" for model in models))}


def plain(value: Decimal | None) -> str | None:
    """A stored decimal as a person types it: 1.0000000000 -> 1, 2.50000 -> 2.5."""
    return None if value is None else f"{Decimal(value).normalize():f}"


TIERS_HELP = _(
    "Graduated, volume and graduated percentage: one row per tier, the last one open (To left "
    "blank). Graduated percentage: the rate in %, e.g. 1.5."
)
PRICING_FIELDS = (
    "amount", "package_size", "free_units", "rate", "fixed_amount", "free_units_per_events",
    "free_units_per_total_aggregation", "per_transaction_min_amount",
    "per_transaction_max_amount", "ranges", "pricing_group_keys",
)  # fmt: skip


def _amount_field(label: str, help_text: str = "") -> forms.CharField:
    # typed text, kept as typed: Lago stores decimal strings ("0.10"), never floats
    return forms.CharField(
        label=label, help_text=help_text, required=False,
        widget=forms.TextInput(attrs={"size": 12}),
    )  # fmt: skip


class PricingForm(RowForm):
    """The properties of a charge model as plain fields (spec §7.3)."""

    amount = _amount_field(
        _("Amount"), _("Standard: price per unit. Package: price per package. E.g. 0.05")
    )
    package_size = forms.IntegerField(
        label=_("Package size"), required=False, min_value=1, help_text=_("Package only")
    )
    free_units = forms.IntegerField(
        label=_("Free units"), required=False, min_value=0, help_text=_("Package only")
    )
    rate = _amount_field(_("Rate (%)"), _("Percentage: 1.5 means 1.5 %"))
    fixed_amount = _amount_field(_("Fixed fee per transaction"))
    free_units_per_events = forms.IntegerField(
        label=_("Free transactions"), required=False, min_value=1
    )
    free_units_per_total_aggregation = _amount_field(_("Free amount"))
    per_transaction_min_amount = _amount_field(_("Minimum per transaction"))
    per_transaction_max_amount = _amount_field(_("Maximum per transaction"))
    ranges = forms.CharField(
        label=_("Tiers"), required=False, help_text=TIERS_HELP, widget=TierTableWidget(),
    )  # fmt: skip
    pricing_group_keys = forms.CharField(
        label=_("Price separately by"), required=False,
        help_text=_("Event property keys, comma-separated (pricing group keys)"),
    )  # fmt: skip

    def initial_pricing(self, charge_model: str, properties: dict) -> None:
        """Fills the pricing fields from stored properties."""
        for key in PRICING_FIELDS:
            if key in properties and key not in ("ranges", "pricing_group_keys"):
                self.initial.setdefault(key, properties[key])
        range_key = RANGE_KEYS.get(charge_model)
        if range_key and properties.get(range_key):
            percentage = charge_model == ChargeModel.GRADUATED_PERCENTAGE
            self.initial.setdefault(
                "ranges", format_tiers(properties[range_key], percentage=percentage)
            )
        keys = properties.get("pricing_group_keys") or properties.get("grouped_by")
        if keys:
            self.initial.setdefault("pricing_group_keys", ", ".join(keys))

    def build_properties(self, charge_model: str) -> dict:
        """Lago's properties of `charge_model` from the typed fields (blank fields omitted)."""
        data = self.cleaned_data

        def text(key: str) -> str | None:
            return (data.get(key) or "").strip() or None

        wanted: dict = {
            ChargeModel.STANDARD: {"amount": text("amount")},
            ChargeModel.PACKAGE: {
                "amount": text("amount"),
                "package_size": data.get("package_size"),
                "free_units": data.get("free_units") or 0,
            },
            ChargeModel.PERCENTAGE: {
                key: text(key)
                for key in ("rate", "fixed_amount", "free_units_per_total_aggregation",
                            "per_transaction_min_amount", "per_transaction_max_amount")
            } | {"free_units_per_events": data.get("free_units_per_events")},
        }.get(charge_model, {})  # fmt: skip
        properties = {key: value for key, value in wanted.items() if value is not None}
        range_key = RANGE_KEYS.get(charge_model)
        if range_key:
            try:
                properties[range_key] = parse_tiers(
                    data.get("ranges") or "",
                    percentage=charge_model == ChargeModel.GRADUATED_PERCENTAGE,
                )
            except forms.ValidationError as exc:
                self.add_error("ranges", exc)
        keys = [k.strip() for k in (data.get("pricing_group_keys") or "").split(",") if k.strip()]
        if keys:
            properties["pricing_group_keys"] = keys
        return properties

    def show_property_errors(self, charge_model: str, errors: dict[str, list[str]]) -> None:
        fields = dict(ERROR_FIELDS)
        if charge_model == ChargeModel.GRADUATED_PERCENTAGE:
            fields["rate"] = "ranges"  # the tiers' rates
        show_errors(self, errors, fields)


def _tenant_querysets(request: HttpRequest) -> dict:
    organizations = staff_organizations(request)
    return {
        BillableMetric: BillableMetric.objects.alive().filter(organization__in=organizations),
        AddOn: AddOn.objects.alive().filter(organization__in=organizations),
        Tax: Tax.objects.filter(organization__in=organizations).order_by("name"),
    }


class TenantChoicesMixin:
    """Selects of metrics, add-ons and taxes list the staff member's organizations' rows."""

    def formfield_for_foreignkey(self, db_field, request: HttpRequest, **kwargs):
        queryset = _tenant_querysets(request).get(db_field.related_model)
        if queryset is not None:
            kwargs["queryset"] = queryset
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request: HttpRequest, **kwargs):
        if db_field.related_model is Tax:
            kwargs["queryset"] = _tenant_querysets(request)[Tax]
            if getattr(self, "taxes_as_checkboxes", False):
                kwargs["widget"] = forms.CheckboxSelectMultiple
        field = super().formfield_for_manytomany(db_field, request, **kwargs)
        if db_field.related_model is Tax:
            field.label_from_instance = tax_label
        return field


# --- charges -----------------------------------------------------------------------------------


class ChargeForm(PricingForm):
    """One charge: metric, model, timing and its price fields."""

    code = forms.CharField(
        label=_("Code"), required=False, help_text=_("Blank: the billable metric's code")
    )
    regroup_paid_fees = forms.ChoiceField(
        label=_("Regroup paid fees"), required=False,
        choices=[("", _("No")), ("invoice", _("On one invoice at period end"))],
    )  # fmt: skip
    min_amount = forms.DecimalField(
        label=_("Spending minimum"), required=False, min_value=0,
        help_text=_("Per period, in the plan currency, e.g. 50.00"),
    )  # fmt: skip

    class Meta:
        model = Charge
        fields = ("billable_metric", "code", "charge_model", "invoice_display_name",
                  "pay_in_advance", "invoiceable", "regroup_paid_fees", "prorated",
                  "taxes")  # fmt: skip
        widgets = {"charge_model": ChargeModelSelect}

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        charge = self.instance
        if saved(charge):
            self.initial_pricing(charge.charge_model, charge.properties)
            self.initial.setdefault("regroup_paid_fees", charge.regroup_paid_fees or "")
            if charge.min_amount_cents:
                self.initial.setdefault(
                    "min_amount", major(charge.min_amount_cents, charge.plan.amount_currency)
                )

    def clean(self) -> dict:
        data = super().clean()
        if data.get("DELETE"):
            return data
        plan = self.plan()
        organization_id = plan.organization_id if plan else None
        _check_tenant(self, organization_id, "billable_metric", "taxes")
        charge_model = data.get("charge_model") or ""
        properties = self.build_properties(charge_model)
        currency = plan.amount_currency if plan else None
        min_cents = to_cents(self, "min_amount", data.get("min_amount"), currency) or 0
        metric = data.get("billable_metric")
        errors = validate_properties(
            charge_model,
            properties,
            billable_metric_aggregation=metric.aggregation_type if metric else None,
            billable_metric_recurring=bool(metric and metric.recurring),
            pay_in_advance=bool(data.get("pay_in_advance")),
            invoiceable=bool(data.get("invoiceable")),
            regroup_paid_fees=data.get("regroup_paid_fees") or None,
            prorated=bool(data.get("prorated")),
            min_amount_cents=min_cents,
        )
        self.show_property_errors(charge_model, errors)
        data["properties"], data["min_amount_cents"] = properties, min_cents
        return data

    def validate_unique(self) -> None:
        """Charge codes are checked across the whole page (formset) and by the service."""

    def payload(self) -> dict:
        """The charge as the plan services take it (Lago's charge input)."""
        data = self.cleaned_data
        values = {
            "billable_metric_id": str(data["billable_metric"].id),
            "code": (data.get("code") or "").strip() or None,
            "charge_model": data["charge_model"],
            "invoice_display_name": data.get("invoice_display_name") or "",
            "pay_in_advance": bool(data.get("pay_in_advance")),
            "invoiceable": bool(data.get("invoiceable")),
            "regroup_paid_fees": data.get("regroup_paid_fees") or None,
            "prorated": bool(data.get("prorated")),
            "min_amount_cents": data["min_amount_cents"],
            "properties": data["properties"],
            "tax_codes": [tax.code for tax in data.get("taxes") or []],
        }
        if saved(self.instance):
            values["id"] = str(self.instance.pk)
        return values


class ChargeFormSet(ParentFormSet):
    def clean(self) -> None:
        super().clean()
        codes = [
            form.cleaned_data["code"] for form in self.live_forms() if form.cleaned_data.get("code")
        ]
        if len(codes) != len(set(codes)):
            raise forms.ValidationError(_("Each charge code may appear only once in a plan."))

    def live_forms(self) -> list[forms.Form]:
        """Filled rows not marked for deletion."""
        return [
            form
            for form in self.forms
            if form.cleaned_data.get("billable_metric") and not form.cleaned_data.get("DELETE")
        ]


CHARGE_FIELDSETS = (
    (None, {"fields": (("billable_metric", "charge_model", "code"), "invoice_display_name")}),
    (_("Timing"), {"fields": (("pay_in_advance", "invoiceable", "prorated"),
                              "regroup_paid_fees", "min_amount")}),
    (_("Price"), {"fields": (("amount", "package_size", "free_units"),),
                  **pricing("standard", "package")}),
    (_("Percentage of the amount"), {"fields": (("rate", "fixed_amount"),
                                                ("free_units_per_events",
                                                 "free_units_per_total_aggregation"),
                                                ("per_transaction_min_amount",
                                                 "per_transaction_max_amount")),
                                     **pricing("percentage")}),
    (_("Tiers"), {"fields": ("ranges",),
                  **pricing("graduated", "volume", "graduated_percentage")}),
    (_("Grouping and taxes"), {"fields": ("pricing_group_keys", "taxes")}),
)  # fmt: skip


class ChargeInline(TenantChoicesMixin, StackedInline):
    model = Charge
    form = ChargeForm
    formset = ChargeFormSet
    fieldsets = CHARGE_FIELDSETS
    extra = 0
    show_change_link = True  # the charge page edits its filters
    taxes_as_checkboxes = True
    verbose_name = _("usage-based charge")
    verbose_name_plural = _("usage-based charges")

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).filter(deleted_at__isnull=True)


# --- fixed charges -----------------------------------------------------------------------------


class FixedChargeForm(PricingForm):
    code = forms.CharField(label=_("Code"), required=False, help_text=_("Blank: the add-on's code"))
    charge_model = forms.ChoiceField(
        label=_("Charge model"), choices=FixedChargeModel.choices, widget=ChargeModelSelect
    )

    class Meta:
        model = FixedCharge
        fields = ("add_on", "code", "charge_model", "invoice_display_name", "units",
                  "pay_in_advance", "prorated", "taxes")  # fmt: skip

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.initial["units"] = plain(self.initial.get("units"))
        if saved(self.instance):
            self.initial_pricing(self.instance.charge_model, self.instance.properties)
            self.fields["pay_in_advance"].disabled = True  # Lago never changes the timing
            self.fields["prorated"].disabled = True

    def clean(self) -> dict:
        data = super().clean()
        if data.get("DELETE"):
            return data
        plan = self.plan()
        _check_tenant(self, plan.organization_id if plan else None, "add_on", "taxes")
        charge_model = data.get("charge_model") or ""
        properties = self.build_properties(charge_model)
        self.show_property_errors(charge_model, validate_properties(charge_model, properties))
        data["properties"] = properties
        return data

    def validate_unique(self) -> None:
        """Codes are the service's check."""

    def payload(self) -> dict:
        data = self.cleaned_data
        values = {
            "add_on_id": str(data["add_on"].id),
            "code": (data.get("code") or "").strip() or None,
            "charge_model": data["charge_model"],
            "invoice_display_name": data.get("invoice_display_name") or "",
            "units": data.get("units") or Decimal(0),
            "pay_in_advance": bool(data.get("pay_in_advance")),
            "prorated": bool(data.get("prorated")),
            "properties": data["properties"],
            "tax_codes": [tax.code for tax in data.get("taxes") or []],
        }
        if saved(self.instance):
            values["id"] = str(self.instance.pk)
        return values


class FixedChargeFormSet(ParentFormSet):
    def live_forms(self) -> list[forms.Form]:
        return [
            form
            for form in self.forms
            if form.cleaned_data.get("add_on") and not form.cleaned_data.get("DELETE")
        ]


class FixedChargeInline(TenantChoicesMixin, StackedInline):
    model = FixedCharge
    form = FixedChargeForm
    formset = FixedChargeFormSet
    extra = 0
    taxes_as_checkboxes = True
    fieldsets = (
        (None, {"fields": (("add_on", "charge_model", "code"), "invoice_display_name",
                           ("units", "pay_in_advance", "prorated"))}),
        (_("Price"), {"fields": ("amount",), **pricing("standard")}),
        (_("Tiers"), {"fields": ("ranges",), **pricing("graduated", "volume")}),
        (_("Taxes"), {"fields": ("taxes",)}),
    )  # fmt: skip

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).filter(deleted_at__isnull=True)


# --- usage thresholds and minimum commitment ---------------------------------------------------


class MoneyForm(RowForm):
    """`amount` in major units of the plan currency for the row's `amount_cents`."""

    amount = forms.DecimalField(label=_("Amount"), min_value=0, help_text=_("e.g. 500.00"))

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        if saved(self.instance):
            self.initial.setdefault(
                "amount", major(self.instance.amount_cents, self.instance.plan.amount_currency)
            )

    def clean(self) -> dict:
        data = super().clean()
        plan = self.plan()
        data["amount_cents"] = to_cents(
            self, "amount", data.get("amount"), plan.amount_currency if plan else None
        )
        return data

    def validate_unique(self) -> None:
        """Thresholds are checked as a list by the service."""


class UsageThresholdForm(MoneyForm):
    class Meta:
        model = UsageThreshold
        fields = ("threshold_display_name", "recurring")


class UsageThresholdFormSet(ParentFormSet):
    def payload(self) -> list[dict]:
        return [
            {
                **({"id": str(form.instance.pk)} if saved(form.instance) else {}),
                "amount_cents": form.cleaned_data["amount_cents"],
                "recurring": bool(form.cleaned_data.get("recurring")),
                "threshold_display_name": form.cleaned_data.get("threshold_display_name") or "",
            }
            for form in self.forms
            if form.cleaned_data.get("amount") is not None and not form.cleaned_data.get("DELETE")
        ]


class UsageThresholdInline(TabularInline):
    model = UsageThreshold
    form = UsageThresholdForm
    formset = UsageThresholdFormSet
    fields = ("amount", "threshold_display_name", "recurring")
    extra = 0
    verbose_name = _("progressive billing threshold")
    verbose_name_plural = _("progressive billing thresholds")

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).filter(deleted_at__isnull=True)


class MinimumCommitmentForm(MoneyForm):
    class Meta:
        model = MinimumCommitment
        fields = ("invoice_display_name", "taxes")

    def clean(self) -> dict:
        data = super().clean()
        plan = self.plan()
        _check_tenant(self, plan.organization_id if plan else None, "taxes")
        return data


class MinimumCommitmentFormSet(ParentFormSet):
    def payload(self) -> dict | None:
        """`None`: leave as is; `{}`: remove; else the commitment (spec §22)."""
        for form in self.forms:
            data = form.cleaned_data
            if data.get("DELETE"):
                return {} if saved(form.instance) else None
            if data.get("amount") is not None:
                return {
                    "amount_cents": data["amount_cents"],
                    "invoice_display_name": data.get("invoice_display_name") or "",
                    "tax_codes": [tax.code for tax in data.get("taxes") or []],
                }
        return None


class MinimumCommitmentInline(TenantChoicesMixin, StackedInline):
    model = MinimumCommitment
    form = MinimumCommitmentForm
    formset = MinimumCommitmentFormSet
    fields = ("amount", "invoice_display_name", "taxes")
    extra = 0
    taxes_as_checkboxes = True


# --- plans -------------------------------------------------------------------------------------

PLAN_FIELDS = ("name", "code", "invoice_display_name", "description", "interval",
               "amount_currency", "trial_period", "pay_in_advance", "bill_charges_monthly",
               "bill_fixed_charges_monthly")  # fmt: skip


def parse_metadata(text: str) -> dict:
    metadata = {}
    for number, line in enumerate((text or "").splitlines(), start=1):
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise forms.ValidationError(_("Line %(line)s: write `key=value`.") % {"line": number})
        metadata[key.strip()] = value.strip() or None
    return metadata


class PlanForm(forms.ModelForm):
    amount = forms.DecimalField(
        label=_("Subscription fee"), min_value=0,
        help_text=_("Per billing period, in the currency's major unit, e.g. 49.00"),
    )  # fmt: skip
    amount_currency = forms.ChoiceField(label=_("Currency"), choices=CURRENCY_CHOICES)
    # yes or no, never "unknown" (the service keeps null for intervals where it means nothing)
    bill_charges_monthly = forms.BooleanField(
        label=_("Bill charges monthly"), required=False,
        help_text=_("Yearly plans: charges are billed every month"),
    )  # fmt: skip
    bill_fixed_charges_monthly = forms.BooleanField(
        label=_("Bill fixed charges monthly"), required=False,
        help_text=_("Yearly plans: fixed charges are billed every month"),
    )  # fmt: skip
    metadata_text = forms.CharField(
        label=_("Metadata"), required=False, help_text=_("One `key=value` per line"),
        widget=forms.Textarea(attrs={"rows": 2, "cols": 40}),
    )  # fmt: skip

    class Meta:
        model = Plan
        fields = ("organization", *PLAN_FIELDS, "taxes")

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        plan = self.instance
        if saved(plan):
            self.initial.setdefault("amount", major(plan.amount_cents, plan.amount_currency))
            self.initial["trial_period"] = plain(plan.trial_period)
            if plan_has_subscriptions(plan):
                # spec §6.2: the core of a plan in use is locked (shown read-only instead)
                for field in LOCKED_FIELDS:
                    self.fields.pop(field, None)
            self.initial.setdefault(
                "metadata_text", "\n".join(f"{k}={v or ''}" for k, v in plan.metadata.items())
            )

    def organization_id(self) -> object:
        if self.instance.organization_id:
            return self.instance.organization_id
        organization = self.cleaned_data.get("organization")
        return organization.id if organization else None

    def clean_metadata_text(self) -> dict:
        return parse_metadata(self.cleaned_data.get("metadata_text", ""))

    def clean(self) -> dict:
        data = super().clean()
        currency = data.get("amount_currency", self.instance.amount_currency)
        data["amount_cents"] = to_cents(self, "amount", data.get("amount"), currency)
        values = self.values()
        errors = plan_field_errors(values, creating=not saved(self.instance))
        organization_id = self.organization_id()
        code = values.get("code")
        if organization_id and code and "code" in self.fields:
            organization = self.instance.organization if self.instance.organization_id else (
                data["organization"]
            )  # fmt: skip
            exclude = self.instance if saved(self.instance) else None
            if plan_code_taken(organization=organization, code=code, exclude=exclude):
                errors.setdefault("code", []).append("value_already_exist")
        errors.pop("amount_cents", None)  # the amount field has its own message
        show_errors(self, errors, {"metadata": "metadata_text"})
        _check_tenant(self, organization_id, "taxes")
        return data

    def validate_unique(self) -> None:
        """The plan code is checked by the service's rule (live base plans only)."""

    def values(self) -> dict:
        """The plan fields as the services take them (locked fields are not on the form)."""
        data = self.cleaned_data
        values = {field: data[field] for field in PLAN_FIELDS if field in data}
        for field in ("invoice_display_name", "description"):
            if field in values:
                values[field] = values[field] or ""
        if "trial_period" in values and values["trial_period"] is None:
            values["trial_period"] = Decimal(0)
        values["amount_cents"] = data.get("amount_cents")
        values["metadata"] = data.get("metadata_text") or {}
        values["tax_codes"] = [tax.code for tax in data.get("taxes") or []]
        return values


@admin.register(Plan)
class PlanAdmin(ActivityTimelineMixin, TenantChoicesMixin, OrganizationAdmin):
    form = PlanForm
    inlines = (ChargeInline, FixedChargeInline, MinimumCommitmentInline, UsageThresholdInline)
    list_display = ("name", "code", "interval", "subscription_fee", "pay_in_advance",
                    "charges_count", "organization", "created_at")  # fmt: skip
    list_filter = ("interval", "amount_currency", "pay_in_advance", "organization")
    search_fields = ("name", "code", "invoice_display_name", "description")
    list_select_related = ("organization",)
    filter_horizontal = ("taxes",)
    readonly_fields = ("lago_id", "subscription_fee", "overrides", "entitlements",
                       "created_at", "updated_at")  # fmt: skip
    fieldsets = (
        (None, {"fields": ("organization", ("name", "code"), "invoice_display_name",
                           "description")}),
        (_("Subscription fee"), {"fields": (("amount", "amount_currency"), "interval",
                                            "pay_in_advance", "trial_period",
                                            ("bill_charges_monthly",
                                             "bill_fixed_charges_monthly"))}),
        (_("Taxes and metadata"), {"fields": ("taxes", "metadata_text")}),
        (_("Entitlements"), {"fields": ("entitlements",)}),
        (_("Record"), {"fields": ("lago_id", "subscription_fee", "overrides", "created_at",
                                  "updated_at"), "classes": ("collapse",)}),
    )  # fmt: skip

    def get_changeform_initial_data(self, request: HttpRequest) -> dict:
        """A new plan starts in its organization's currency (the one in view)."""
        initial = super().get_changeform_initial_data(request)
        organizations = list(staff_organizations(request, Plan, "add")[:2])
        if len(organizations) == 1 and "amount_currency" not in initial:
            initial["amount_currency"] = organizations[0].default_currency
        return initial

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        # overrides (child plans) belong to their subscription; deleted plans are gone
        return (
            super()
            .get_queryset(request)
            .filter(deleted_at__isnull=True, parent__isnull=True)
            .annotate(live_charges=Count("charges", filter=Q(charges__deleted_at__isnull=True)))
        )

    @admin.display(description=_("Subscription fee"), ordering="amount_cents")
    def subscription_fee(self, plan: Plan) -> str:
        if plan.amount_cents is None or not plan.amount_currency:
            return "—"
        return format_money(plan.amount_cents, plan.amount_currency)

    @admin.display(description=_("Charges"), ordering="live_charges")
    def charges_count(self, plan: Plan) -> int:
        return getattr(plan, "live_charges", 0)

    @admin.display(description=_("Overrides"))
    def overrides(self, plan: Plan) -> str:
        return str(plan.children.alive().count()) if saved(plan) else "—"

    @admin.display(description=_("Entitlements"))
    def entitlements(self, plan: Plan) -> str:
        if not saved(plan):
            return _("Saved plans only")
        return format_html(
            '{} <a class="button" href="{}">{}</a>',
            entitlements_summary(plan_entitlement_list(plan=plan)),
            reverse("admin:plans_plan_entitlements", args=[plan.pk]),
            _("Edit entitlements"),
        )

    def get_urls(self) -> list:
        view = self.admin_site.admin_view
        return [
            path(
                "<path:object_id>/entitlements/",
                view(lambda request, object_id: plan_entitlements_view(self, request, object_id)),
                name="plans_plan_entitlements",
            ),
            *super().get_urls(),
        ]

    def get_readonly_fields(self, request: HttpRequest, obj: Plan | None = None):
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None:
            fields.append("organization")
            if plan_has_subscriptions(obj):
                fields += [*LOCKED_FIELDS, "bill_charges_monthly", "bill_fixed_charges_monthly"]
        return fields

    def save_model(self, request: HttpRequest, obj: Plan, form: PlanForm, change: bool) -> None:
        """Saved with its inlines by the services, in `save_related`."""

    def save_related(self, request: HttpRequest, form: PlanForm, formsets, change: bool) -> None:
        values = form.values()
        for formset in formsets:
            if isinstance(formset, ChargeFormSet):
                values["charges"] = [f.payload() for f in formset.live_forms()]
            elif isinstance(formset, FixedChargeFormSet):
                values["fixed_charges"] = [f.payload() for f in formset.live_forms()]
            elif isinstance(formset, UsageThresholdFormSet):
                values["usage_thresholds"] = formset.payload()
            elif isinstance(formset, MinimumCommitmentFormSet):
                commitment = formset.payload()
                if commitment is not None:
                    values["minimum_commitment"] = commitment
            formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        now = timezone.now()
        try:
            if change:
                plan = plan_update(
                    plan=form.instance, values=values, actor=Actor.from_request(request), now=now
                )
            else:
                organization = form.cleaned_data["organization"]
                plan = plan_create(
                    organization=organization,
                    values=values,
                    actor=Actor.from_request(request),
                    now=now,
                )
        except DomainError as exc:
            # checked by the forms already; a concurrent change can still refuse the save (the
            # service's own transaction is rolled back, nothing of the page is written)
            request._plan_save_refused = True
            details = exc.details if isinstance(exc, Invalid) else {"error": [str(exc)]}
            self.message_user(request, _("Not saved: %(why)s") % {"why": details}, messages.ERROR)
            plan = form.instance if change else None
        if plan is not None:
            form.instance.pk = plan.pk
            form.instance._state.adding = False

    def log_addition(self, request: HttpRequest, obj: Plan, message: object) -> None:
        if not getattr(request, "_plan_save_refused", False):
            super().log_addition(request, obj, message)

    def log_change(self, request: HttpRequest, obj: Plan, message: object) -> None:
        if not getattr(request, "_plan_save_refused", False):
            super().log_change(request, obj, message)

    def response_add(self, request: HttpRequest, obj: Plan, post_url_continue=None):
        if getattr(request, "_plan_save_refused", False):
            return HttpResponseRedirect(request.path)
        return super().response_add(request, obj, post_url_continue)

    def response_change(self, request: HttpRequest, obj: Plan) -> HttpResponse:
        if getattr(request, "_plan_save_refused", False):
            return HttpResponseRedirect(request.path)
        return super().response_change(request, obj)

    def get_deleted_objects(self, objs: QuerySet | list, request: HttpRequest) -> tuple:
        # a soft delete: nothing else is removed
        names = [str(obj) for obj in objs]
        return names, {Plan._meta.verbose_name_plural: len(names)}, set(), []

    def delete_model(self, request: HttpRequest, obj: Plan) -> None:
        plan_delete(plan=obj, actor=Actor.from_request(request), now=timezone.now())

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        now, actor = timezone.now(), Actor.from_request(request)
        for plan in queryset:
            plan_delete(plan=plan, actor=actor, now=now)


# --- the charge page: a charge and its filters ------------------------------------------------


def parse_filter_values(text: str) -> dict[str, list[str]]:
    """`region: eu, us` per line; `*` for every value of the key -> Lago's filter values."""
    values: dict[str, list[str]] = {}
    for number, line in enumerate((text or "").splitlines(), start=1):
        if not line.strip():
            continue
        key, sep, rest = line.partition(":")
        items = [item.strip() for item in rest.split(",") if item.strip()]
        if not sep or not key.strip() or not items:
            raise forms.ValidationError(
                _("Line %(line)s: write `key: value, value` (or `key: *`).") % {"line": number}
            )
        values[key.strip()] = [ALL_FILTER_VALUES] if items == ["*"] else items
    return values


def format_filter_values(values: dict) -> str:
    return "\n".join(
        f"{key}: {'*' if items == [ALL_FILTER_VALUES] else ', '.join(items)}"
        for key, items in values.items()
    )


class ChargeFilterForm(PricingForm):
    values_text = forms.CharField(
        label=_("Matches"),
        help_text=_("One metric filter per line, `region: eu, us`; `*` for any value"),
        widget=forms.Textarea(attrs={"rows": 2, "cols": 30}),
    )

    class Meta:
        model = ChargeFilter
        fields = ("invoice_display_name",)

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.declared_filters()
        if saved(self.instance):
            self.initial.setdefault("values_text", format_filter_values(self.instance.values))
            self.initial_pricing(self.instance.charge.charge_model, self.instance.properties)

    def declared_filters(self) -> None:
        """Tells which keys and values the charge's metric declares."""
        charge = self.charge()
        declared = [
            f"{f.key}: {', '.join(map(str, f.values))}"
            for f in charge.billable_metric.filters.alive()
        ] if charge.billable_metric_id else []  # fmt: skip
        if declared:
            self.fields["values_text"].help_text = format_html(
                "{}<br>{} {}",
                self.fields["values_text"].help_text,
                _("The metric declares:"),
                "; ".join(declared),
            )

    def charge(self) -> Charge:
        """The charge as its own form just changed it (model, metric)."""
        return self.parent if isinstance(self.parent, Charge) else self.instance.charge

    def clean_values_text(self) -> dict:
        return parse_filter_values(self.cleaned_data.get("values_text", ""))

    def clean(self) -> dict:
        data = super().clean()
        if data.get("DELETE") or "values_text" not in data:
            return data
        charge = self.charge()
        properties = self.build_properties(charge.charge_model)
        errors = charge_filter_errors(charge, data["values_text"], properties)
        show_errors(self, {k: v for k, v in errors.items() if k != "properties"},
                    {"values": "values_text"})  # fmt: skip
        self.show_property_errors(
            charge.charge_model, validate_properties(charge.charge_model, properties)
        )
        data["properties"] = properties
        return data

    def payload(self) -> dict:
        return {
            "invoice_display_name": self.cleaned_data.get("invoice_display_name") or "",
            "values": self.cleaned_data["values_text"],
            "properties": self.cleaned_data["properties"],
        }


class ChargeFilterFormSet(ParentFormSet):
    def live_forms(self) -> list[forms.Form]:
        return [
            form
            for form in self.forms
            if form.cleaned_data.get("values_text") and not form.cleaned_data.get("DELETE")
        ]


class ChargeFilterInline(StackedInline):
    model = ChargeFilter
    form = ChargeFilterForm
    formset = ChargeFilterFormSet
    extra = 1
    verbose_name = _("filter (own price for matching events)")
    verbose_name_plural = _("filters (own prices for matching events)")
    fieldsets = (
        (None, {"fields": ("values_text", "invoice_display_name")}),
        (_("Price"), {"fields": (("amount", "package_size", "free_units"),),
                      **pricing("standard", "package")}),
        (_("Percentage of the amount"), {"fields": (("rate", "fixed_amount"),),
                                         **pricing("percentage")}),
        (_("Tiers"), {"fields": ("ranges",),
                      **pricing("graduated", "volume", "graduated_percentage")}),
    )  # fmt: skip

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).filter(deleted_at__isnull=True)


class ChargePageForm(ChargeForm):
    """The charge form of the charge page: choices of the charge's organization."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        _limit_choices(self, self.instance.organization_id)


@admin.register(Charge)
class ChargeAdmin(TenantChoicesMixin, OrganizationAdmin):
    """A charge of a plan with its filters (dimension pricing, spec §7.12)."""

    form = ChargePageForm
    inlines = (ChargeFilterInline,)
    list_display = ("code", "plan_link", "billable_metric", "charge_model", "pay_in_advance",
                    "filters_count")  # fmt: skip
    list_filter = ("charge_model", "pay_in_advance", "prorated")
    search_fields = ("code", "plan__code", "plan__name", "billable_metric__code")
    list_select_related = ("plan", "billable_metric")
    readonly_fields = ("plan_link",)
    taxes_as_checkboxes = True
    fieldsets = ((None, {"fields": ("plan_link",)}), *CHARGE_FIELDSETS)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return (
            super()
            .get_queryset(request)
            .filter(deleted_at__isnull=True, plan__deleted_at__isnull=True,
                    plan__parent__isnull=True)
            .annotate(live_filters=Count("filters", filter=Q(filters__deleted_at__isnull=True)))
        )  # fmt: skip

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # charges are added on their plan's page

    @admin.display(description=_("Plan"), ordering="plan__code")
    def plan_link(self, charge: Charge) -> str:
        if not saved(charge):
            return "—"
        url = reverse("admin:plans_plan_change", args=[charge.plan_id])
        return format_html('<a href="{}">{}</a>', url, charge.plan)

    @admin.display(description=_("Filters"), ordering="live_filters")
    def filters_count(self, charge: Charge) -> int:
        return getattr(charge, "live_filters", 0)

    def save_model(self, request: HttpRequest, obj: Charge, form: ChargeForm, change: bool):
        """Saved with its filters by `charge_update`, in `save_related`."""

    def save_related(self, request: HttpRequest, form: ChargeForm, formsets, change: bool):
        values = form.payload()
        for formset in formsets:
            if isinstance(formset, ChargeFilterFormSet):
                values["filters"] = [f.payload() for f in formset.live_forms()]
            formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        try:
            charge_update(
                charge=form.instance,
                values=values,
                actor=Actor.from_request(request),
                now=timezone.now(),
            )
        except DomainError as exc:
            request._charge_save_refused = True
            details = exc.details if isinstance(exc, Invalid) else {"error": [str(exc)]}
            self.message_user(request, _("Not saved: %(why)s") % {"why": details}, messages.ERROR)

    def log_change(self, request: HttpRequest, obj: Charge, message: object) -> None:
        if not getattr(request, "_charge_save_refused", False):
            super().log_change(request, obj, message)

    def response_change(self, request: HttpRequest, obj: Charge) -> HttpResponse:
        if getattr(request, "_charge_save_refused", False):
            return HttpResponseRedirect(request.path)
        return super().response_change(request, obj)

    def get_deleted_objects(self, objs: QuerySet | list, request: HttpRequest) -> tuple:
        names = [str(obj) for obj in objs]
        return names, {Charge._meta.verbose_name_plural: len(names)}, set(), []

    def delete_model(self, request: HttpRequest, obj: Charge) -> None:
        charge_delete(charge=obj, actor=Actor.from_request(request), now=timezone.now())

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        now, actor = timezone.now(), Actor.from_request(request)
        for charge in queryset:
            charge_delete(charge=charge, actor=actor, now=now)
