"""Customer admin: the list finance staff search, and the customer 360 page (spec §3, §15.2).

The change page of a customer is its 360° view: the panels the `customers.ports.customer_360_panels`
port lists (the customer's summary, subscriptions, applied coupons and taxes from
`customers.presenters`, then the panels of the apps to the right), then the editable profile with
its metadata inline.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from decimal import Decimal
from zoneinfo import available_timezones

from babel import Locale
from django import forms
from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Field, Prefetch, Q, QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone

from billing.actors import Actor
from billing.admin_audit import ActivityTimelineMixin
from billing.admin_base import (
    ActionReport,
    DateRangeFilter,
    OrganizationAdmin,
    PanelProvider,
    TabularInline,
    ThemedFormMixin,
    describe,
    describe_code,
    staff_organizations,
    with_quiet_line,
)
from billing.admin_export import StreamingExportMixin
from billing.errors import DomainError
from billing.models import BillingEntity, DocumentLocale, Organization
from billing.money import CURRENCIES, amount_to_cents
from customers import ports
from customers.admin.exports import CustomerResource
from customers.models import AppliedCoupon, Customer, CustomerMetadata, Subscription
from customers.presenters import can_change_customer, coupon_value
from customers.selectors import coupon_applicable_list
from customers.services.applied_coupons import applied_coupon_create, applied_coupon_terminate
from customers.services.customers import (
    COUNTRY_CODES,
    SHIPPING_ADDRESS_KEYS,
    customer_create,
    customer_destroy,
    customer_update,
    customer_validate,
)
from plans.models import Coupon, CouponFrequency, Tax

# --- forms ------------------------------------------------------------------------------------

_INHERIT = [("", "— inherit from the billing entity —")]


def _country_choices() -> list[tuple[str, str]]:
    names = Locale("en").territories
    countries = sorted(
        ((code, f"{names.get(code, code)} ({code})") for code in COUNTRY_CODES),
        key=lambda choice: choice[1],
    )
    return [("", "—"), *countries]


class CustomerAdminForm(forms.ModelForm):
    """The profile form; its values go through the customer services and their validation."""

    country = forms.ChoiceField(choices=_country_choices, required=False)
    currency = forms.ChoiceField(
        choices=lambda: (
            [("", "— set by the first plan or coupon —")] + [(c, c) for c in sorted(CURRENCIES)]
        ),
        required=False,
    )
    timezone = forms.ChoiceField(
        choices=lambda: _INHERIT + [(tz, tz) for tz in sorted(available_timezones())],
        required=False,
    )
    document_locale = forms.ChoiceField(choices=_INHERIT + DocumentLocale.choices, required=False)
    subscription_invoice_issuing_date_anchor = forms.ChoiceField(
        choices=_INHERIT + BillingEntity.IssuingDateAnchor.choices, required=False
    )
    subscription_invoice_issuing_date_adjustment = forms.ChoiceField(
        choices=_INHERIT + BillingEntity.IssuingDateAdjustment.choices, required=False
    )
    shipping_address_line1 = forms.CharField(required=False, label="Address line 1")
    shipping_address_line2 = forms.CharField(required=False, label="Address line 2")
    shipping_zipcode = forms.CharField(required=False, label="Zipcode")
    shipping_city = forms.CharField(required=False, label="City")
    shipping_state = forms.CharField(required=False, label="State")
    shipping_country = forms.ChoiceField(choices=_country_choices, required=False, label="Country")

    class Meta:
        model = Customer
        fields = (
            "organization", "billing_entity", "external_id", "name", "firstname", "lastname",
            "legal_name", "legal_number", "account_type", "customer_type",
            "tax_identification_number", "email", "phone", "url", "logo_url", "address_line1",
            "address_line2", "zipcode", "city", "state", "country", "currency", "timezone",
            "document_locale", "net_payment_term", "invoice_grace_period",
            "finalize_zero_amount_invoice", "skip_invoice_custom_sections", "taxes",
        )  # fmt: skip

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        if "billing_entity" in self.fields:
            self.fields["billing_entity"].required = False
            self.fields["billing_entity"].help_text = "Empty: the default billing entity."
        customer = self.instance
        if not customer._state.adding:
            config = customer.billing_configuration or {}
            shipping = customer.shipping_address or {}
            for key in (
                "subscription_invoice_issuing_date_anchor",
                "subscription_invoice_issuing_date_adjustment",
            ):
                self.initial[key] = config.get(key) or ""
            for key in SHIPPING_ADDRESS_KEYS:
                self.initial[f"shipping_{key}"] = shipping.get(key) or ""

    def _organization(self) -> Organization | None:
        if not self.instance._state.adding:
            return self.instance.organization
        return self.cleaned_data.get("organization")

    def service_values(self) -> dict:
        """The cleaned form as the customer services take it (Lago-shaped values)."""
        data = self.cleaned_data
        text = (
            "external_id", "name", "firstname", "lastname", "legal_name", "legal_number",
            "tax_identification_number", "email", "phone", "url", "logo_url", "address_line1",
            "address_line2", "zipcode", "city", "state", "country", "currency", "timezone",
        )  # fmt: skip
        values: dict = {name: data.get(name) or "" for name in text if name in data}
        values.update(
            account_type=data.get("account_type") or Customer.AccountType.CUSTOMER,
            customer_type=data.get("customer_type") or None,
            net_payment_term=data.get("net_payment_term"),
            finalize_zero_amount_invoice=data.get("finalize_zero_amount_invoice") or "inherit",
            skip_invoice_custom_sections=bool(data.get("skip_invoice_custom_sections")),
            shipping_address={
                key: data.get(f"shipping_{key}") or None for key in SHIPPING_ADDRESS_KEYS
            },
            billing_configuration={
                "invoice_grace_period": data.get("invoice_grace_period"),
                "document_locale": data.get("document_locale") or None,
                "subscription_invoice_issuing_date_anchor": (
                    data.get("subscription_invoice_issuing_date_anchor") or None
                ),
                "subscription_invoice_issuing_date_adjustment": (
                    data.get("subscription_invoice_issuing_date_adjustment") or None
                ),
            },
            tax_codes=[tax.code for tax in data.get("taxes") or []],
        )
        entity = data.get("billing_entity")
        if entity is not None:
            values["billing_entity_code"] = entity.code
        return values

    def clean(self) -> dict:
        cleaned = super().clean()
        organization = self._organization()
        if organization is None:
            return cleaned
        entity = cleaned.get("billing_entity")
        if entity is not None and entity.organization_id != organization.pk:
            self.add_error("billing_entity", "This billing entity belongs to another organization.")
        foreign = [t for t in cleaned.get("taxes") or [] if t.organization_id != organization.pk]
        if foreign:
            self.add_error("taxes", "These taxes belong to another organization.")
        if self.errors:
            return cleaned
        customer = None if self.instance._state.adding else self.instance
        errors = customer_validate(
            organization=organization, values=self.service_values(), customer=customer
        )
        if customer is None and (
            Customer.objects.for_organization(organization)
            .alive()
            .filter(external_id=cleaned.get("external_id"))
            .exists()
        ):
            errors["external_id"] = ["value_already_exist"]
        for name, codes in errors.items():
            message = ", ".join(map(describe_code, codes))
            self.add_error(name if name in self.fields else None, f"{name}: {message}")
        return cleaned


class MetadataFormSet(BaseInlineFormSet):
    """Metadata rows of the form, as the replace-whole-list input of the service (§3.1)."""

    def service_items(self) -> list[dict]:
        items = []
        for form in self.forms:
            data = getattr(form, "cleaned_data", None)
            if not data or data.get("DELETE") or not data.get("key"):
                continue
            items.append(
                {
                    "id": None if form.instance._state.adding else str(form.instance.pk),
                    "key": data["key"],
                    "value": data["value"],
                    "display_in_invoice": bool(data.get("display_in_invoice")),
                }
            )
        return items


class CustomerMetadataInline(TabularInline):
    model = CustomerMetadata
    formset = MetadataFormSet
    fields = ("key", "value", "display_in_invoice")
    extra = 0
    max_num = 5  # spec §3.1
    verbose_name = "metadata pair"
    verbose_name_plural = "Metadata (key < 20 characters, value < 100, at most 5 pairs)"


class ApplyCouponForm(ThemedFormMixin, forms.Form):
    """Applies a coupon, optionally with customer-specific terms (spec §15.2)."""

    coupon = forms.ModelChoiceField(queryset=Coupon.objects.none())
    amount = forms.DecimalField(
        required=False, min_value=Decimal(0), help_text="Fixed coupons: overrides the amount."
    )
    amount_currency = forms.ChoiceField(required=False, label="Currency")
    percentage_rate = forms.DecimalField(
        required=False, min_value=Decimal(0), max_value=Decimal(100), label="Percentage rate"
    )
    frequency = forms.ChoiceField(
        required=False, choices=[("", "— the coupon's —"), *CouponFrequency.choices]
    )
    frequency_duration = forms.IntegerField(
        required=False, min_value=1, label="Periods", help_text="Recurring coupons only."
    )

    def __init__(self, *args: object, customer: Customer, now: datetime, **kwargs: object):
        super().__init__(*args, **kwargs)
        self.fields["coupon"].queryset = coupon_applicable_list(
            organization=customer.organization, now=now
        )
        self.fields["amount_currency"].choices = [("", "— the coupon's —")] + [
            (c, c) for c in sorted(CURRENCIES)
        ]

    def service_terms(self) -> dict:
        data = self.cleaned_data
        coupon: Coupon = data["coupon"]
        currency = data.get("amount_currency") or coupon.amount_currency or None
        amount = data.get("amount")
        return {
            "amount_cents": amount_to_cents(amount, currency or "USD")
            if amount is not None
            else None,
            "amount_currency": data.get("amount_currency") or None,
            "percentage_rate": data.get("percentage_rate"),
            "frequency": data.get("frequency") or None,
            "frequency_duration": data.get("frequency_duration"),
        }


# --- list filters -----------------------------------------------------------------------------


class LifecycleFilter(admin.SimpleListFilter):
    """Alive customers unless asked otherwise: deleted ones keep their history (§3)."""

    title = "lifecycle"
    parameter_name = "lifecycle"

    def lookups(
        self, request: HttpRequest, model_admin: admin.ModelAdmin
    ) -> tuple[tuple[str, str], ...]:
        return (("deleted", "Deleted"), ("all", "All"))

    def choices(self, changelist: ChangeList) -> Iterator[dict]:
        yield {
            "selected": self.value() is None,
            "query_string": changelist.get_query_string(remove=[self.parameter_name]),
            "display": "Active",
        }
        for value, label in self.lookup_choices:
            yield {
                "selected": self.value() == value,
                "query_string": changelist.get_query_string({self.parameter_name: value}),
                "display": label,
            }

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "deleted":
            return queryset.filter(deleted_at__isnull=False)
        if self.value() == "all":
            return queryset
        return queryset.filter(deleted_at__isnull=True)


# --- the admin --------------------------------------------------------------------------------


def _shipping_display(key: str, label: str) -> Callable[[admin.ModelAdmin, Customer], str]:
    @admin.display(description=label)
    def display(model_admin: admin.ModelAdmin, customer: Customer) -> str:
        return (customer.shipping_address or {}).get(key) or "—"

    return display


def _configuration_display(key: str, label: str) -> Callable[[admin.ModelAdmin, Customer], str]:
    @admin.display(description=label)
    def display(model_admin: admin.ModelAdmin, customer: Customer) -> str:
        return (customer.billing_configuration or {}).get(key) or "inherited"

    return display


@admin.register(Customer)
class CustomerAdmin(ActivityTimelineMixin, StreamingExportMixin, OrganizationAdmin):
    resource_classes = (CustomerResource,)
    export_name = "customers"
    form = CustomerAdminForm
    inlines = (CustomerMetadataInline,)
    # the external id under the name and dates without their time: fits a 1280 px screen
    list_display = ("name_and_external_id", "email", "country", "currency", "billing_entity",
                    "active_subscriptions", "active_coupons", "created")  # fmt: skip
    list_display_links = ("name_and_external_id",)
    list_filter = (
        LifecycleFilter,
        "country",
        "currency",
        "account_type",
        "customer_type",
        ("billing_entity", admin.RelatedOnlyFieldListFilter),
        ("created_at", DateRangeFilter),
    )
    search_fields = ("external_id", "name", "firstname", "lastname", "email", "legal_name")
    list_select_related = ("billing_entity", "organization")
    readonly_fields = ("lago_id", "sequential_id", "slug", "created_at", "updated_at",
                       "deleted_at")  # fmt: skip
    filter_horizontal = ("taxes",)
    actions = ("soft_delete",)
    change_form_template = "admin/customers/customer/change_form.html"
    ordering = ("-created_at",)

    def get_list_display(self, request: HttpRequest) -> tuple:
        # the billing entity column only where there is a choice of entity
        entities = BillingEntity.objects.filter(
            organization__in=staff_organizations(request, Customer)
        )
        if entities[:2].count() > 1:
            return self.list_display
        return tuple(column for column in self.list_display if column != "billing_entity")

    def search_result_detail(self, customer: Customer) -> str:
        """The line under a customer in the header search's results."""
        return " · ".join(filter(None, (customer.external_id, customer.email, customer.currency)))

    @staticmethod
    def panels() -> tuple[PanelProvider, ...]:
        """The 360 panels in page order, as composed by the rightmost app (`customers.ports`)."""
        return ports.customer_360_panels()

    def get_fieldsets(self, request: HttpRequest, obj: Customer | None = None) -> tuple:
        identity = ["billing_entity", "external_id", "name", "firstname", "lastname",
                    "legal_name", "legal_number", "account_type", "customer_type",
                    "tax_identification_number"]  # fmt: skip
        if obj is None:
            identity.insert(0, "organization")
        return (
            ("Identity", {"fields": identity}),
            ("Contact", {"fields": ("email", "phone", "url", "logo_url")}),
            ("Billing address", {"fields": ("address_line1", "address_line2", "zipcode",
                                            "city", "state", "country")}),
            ("Shipping address", {"fields": ("shipping_address_line1", "shipping_address_line2",
                                             "shipping_zipcode", "shipping_city",
                                             "shipping_state", "shipping_country"),
                                  "classes": ("collapse",)}),
            ("Invoicing (empty: inherited from the billing entity)", {"fields": (
                "currency", "timezone", "document_locale", "net_payment_term",
                "invoice_grace_period", "finalize_zero_amount_invoice",
                "subscription_invoice_issuing_date_anchor",
                "subscription_invoice_issuing_date_adjustment", "skip_invoice_custom_sections",
                "taxes")}),
            ("Record", {"fields": self.readonly_fields, "classes": ("collapse",)}),
        )  # fmt: skip

    def get_readonly_fields(self, request: HttpRequest, obj: Customer | None = None) -> list:
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None:
            fields.append("external_id")  # the key of the customer in the API
        return fields

    def has_change_permission(self, request: HttpRequest, obj: Customer | None = None) -> bool:
        if obj is not None and obj.deleted_at is not None:
            return False  # a deleted customer is history: read only
        return super().has_change_permission(request, obj)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return (
            super()
            .get_queryset(request)
            .annotate(
                _active_subscriptions=Count(
                    "subscriptions",
                    filter=Q(subscriptions__status=Subscription.Status.ACTIVE),
                    distinct=True,
                )
            )
            .prefetch_related(
                Prefetch(
                    "applied_coupons",
                    queryset=AppliedCoupon.objects.filter(status=AppliedCoupon.Status.ACTIVE)
                    .select_related("coupon")
                    .order_by("created_at"),
                    to_attr="_active_applied_coupons",
                )
            )
        )

    def formfield_for_foreignkey(
        self, db_field: Field, request: HttpRequest, **kwargs: object
    ) -> forms.Field | None:
        if db_field.related_model is BillingEntity:
            kwargs["queryset"] = BillingEntity.objects.filter(
                organization__in=staff_organizations(request)
            ).select_related("organization")
        formfield = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if db_field.related_model is BillingEntity and formfield is not None:
            # billing entities are managed on their own page, not from a customer
            widget = formfield.widget
            widget.can_add_related = widget.can_change_related = widget.can_delete_related = False
        return formfield

    def formfield_for_manytomany(
        self, db_field: Field, request: HttpRequest, **kwargs: object
    ) -> forms.Field | None:
        if db_field.related_model is Tax:
            kwargs["queryset"] = Tax.objects.filter(organization__in=staff_organizations(request))
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    # Read-only renderings of the form's extra fields (view-only staff, deleted customers).
    shipping_address_line1 = _shipping_display("address_line1", "Address line 1")
    shipping_address_line2 = _shipping_display("address_line2", "Address line 2")
    shipping_zipcode = _shipping_display("zipcode", "Zipcode")
    shipping_city = _shipping_display("city", "City")
    shipping_state = _shipping_display("state", "State")
    shipping_country = _shipping_display("country", "Country")
    subscription_invoice_issuing_date_anchor = _configuration_display(
        "subscription_invoice_issuing_date_anchor", "Issuing date anchor"
    )
    subscription_invoice_issuing_date_adjustment = _configuration_display(
        "subscription_invoice_issuing_date_adjustment", "Issuing date adjustment"
    )

    @admin.display(description="Name", ordering="name")
    def display_name(self, customer: Customer) -> str:
        person = " ".join(p for p in (customer.firstname, customer.lastname) if p)
        return customer.name or customer.legal_name or person or "—"

    @admin.display(description="Customer", ordering="name")
    def name_and_external_id(self, customer: Customer) -> str:
        return with_quiet_line(self.display_name(customer), customer.external_id)

    @admin.display(description="Created", ordering="created_at")
    def created(self, customer: Customer) -> str:
        return customer.created_at.date().isoformat()

    @admin.display(description="Subscriptions", ordering="_active_subscriptions")
    def active_subscriptions(self, customer: Customer) -> int:
        return customer._active_subscriptions

    @admin.display(description="Coupons")
    def active_coupons(self, customer: Customer) -> str:
        return ", ".join(coupon_value(a) for a in customer._active_applied_coupons) or "—"

    @admin.display(description="Lago ID")
    def lago_id(self, customer: Customer) -> str:
        return customer.lago_id

    @classmethod
    def can_change(cls, request: HttpRequest, customer: Customer) -> bool:
        return can_change_customer(request, customer)

    # Writes go through the services: one call with the profile and its metadata.

    def save_model(
        self, request: HttpRequest, obj: Customer, form: CustomerAdminForm, change: bool
    ) -> None:
        """Saved by `save_related`, which also has the metadata inline."""

    def save_related(
        self, request: HttpRequest, form: CustomerAdminForm, formsets: list, change: bool
    ) -> None:
        values = form.service_values()
        for formset in formsets:
            if isinstance(formset, MetadataFormSet):
                values["metadata"] = formset.service_items()
            # What the admin's change message reads after a formset save.
            formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        if change:
            values.pop("external_id", None)
            customer = customer_update(
                customer=form.instance, values=values, actor=Actor.from_request(request)
            )
        else:
            customer = customer_create(
                organization=form.cleaned_data["organization"],
                values=values,
                actor=Actor.from_request(request),
            )
        form.instance.pk = customer.pk
        form.instance._state.adding = False
        form.instance.refresh_from_db()

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict | None = None,
    ) -> HttpResponse:
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except DomainError as exc:  # changed concurrently since the form was validated
            self.message_user(request, f"Not saved: {describe(exc)}", messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict,
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Customer | None = None,
    ) -> HttpResponse:
        if obj is not None and not obj._state.adding:
            context["title"] = "Customer 360"
            context["customer_360_panels"] = [
                panel for provider in self.panels() if (panel := provider(request, obj))
            ]
            context["customer"] = obj
        return super().render_change_form(request, context, add, change, form_url, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Customer | None = None) -> bool:
        return False  # customers are soft deleted by the action below, never removed

    def has_soft_delete_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("customers.delete_customer")

    @admin.action(
        description="Delete selected customers (terminates subscriptions and coupons)",
        permissions=["soft_delete"],
    )
    def soft_delete(self, request: HttpRequest, queryset: QuerySet) -> None:
        report, now = ActionReport(self, request, "deleted"), timezone.now()
        for customer in queryset.filter(deleted_at__isnull=True):
            report.attempt(
                customer, customer_destroy, customer=customer, actor=report.actor, now=now
            )
        report.send()

    # Coupon actions of the 360 page.

    def get_urls(self) -> list:
        view = self.admin_site.admin_view
        return [
            path("<path:object_id>/apply-coupon/", view(self.apply_coupon_view),
                 name="customers_customer_apply_coupon"),
            path("<path:object_id>/applied-coupons/<uuid:applied_coupon_id>/terminate/",
                 view(self.terminate_coupon_view), name="customers_customer_terminate_coupon"),
            *super().get_urls(),
        ]  # fmt: skip

    def _changeable_customer(self, request: HttpRequest, object_id: str) -> Customer:
        customer = get_object_or_404(self.get_queryset(request), pk=object_id)
        if customer.deleted_at is not None or not self.can_change(request, customer):
            raise PermissionDenied
        return customer

    def apply_coupon_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        customer = self._changeable_customer(request, object_id)
        now = timezone.now()
        form = ApplyCouponForm(request.POST or None, customer=customer, now=now)
        if request.method == "POST" and form.is_valid():
            try:
                applied = applied_coupon_create(
                    customer=customer,
                    coupon=form.cleaned_data["coupon"],
                    actor=Actor.from_request(request),
                    now=now,
                    **form.service_terms(),
                )
            except DomainError as exc:
                form.add_error(None, describe(exc))
            else:
                self.log_change(request, customer, f"Applied coupon {applied.coupon.code}")
                self.message_user(
                    request, f"Coupon {applied.coupon} applied to {customer}.", messages.SUCCESS
                )
                return HttpResponseRedirect(
                    reverse("admin:customers_customer_change", args=[customer.pk])
                )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "customer": customer,
            "form": form,
            "title": f"Apply a coupon to {customer}",
        }
        return TemplateResponse(request, "admin/customers/customer/apply_coupon.html", context)

    def terminate_coupon_view(
        self, request: HttpRequest, object_id: str, applied_coupon_id: str
    ) -> HttpResponse:
        customer = self._changeable_customer(request, object_id)
        if request.method != "POST":
            raise PermissionDenied
        applied = get_object_or_404(customer.applied_coupons, pk=applied_coupon_id)
        applied_coupon_terminate(
            applied_coupon=applied, actor=Actor.from_request(request), now=timezone.now()
        )
        self.log_change(request, customer, f"Terminated applied coupon {applied.coupon.code}")
        self.message_user(request, f"Coupon {applied.coupon} terminated.", messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:customers_customer_change", args=[customer.pk]))
