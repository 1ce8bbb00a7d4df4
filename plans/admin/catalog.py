"""Catalog admin: billable metrics (with filters), taxes, add-ons, coupons.

Forms validate through the services' own checks (errors shown next to the fields) and saves
call the same services as the API, so the admin and the API cannot disagree on the rules.
"""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from billing.actors import Actor
from billing.admin_base import (
    ActionReport,
    OrganizationAdmin,
    TabularInline,
    staff_organizations,
)
from billing.models import Organization
from billing.money import CURRENCIES, format_money, to_major, to_minor
from plans.models import (
    AddOn,
    BillableMetric,
    BillableMetricFilter,
    Coupon,
    CouponType,
    Tax,
)
from plans.selectors import billable_metric_is_used, coupon_is_applied
from plans.services.add_ons import add_on_create, add_on_destroy, add_on_errors, add_on_update
from plans.services.coupons import (
    coupon_create,
    coupon_destroy,
    coupon_errors,
    coupon_terminate,
    coupon_update,
)
from plans.services.metrics import (
    METRIC_FIELDS,
    billable_metric_create,
    billable_metric_destroy,
    billable_metric_errors,
    billable_metric_update,
)
from plans.services.taxes import tax_create, tax_destroy, tax_errors, tax_update

MESSAGES = {
    "value_is_mandatory": _("This field is required."),
    "value_already_exist": _("This code is already used in the organization."),
    "value_is_invalid": _("Invalid value."),
    "not_compatible_with_aggregation_type": _("Not possible with this aggregation type."),
    "invalid_expression": _("This expression is not valid."),
    "invalid_date": _("The date cannot be in the past."),
    "tax_not_found": _("Unknown tax."),
}
# only the organizations of the listed (already scoped) rows: staff never see other tenants' names
ORGANIZATION_FILTER = ("organization", admin.RelatedOnlyFieldListFilter)
CURRENCY_CHOICES = [("", "—"), *((code, code) for code in sorted(CURRENCIES))]


def add_service_errors(form: forms.BaseForm, details: dict[str, list[str]]) -> None:
    """Puts a service's `Invalid` details next to the matching form fields."""
    for field, codes in details.items():
        messages = [MESSAGES.get(code, code) for code in codes]
        if field in form.fields and field not in form.errors:
            form.add_error(field, messages)
        elif field not in form.fields:
            form.add_error(None, [f"{field}: {message}" for message in messages])


class CatalogFormMixin:
    """The organization of the row: the chosen one on add, the stored one on change."""

    def organization(self) -> Organization | None:
        if self.instance.organization_id:
            return self.instance.organization
        return self.cleaned_data.get("organization")


class SoftDeleteAdminMixin:
    """Live rows only; deleting goes through the entity's destroy service (a soft delete)."""

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).filter(deleted_at__isnull=True)

    def get_deleted_objects(self, objs: QuerySet | list, request: HttpRequest) -> tuple:
        # a soft delete touches no related row: list only the objects themselves
        names = [str(obj) for obj in objs]
        return names, {self.model._meta.verbose_name_plural: len(names)}, set(), []

    def delete_model(self, request: HttpRequest, obj: object) -> None:
        self.destroy(obj, actor=Actor.from_request(request))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        actor = Actor.from_request(request)
        for obj in queryset:
            self.destroy(obj, actor=actor)

    def destroy(self, obj: object, *, actor: Actor) -> None:
        raise NotImplementedError


def _scoped(queryset: QuerySet, request: HttpRequest) -> QuerySet:
    return queryset.filter(organization__in=staff_organizations(request))


# --- billable metrics --------------------------------------------------------------------------


def _split_values(text: str) -> list[str]:
    return list(dict.fromkeys(v.strip() for v in (text or "").split(",") if v.strip()))


class BillableMetricFilterForm(forms.ModelForm):
    """A filter's values are typed as one comma-separated text, not raw JSON."""

    values_text = forms.CharField(
        label=_("Values"),
        help_text=_("Comma-separated, e.g. us-east-1, eu-west-1"),
        widget=forms.TextInput(attrs={"size": 60}),
    )

    class Meta:
        model = BillableMetricFilter
        fields = ("key",)

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        if not self.instance._state.adding and self.instance.values:
            self.initial.setdefault("values_text", ", ".join(map(str, self.instance.values)))

    def clean_values_text(self) -> list[str]:
        values = _split_values(self.cleaned_data.get("values_text", ""))
        if not values:
            raise forms.ValidationError(_("Give at least one value."))
        return values


