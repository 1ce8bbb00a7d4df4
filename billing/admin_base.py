"""Admin building blocks every app's admin uses: the theme's bases (unfold), role and tenancy
scoping, panels, money display, errors in words, action reports.

Every admin class derives from `ModelAdmin` / `OrganizationAdmin` and every inline from
`TabularInline` / `StackedInline` here: they carry the theme and ask the staff member's role, per
organization, before showing or changing a row (`billing/roles.py`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_permission_codename
from django.core.exceptions import PermissionDenied
from django.db.models import Count, DateTimeField, Model, QuerySet, Sum
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString
from unfold.admin import ModelAdmin as ThemedModelAdmin
from unfold.admin import StackedInline as ThemedStackedInline
from unfold.admin import TabularInline as ThemedTabularInline
from unfold.contrib.filters.admin import RangeDateFilter
from unfold.widgets import (
    CHECKBOX_CLASSES,
    INPUT_CLASSES,
    SELECT_CLASSES,
    TEXTAREA_CLASSES,
    UnfoldAdminCheckboxSelectMultipleWidget,
)

from billing.activity import is_logged_model, record_activity, recorded_in_this_request
from billing.actors import Actor
from billing.errors import DomainError, Invalid, NotAllowed, NotFound
from billing.models import Membership, Organization
from billing.money import format_money
from billing.outbox import object_type_of
from billing.roles import role_allows, user_role


def staff_organizations(
    request: HttpRequest, model: type[Model] | None = None, action: str = "view"
) -> QuerySet[Organization]:
    """Organizations a staff member may see: all for superusers, else their memberships; with a
    model, only those where their role may `action` its rows."""
    if request.user.is_superuser:
        return Organization.objects.all()
    memberships = Membership.objects.filter(user=request.user)
    if model is None:
        return Organization.objects.filter(pk__in=memberships.values("organization_id"))
    opts = model._meta
    allowed = [
        organization_id
        for organization_id, role in memberships.values_list("organization_id", "role")
        if role_allows(role, opts.app_label, opts.model_name, action)
        or (action == "view" and role_allows(role, opts.app_label, opts.model_name, "change"))
    ]
    return Organization.objects.filter(pk__in=allowed)


def staff_may(
    request: HttpRequest, action: str, model: type[Model], obj: Model | None = None
) -> bool:
    """Whether the staff member may `action` ("view", "add", "change", "delete") rows of `model`,
    and this row when given: the role held in the row's organization decides."""
    opts = model._meta
    perm = f"{opts.app_label}.{get_permission_codename(action, opts)}"
    user = request.user
    return user.has_perm(perm) and (obj is None or user.has_perm(perm, obj))


def staff_may_in(
    request: HttpRequest, action: str, model: type[Model], organization_id: object
) -> bool:
    """Whether the staff member may `action` rows of `model` in one organization (a row to
    create there: its role in that organization decides)."""
    opts = model._meta
    user = request.user
    if not user.has_perm(f"{opts.app_label}.{get_permission_codename(action, opts)}"):
        return False
    if user.is_superuser:
        return True
    role = user_role(user, organization_id)
    return role is not None and role_allows(role, opts.app_label, opts.model_name, action)


class ThemeMixin:
    """The theme's widgets for fields declared on forms; multiple choices as a checkbox list
    (Django's two-pane selector does not fit the theme's columns)."""

    def formfield_for_manytomany(self, db_field, request: HttpRequest, **kwargs: object):
        if "widget" not in kwargs and db_field.name in (
            *self.filter_horizontal,
            *self.filter_vertical,
        ):
            kwargs["widget"] = UnfoldAdminCheckboxSelectMultipleWidget
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def get_form(self, request: HttpRequest, obj: Model | None = None, **kwargs: object):
        form = super().get_form(request, obj, **kwargs)
        theme_widgets(form.base_fields)
        return form

    def get_formset(self, request: HttpRequest, obj: Model | None = None, **kwargs: object):
        formset = super().get_formset(request, obj, **kwargs)
        theme_widgets(formset.form.base_fields)
        return formset


class RolePermissionsMixin:
    """has_*_permission from the role: model level from the role groups, object level from the
    role in the object's organization (inlines: the parent's)."""

    def _may(self, request: HttpRequest, action: str, obj: Model | None) -> bool:
        return staff_may(request, action, self.model, obj)

    def has_view_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return self._may(request, "view", obj) or self._may(request, "change", obj)

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return self._may(request, "change", obj)

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return self._may(request, "delete", obj)


