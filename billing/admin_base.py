"""Admin building blocks every app's admin uses: tenancy scoping, panels, money display, errors
in words, action reports."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from django.contrib import admin, messages
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html

from billing.actors import Actor
from billing.errors import DomainError, Invalid, NotAllowed, NotFound
from billing.models import Organization
from billing.money import format_money


def staff_organizations(request: HttpRequest) -> QuerySet[Organization]:
    """Organizations a staff member may see: all for superusers, else their memberships."""
    if request.user.is_superuser:
        return Organization.objects.all()
    return Organization.objects.filter(memberships__user=request.user)


class OrganizationAdmin(admin.ModelAdmin):
    """Scopes the changelist, lookups and organization choices to the staff member's orgs."""

    organization_field = "organization"

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        return queryset.filter(**{f"{self.organization_field}__in": staff_organizations(request)})

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.related_model is Organization:
            kwargs["queryset"] = staff_organizations(request)
            if "initial" not in kwargs and kwargs["queryset"].count() == 1:
                kwargs["initial"] = kwargs["queryset"].first()
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class ActionReport:
    """Runs a service per object for an admin action and sums up the outcome in one message."""

    def __init__(self, model_admin: admin.ModelAdmin, request: HttpRequest, verb: str) -> None:
        self.model_admin, self.request, self.verb = model_admin, request, verb
        self.actor = Actor.from_request(request)  # the staff user, passed to each service
        self.done: list[str] = []
        self.refused: list[str] = []

    def attempt(self, obj: object, service, **kwargs: object) -> object | None:
        try:
            result = service(**kwargs)
        except DomainError as exc:
            self.refused.append(f"{obj} ({exc})")
            return None
        self.model_admin.log_change(self.request, obj, f"{self.verb} via admin action")
        self.done.append(str(obj))
        return result

    def send(self) -> None:
        if self.done:
            self.model_admin.message_user(
                self.request, f"{len(self.done)} {self.verb}.", messages.SUCCESS
            )
        if self.refused:
            self.model_admin.message_user(
                self.request,
                f"{len(self.refused)} refused: " + "; ".join(self.refused),
                messages.WARNING,
            )


# --- pages made of panels ---------------------------------------------------------------------


@dataclass
class Panel:
    """One section of a page made of panels (the customer 360 page)."""

    title: str
    template: str
    context: dict = field(default_factory=dict)
    actions: list[tuple[str, str]] = field(default_factory=list)  # (label, url) buttons


# (request, the page's object) -> its panel, or None to show nothing
PanelProvider = Callable[[HttpRequest, Model], Panel | None]


def admin_change_url(obj: Model) -> str | None:
    """The admin page of a row, or None when its model has no admin page."""
    opts = obj._meta
    try:
        return reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
    except NoReverseMatch:
        return None


# --- display ----------------------------------------------------------------------------------


def money_html(cents: int | None, currency: str) -> str:
    """An amount for a table cell: formatted by `billing.money`, aligned by the `money` class."""
    return format_html('<span class="money">{}</span>', format_money(cents, currency))


_HUMAN_CODES = {
    "plan_overlapping": "another active coupon of this customer is limited to the same plans "
    "or billable metrics",
    "coupon_is_not_reusable": "this coupon can be applied only once to a customer",
    "currencies_does_not_match": "the currency differs from the customer's currency, which is "
    "fixed once subscriptions, fixed coupons, wallets or invoices exist",
    "coupon_not_found": "the coupon is no longer active (terminated, expired or deleted)",
    "customer_not_found": "the customer was deleted",
}


def describe_code(code: str) -> str:
    """An error code in words for staff: "value_already_exist" -> "value already exist"."""
    return _HUMAN_CODES.get(code, code.replace("_", " "))


def describe(exc: DomainError) -> str:
    """A domain error in words for staff (the API shows the codes)."""
    match exc:
        case NotFound():
            return describe_code(f"{exc.resource}_not_found")
        case NotAllowed():
            return describe_code(exc.code)
        case Invalid():
            return "; ".join(
                f"{field_name.replace('_', ' ')}: " + ", ".join(map(describe_code, codes))
                for field_name, codes in exc.details.items()
            )
    return str(exc)