class BillableMetricFilterFormSet(forms.BaseInlineFormSet):
    def clean(self) -> None:
        super().clean()
        keys = [
            form.cleaned_data["key"]
            for form in self.forms
            if form.cleaned_data.get("key") and not form.cleaned_data.get("DELETE")
        ]
        if len(keys) != len(set(keys)):
            raise forms.ValidationError(_("Each filter key may appear only once."))

    def filters(self) -> list[dict]:
        """The filters as the service takes them (deleted and empty rows left out)."""
        return [
            {"key": form.cleaned_data["key"], "values": form.cleaned_data["values_text"]}
            for form in self.forms
            if form.cleaned_data.get("key") and not form.cleaned_data.get("DELETE")
        ]


class BillableMetricFilterInline(TabularInline):
    model = BillableMetricFilter
    form = BillableMetricFilterForm
    formset = BillableMetricFilterFormSet
    fields = ("key", "values_text")
    extra = 1

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).filter(deleted_at__isnull=True)


class BillableMetricForm(CatalogFormMixin, forms.ModelForm):
    weighted_interval = forms.ChoiceField(
        choices=[("", "—"), ("seconds", _("Seconds"))], required=False
    )

    class Meta:
        model = BillableMetric
        fields = ("organization", *METRIC_FIELDS)

    def clean(self) -> dict:
        data = super().clean()
        organization = self.organization()
        if organization is None:
            return data
        values = {field: getattr(self.instance, field) for field in METRIC_FIELDS}
        values.update({f: data.get(f) for f in METRIC_FIELDS if f in self.fields})
        values["weighted_interval"] = values.get("weighted_interval") or None
        values["rounding_function"] = values.get("rounding_function") or None
        errors = billable_metric_errors(
            organization=organization,
            values=values,
            instance=self.instance if self.instance.organization_id else None,
        )
        add_service_errors(self, errors)
        return data

    def validate_unique(self) -> None:
        """Code uniqueness is the service's check (its message is the one shown)."""


@admin.register(BillableMetric)
class BillableMetricAdmin(SoftDeleteAdminMixin, OrganizationAdmin):
    form = BillableMetricForm
    inlines = (BillableMetricFilterInline,)
    list_display = ("name", "code", "aggregation_type", "field_name", "recurring",
                    "organization", "created_at")  # fmt: skip
    list_filter = ("aggregation_type", "recurring", "rounding_function", ORGANIZATION_FILTER)
    search_fields = ("name", "code", "field_name", "description")
    list_select_related = ("organization",)
    readonly_fields = ("id", "created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("organization", "name", "code", "description")}),
        (_("Aggregation"), {"fields": ("aggregation_type", "field_name", "expression",
                                       "recurring", "weighted_interval")}),
        (_("Rounding"), {"fields": ("rounding_function", "rounding_precision")}),
        (_("Record"), {"fields": ("id", "created_at", "updated_at"), "classes": ("collapse",)}),
    )  # fmt: skip

    def get_readonly_fields(self, request: HttpRequest, obj: BillableMetric | None = None):
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None:
            fields.append("organization")
            if billable_metric_is_used(obj):
                # priced by a plan: only name, description and filters may change (Lago)
                fields += [f for f in METRIC_FIELDS if f not in ("name", "description")]
        return fields

    def save_model(
        self, request: HttpRequest, obj: BillableMetric, form: forms.ModelForm, change: bool
    ) -> None:
        values = {f: form.cleaned_data[f] for f in METRIC_FIELDS if f in form.cleaned_data}
        for field in ("weighted_interval", "rounding_function"):
            if field in values:
                values[field] = values[field] or None
        if change:
            billable_metric_update(
                billable_metric=obj,
                values=values,
                actor=Actor.from_request(request),
                now=timezone.now(),
            )
        else:
            created = billable_metric_create(organization=form.cleaned_data["organization"],
                                             actor=Actor.from_request(request),
                                             **values)  # fmt: skip
            obj.pk = created.pk
            obj._state.adding = False
        obj.refresh_from_db()

    def save_related(self, request: HttpRequest, form: forms.ModelForm, formsets, change: bool):
        for formset in formsets:
            if isinstance(formset, BillableMetricFilterFormSet):
                # the §4.1 filter edit rule (charge filters lose removed values) is the service's
                billable_metric_update(
                    billable_metric=form.instance,
                    values={"filters": formset.filters()},
                    actor=Actor.from_request(request),
                    now=timezone.now(),
                )
            formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []

    def destroy(self, obj: BillableMetric, *, actor: Actor) -> None:
        billable_metric_destroy(billable_metric=obj, actor=actor, now=timezone.now())