class ModelAdmin(ThemeMixin, RolePermissionsMixin, ThemedModelAdmin):
    """The themed admin with role permissions; base of every admin class."""

    list_filter_submit = True  # range filters apply on a button, not on each keystroke
    warn_unsaved_form = True

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self._may(request, "add", None)

    # Every add, change and delete of the admin passes through these three (whatever
    # `save_model` does): the activity log records the ones no service recorded already.

    def log_addition(self, request: HttpRequest, obj: Model, message: object):
        entry = super().log_addition(request, obj, message)
        log_admin_activity(request, obj, "created")
        return entry

    def log_change(self, request: HttpRequest, obj: Model, message: object):
        entry = super().log_change(request, obj, message)
        log_admin_activity(request, obj, "updated")
        return entry

    def log_deletions(self, request: HttpRequest, queryset):
        entries = super().log_deletions(request, queryset)
        for obj in queryset:  # called before the deletion: the rows are still there
            log_admin_activity(request, obj, "deleted")
        return entries


def log_admin_activity(request: HttpRequest, obj: Model, verb: str) -> None:
    """An activity of a staff member's dashboard change, unless a service of this request
    already logged one for the object (a deletion is logged before the service runs; the
    service's own record of it merges into this one)."""
    if not is_logged_model(type(obj)):
        return
    organization_id = (
        obj.pk if isinstance(obj, Organization) else getattr(obj, "organization_id", None)
    )
    if organization_id is None:
        return  # not a tenant's row (staff accounts, beat schedules)
    resource_type = object_type_of(obj)
    if verb != "deleted" and recorded_in_this_request(
        resource_type=resource_type, resource_id=str(obj.pk)
    ):
        return
    record_activity(
        activity_type=f"{resource_type}.{verb}",
        actor=Actor.from_request(request),
        obj=obj,
        resource_type=resource_type,
    )


class TabularInline(ThemeMixin, RolePermissionsMixin, ThemedTabularInline):
    """A themed table inline; permissions follow the role in the parent's organization."""

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return self._may(request, "add", obj)


class StackedInline(ThemeMixin, RolePermissionsMixin, ThemedStackedInline):
    """A themed stacked inline; permissions follow the role in the parent's organization."""

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return self._may(request, "add", obj)


def theme_widgets(fields: dict[str, forms.Field]) -> None:
    """Gives plain widgets the theme's classes (the theme styles only the widgets it builds for
    model fields; fields declared on a form keep Django's bare widgets). Idempotent."""
    for form_field in fields.values():
        widget = form_field.widget
        if type(widget).__module__.startswith("unfold") or isinstance(
            widget, forms.HiddenInput | forms.RadioSelect | forms.CheckboxSelectMultiple
        ):
            continue
        if isinstance(widget, forms.CheckboxInput):
            classes = CHECKBOX_CLASSES
        elif isinstance(widget, forms.Select | forms.SelectMultiple):
            classes = SELECT_CLASSES
        elif isinstance(widget, forms.Textarea):
            classes = TEXTAREA_CLASSES
        elif isinstance(widget, forms.widgets.Input):
            classes = INPUT_CLASSES
        else:
            continue
        existing = widget.attrs.get("class", "").split()
        if classes[0] not in existing:
            widget.attrs["class"] = " ".join([*existing, *classes])


class DateRangeFilter(RangeDateFilter):
    """A from/to day filter, both days included; an instant counts by its UTC day (the list's
    dates are shown in UTC)."""

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet | None:
        if not isinstance(self.field, DateTimeField):
            return super().queryset(request, queryset)
        lookups = {}
        for suffix, lookup in (("_from", "gte"), ("_to", "lte")):
            value = self.used_parameters.get(f"{self.parameter_name}{suffix}")
            if isinstance(value, str) and value:
                try:
                    lookups[f"{self.parameter_name}__date__{lookup}"] = date.fromisoformat(value)
                except ValueError:
                    return None
        return queryset.filter(**lookups)


class ThemedFormMixin:
    """A plain form (the admin's own pages: top-ups, coupon application, plan changes) in the
    theme's look."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        theme_widgets(self.fields)


class OrganizationAdmin(ModelAdmin):
    """Scopes the changelist, lookups and organization choices to the staff member's orgs."""

    organization_field = "organization"

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        # only the organizations where the role opens this page (a finance member of one
        # organization who is admin of another sees the other's API keys, not the first's)
        organizations = staff_organizations(request, self.model)
        return queryset.filter(**{f"{self.organization_field}__in": organizations})

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.related_model is Organization:
            kwargs["queryset"] = staff_organizations(request, self.model, "add")
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
        if isinstance(obj, Model) and not staff_may(self.request, "change", type(obj), obj):
            self.refused.append(f"{obj} (not allowed for your role in its organization)")
            return None
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