# --- taxes -------------------------------------------------------------------------------------

TAX_FORM_FIELDS = ("name", "code", "rate", "description", "applied_to_organization")


class TaxForm(CatalogFormMixin, forms.ModelForm):
    class Meta:
        model = Tax
        fields = ("organization", *TAX_FORM_FIELDS)

    def clean(self) -> dict:
        data = super().clean()
        organization = self.organization()
        if organization is not None:
            values = {f: data.get(f) for f in TAX_FORM_FIELDS}
            instance = self.instance if self.instance.organization_id else None
            add_service_errors(
                self, tax_errors(organization=organization, values=values, instance=instance)
            )
        return data

    def validate_unique(self) -> None:
        """Code uniqueness is the service's check (its message is the one shown)."""


@admin.register(Tax)
class TaxAdmin(OrganizationAdmin):
    form = TaxForm
    list_display = ("name", "code", "rate_display", "applied_to_organization", "organization",
                    "created_at")  # fmt: skip
    list_filter = ("applied_to_organization", ORGANIZATION_FILTER)
    search_fields = ("name", "code", "description")
    list_select_related = ("organization",)
    readonly_fields = ("id", "created_at", "updated_at")

    @admin.display(description=_("Rate"), ordering="rate")
    def rate_display(self, tax: Tax) -> str:
        return f"{tax.rate.normalize():f} %"

    def get_readonly_fields(self, request: HttpRequest, obj: Tax | None = None):
        fields = list(super().get_readonly_fields(request, obj))
        return [*fields, "organization"] if obj is not None else fields

    def save_model(self, request: HttpRequest, obj: Tax, form: forms.ModelForm, change: bool):
        values = {f: form.cleaned_data[f] for f in TAX_FORM_FIELDS}
        if change:
            tax_update(tax=obj, values=values, actor=Actor.from_request(request))
        else:
            created = tax_create(
                organization=form.cleaned_data["organization"],
                **values,
                actor=Actor.from_request(request),
            )
            obj.pk = created.pk
            obj._state.adding = False
        obj.refresh_from_db()

    def delete_model(self, request: HttpRequest, obj: Tax) -> None:
        tax_destroy(tax=obj, actor=Actor.from_request(request))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        actor = Actor.from_request(request)
        for tax in queryset:
            tax_destroy(tax=tax, actor=actor)


# --- add-ons -----------------------------------------------------------------------------------


def _cents(form: forms.BaseForm, amount: Decimal | None, currency: str | None) -> int | None:
    """Major units typed by a person -> integer cents; sub-cent amounts are refused."""
    if amount is None or not currency:
        return None
    cents = to_minor(amount, currency)
    if cents != cents.to_integral_value():
        form.add_error("amount", _("Too many decimals for %(currency)s.") % {"currency": currency})
        return None
    return int(cents)


class AddOnForm(CatalogFormMixin, forms.ModelForm):
    amount = forms.DecimalField(
        label=_("Amount"), help_text=_("In the currency's major unit, e.g. 49.90"), min_value=0
    )
    amount_currency = forms.ChoiceField(label=_("Currency"), choices=CURRENCY_CHOICES)

    class Meta:
        model = AddOn
        fields = ("organization", "name", "code", "invoice_display_name", "description",
                  "amount_currency", "taxes")  # fmt: skip

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        if not self.instance._state.adding and self.instance.amount_currency:
            self.initial.setdefault(
                "amount", to_major(self.instance.amount_cents, self.instance.amount_currency)
            )

    def clean(self) -> dict:
        data = super().clean()
        organization = self.organization()
        if organization is None:
            return data
        data["amount_cents"] = _cents(self, data.get("amount"), data.get("amount_currency"))
        if any(tax.organization_id != organization.id for tax in data.get("taxes") or []):
            self.add_error("taxes", _("Taxes must belong to the add-on's organization."))
        values = {f: data.get(f) for f in ("name", "code", "amount_cents", "amount_currency")}
        instance = self.instance if self.instance.organization_id else None
        errors = add_on_errors(organization=organization, values=values, instance=instance)
        if "amount_cents" in errors:
            errors["amount"] = errors.pop("amount_cents")
        add_service_errors(self, errors)
        return data

    def validate_unique(self) -> None:
        """Code uniqueness is the service's check (its message is the one shown)."""


@admin.register(AddOn)
class AddOnAdmin(SoftDeleteAdminMixin, OrganizationAdmin):
    form = AddOnForm
    list_display = ("name", "code", "amount", "organization", "created_at")
    list_filter = ("amount_currency", ORGANIZATION_FILTER)
    search_fields = ("name", "code", "invoice_display_name", "description")
    list_select_related = ("organization",)
    readonly_fields = ("id", "created_at", "updated_at")
    filter_horizontal = ("taxes",)
    fields = ("organization", "name", "code", "invoice_display_name", "description", "amount",
              "amount_currency", "taxes", "id", "created_at", "updated_at")  # fmt: skip

    @admin.display(description=_("Amount"), ordering="amount_cents")
    def amount(self, add_on: AddOn) -> str:
        return format_money(add_on.amount_cents, add_on.amount_currency)

    def get_readonly_fields(self, request: HttpRequest, obj: AddOn | None = None):
        fields = list(super().get_readonly_fields(request, obj))
        return [*fields, "organization"] if obj is not None else fields

    def formfield_for_manytomany(self, db_field, request: HttpRequest, **kwargs):
        if db_field.name == "taxes":
            kwargs["queryset"] = _scoped(Tax.objects.all(), request).order_by("name")
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def save_model(self, request: HttpRequest, obj: AddOn, form: forms.ModelForm, change: bool):
        data = form.cleaned_data
        values = {
            "name": data["name"], "code": data["code"], "amount_cents": data["amount_cents"],
            "amount_currency": data["amount_currency"],
            "invoice_display_name": data.get("invoice_display_name") or "",
            "description": data.get("description") or "",
            "tax_codes": [tax.code for tax in data.get("taxes") or []],
        }  # fmt: skip
        if change:
            add_on_update(add_on=obj, values=values, actor=Actor.from_request(request))
        else:
            created = add_on_create(
                organization=data["organization"], **values, actor=Actor.from_request(request)
            )
            obj.pk = created.pk
            obj._state.adding = False
        obj.refresh_from_db()

    def save_related(self, request: HttpRequest, form: forms.ModelForm, formsets, change: bool):
        """The taxes were set by the service."""

    def destroy(self, obj: AddOn, *, actor: Actor) -> None:
        add_on_destroy(add_on=obj, actor=actor, now=timezone.now())


# --- coupons -----------------------------------------------------------------------------------

COUPON_FORM_FIELDS = (
    "name", "code", "description", "coupon_type", "amount_currency", "percentage_rate",
    "frequency", "frequency_duration", "reusable", "expiration", "expiration_at",
)  # fmt: skip


class CouponForm(CatalogFormMixin, forms.ModelForm):
    amount = forms.DecimalField(
        label=_("Amount"),
        help_text=_("Fixed-amount coupons: in the currency's major unit, e.g. 10.00"),
        min_value=0,
        required=False,
    )
    amount_currency = forms.ChoiceField(
        label=_("Currency"), choices=CURRENCY_CHOICES, required=False
    )

    class Meta:
        model = Coupon
        fields = ("organization", *COUPON_FORM_FIELDS, "plans", "billable_metrics")

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        coupon = self.instance
        if not coupon._state.adding and coupon.amount_cents is not None and coupon.amount_currency:
            self.initial.setdefault("amount", to_major(coupon.amount_cents, coupon.amount_currency))

    def clean(self) -> dict:
        data = super().clean()
        organization = self.organization()
        if organization is None:
            return data
        data["amount_cents"] = _cents(self, data.get("amount"), data.get("amount_currency"))
        if data.get("plans") and data.get("billable_metrics"):
            self.add_error(None, _("Limit the coupon to plans or to billable metrics, not both."))
        related = [*(data.get("plans") or []), *(data.get("billable_metrics") or [])]
        if any(row.organization_id != organization.id for row in related):
            self.add_error(None, _("Plans and metrics must belong to the coupon's organization."))
        values = {field: getattr(self.instance, field) for field in COUPON_FORM_FIELDS}
        values["amount_cents"] = self.instance.amount_cents
        values.update({f: data.get(f) for f in COUPON_FORM_FIELDS if f in self.fields})
        if "amount" in self.fields:
            values["amount_cents"] = data["amount_cents"]
        values["amount_currency"] = values.get("amount_currency") or None
        instance = self.instance if self.instance.organization_id else None
        errors = coupon_errors(
            organization=organization, values=values, now=timezone.now(), instance=instance
        )
        if instance is not None and values.get("expiration_at") == instance.expiration_at:
            errors.pop("expiration_at", None)  # a stored date may have passed since
        if "amount_cents" in errors:
            errors["amount"] = errors.pop("amount_cents")
        add_service_errors(self, errors)
        return data

    def validate_unique(self) -> None:
        """Code uniqueness is the service's check (its message is the one shown)."""