class ListTotalsMixin:
    """Totals of the rows the list's filters and search select (all pages, not only the one
    shown), one line per currency, above the list.

    `list_totals` names the amounts: (label, cents field); `list_totals_currency` the currency
    field of the rows.
    """

    list_totals: tuple[tuple[str, str], ...] = ()
    list_totals_currency = "currency"
    list_before_template = "admin/billing/list_totals.html"

    def list_totals_of(self, queryset: QuerySet) -> list[dict]:
        """[{"currency", "count", "amounts": [(label, formatted)]}] for `queryset`."""
        sums = {f"_sum_{i}": Sum(field) for i, (_, field) in enumerate(self.list_totals)}
        rows = (
            queryset.order_by()
            .values(self.list_totals_currency)
            .annotate(_count=Count("pk"), **sums)
            .order_by(self.list_totals_currency)
        )
        return [
            {
                "currency": row[self.list_totals_currency],
                "count": row["_count"],
                "amounts": [
                    (label, format_money(row[f"_sum_{i}"] or 0, row[self.list_totals_currency]))
                    for i, (label, _) in enumerate(self.list_totals)
                ],
            }
            for row in rows
        ]

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None):
        response = super().changelist_view(request, extra_context)
        context = getattr(response, "context_data", None) or {}
        changelist = context.get("cl")
        if changelist is not None:
            context["list_totals"] = self.list_totals_of(changelist.queryset)
        return response


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


def with_quiet_line(main: object, quiet: object) -> SafeString:
    """A list cell of two lines: the value, and a quieter one under it (an external id, a
    source)."""
    return format_html('{}<div class="quiet-line" style="color:#6b7280">{}</div>', main, quiet)


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
    "wallet_limit_reached": "the customer already has as many active wallets as allowed",
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


# --- pages that create a row through a service ------------------------------------------------


class PickForm(ThemedFormMixin, forms.Form):
    """The first step of a page that needs one row before its form (the customer to subscribe,
    to invoice or to give a wallet): one choice among `queryset`, sent as a GET parameter."""

    def __init__(
        self,
        *args: object,
        name: str,
        label: str,
        queryset: QuerySet,
        describe: Callable[[Model], str] = str,
        **kwargs: object,
    ) -> None:
        super().__init__(*args, **kwargs)
        field = forms.ModelChoiceField(queryset=queryset, label=label)
        field.label_from_instance = describe
        self.fields[name] = field
        theme_widgets(self.fields)


def add_page_context(
    model_admin: admin.ModelAdmin, request: HttpRequest, *, title: str, page_id: str, crumb: str
) -> dict:
    """The context of a page that adds a row through a service (subscribe, one-off invoice,
    new wallet): refused (403) without the add right, crumbs and "Cancel" back to the list."""
    if not model_admin.has_add_permission(request):
        raise PermissionDenied
    opts = model_admin.opts
    changelist = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
    return {
        **model_admin.admin_site.each_context(request),
        "opts": opts,
        "title": title,
        "page_id": page_id,
        "crumbs": [(crumb, changelist)],
        "cancel_url": changelist,
    }


def pick_first(
    request: HttpRequest,
    *,
    rows: QuerySet,
    model: type[Model],
    label: str,
    intro: str,
    describe: Callable[[Model], str] = str,
    context: dict,
    name: str = "customer",
) -> Model | HttpResponse:
    """The first step of a page that needs one row before its form (the customer to subscribe,
    to invoice or to give a wallet): the row of `rows` named by the `name` GET parameter, else
    the page that asks for it (`intro` above one choice). A row is taken only where the staff
    member's role may add `model` rows in its organization (403 otherwise)."""
    picked = request.GET.get(name)
    row = rows.filter(pk=picked).first() if picked else None
    if row is None:
        pick = PickForm(
            request.GET if picked else None,
            name=name,
            label=label,
            queryset=rows,
            describe=describe,
        )
        pick.is_valid()  # an unknown or foreign row: the error shows under the choice
        context.update(pick_form=pick, intro=intro)
        return TemplateResponse(request, "admin/service_form.html", context)
    if not staff_may_in(request, "add", model, row.organization_id):  # type: ignore[attr-defined]
        raise PermissionDenied
    return row


def show_domain_error(
    form: forms.BaseForm, exc: DomainError, fields: dict[str, str] | None = None
) -> None:
    """Puts a service's refusal next to the form field it is about (`fields` maps the service's
    field names to the form's when they differ); the rest goes on top of the form."""
    fields = fields or {}
    if not isinstance(exc, Invalid):
        if isinstance(exc, NotFound) and exc.resource in fields:
            form.add_error(fields[exc.resource], describe(exc).capitalize() + ".")
            return
        form.add_error(None, describe(exc).capitalize() + ".")
        return
    for name, codes in exc.details.items():
        target = fields.get(name, name)
        text = ", ".join(map(describe_code, codes)) + "."
        if target in form.fields:
            form.add_error(target, text[0].upper() + text[1:])
        else:
            form.add_error(None, f"{name.replace('_', ' ').capitalize()}: {text}")