@admin.register(Coupon)
class CouponAdmin(SoftDeleteAdminMixin, OrganizationAdmin):
    form = CouponForm
    list_display = ("name", "code", "coupon_type", "value", "frequency", "status",
                    "expiration_at", "organization")  # fmt: skip
    list_filter = ("coupon_type", "status", "frequency", "expiration", "reusable",
                   ORGANIZATION_FILTER)  # fmt: skip
    search_fields = ("name", "code", "description")
    list_select_related = ("organization",)
    readonly_fields = ("id", "status", "terminated_at", "created_at", "updated_at")
    filter_horizontal = ("plans", "billable_metrics")
    actions = ("terminate",)
    fieldsets = (
        (None, {"fields": ("organization", "name", "code", "description")}),
        (_("Discount"), {"fields": ("coupon_type", "amount", "amount_currency",
                                    "percentage_rate")}),
        (_("Frequency"), {"fields": ("frequency", "frequency_duration", "reusable")}),
        (_("Expiration"), {"fields": ("expiration", "expiration_at", "status",
                                      "terminated_at")}),
        (_("Limited to"), {"fields": ("plans", "billable_metrics")}),
        (_("Record"), {"fields": ("id", "created_at", "updated_at"), "classes": ("collapse",)}),
    )  # fmt: skip

    @admin.display(description=_("Amount"))
    def amount(self, coupon: Coupon) -> str:
        if coupon.amount_cents is None or not coupon.amount_currency:
            return "—"
        return format_money(coupon.amount_cents, coupon.amount_currency)

    @admin.display(description=_("Value"))
    def value(self, coupon: Coupon) -> str:
        if coupon.coupon_type == CouponType.PERCENTAGE and coupon.percentage_rate is not None:
            return f"{coupon.percentage_rate.normalize():f} %"
        return self.amount(coupon)

    def get_readonly_fields(self, request: HttpRequest, obj: Coupon | None = None):
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None:
            fields.append("organization")
            if coupon_is_applied(obj):
                # spec §15.1: applied coupons keep their terms; only name, text, expiration
                fields += ["code", "coupon_type", "amount", "amount_currency",
                           "percentage_rate", "frequency", "frequency_duration", "reusable",
                           "plans", "billable_metrics"]  # fmt: skip
        return fields

    def formfield_for_manytomany(self, db_field, request: HttpRequest, **kwargs):
        if db_field.name in ("plans", "billable_metrics"):
            model = db_field.related_model
            queryset = _scoped(model.objects.filter(deleted_at__isnull=True), request)
            if db_field.name == "plans":
                queryset = queryset.filter(parent__isnull=True)
            kwargs["queryset"] = queryset.order_by("code")
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def save_model(self, request: HttpRequest, obj: Coupon, form: forms.ModelForm, change: bool):
        data = form.cleaned_data
        values = {f: data[f] for f in COUPON_FORM_FIELDS if f in data}
        if "amount" in data:
            values["amount_cents"] = data.get("amount_cents")
        if "amount_currency" in values:
            values["amount_currency"] = values["amount_currency"] or None
        if "plans" in data:
            values["applies_to"] = {
                "plan_codes": [plan.code for plan in data["plans"]],
                "billable_metric_codes": [metric.code for metric in data["billable_metrics"]],
            }
        now = timezone.now()
        if change:
            coupon_update(coupon=obj, values=values, actor=Actor.from_request(request), now=now)
        else:
            created = coupon_create(
                organization=data["organization"],
                actor=Actor.from_request(request),
                now=now,
                **values,
            )
            obj.pk = created.pk
            obj._state.adding = False
        obj.refresh_from_db()

    def save_related(self, request: HttpRequest, form: forms.ModelForm, formsets, change: bool):
        """The limitations were set by the service."""

    def destroy(self, obj: Coupon, *, actor: Actor) -> None:
        coupon_destroy(coupon=obj, actor=actor, now=timezone.now())

    @admin.action(description=_("Terminate selected coupons"), permissions=["change"])
    def terminate(self, request: HttpRequest, queryset: QuerySet) -> None:
        report, now = ActionReport(self, request, "terminated"), timezone.now()
        for coupon in queryset:
            report.attempt(coupon, coupon_terminate, coupon=coupon, actor=report.actor, now=now)
        report.send()
