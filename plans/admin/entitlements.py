"""Entitlements in the admin: features with their typed privileges, and the values a plan gives
them (a page of the plan). The subscription's page (`customers.admin`) reuses the values form.

Privileges are typed on one line each (`code | name | type | options`), never raw JSON; values
are typed in a field of their privilege's type (a number, yes/no, one of the options, text).
Everything is saved through the same services as the API (`plans.services.entitlements`).
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Prefetch, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from billing.actors import Actor
from billing.admin_base import OrganizationAdmin, describe
from billing.errors import DomainError
from plans.entitlement_forms import EntitlementValuesForm, organization_features
from plans.models import Feature, Plan, Privilege
from plans.services.entitlements import (
    cast_value,
    feature_create,
    feature_delete,
    feature_update,
    plan_entitlement_list,
    plan_entitlements_update,
)

ValueType = Privilege.ValueType


# --------------------------------------------------------------------------------------------
# Features


def parse_privileges(text: str) -> list[dict]:
    """`code | name | type | option, option` per line (name, type and options optional; type
    string by default) -> the API's privileges; ValueError names the bad line."""
    privileges = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = [part.strip() for part in line.split("|")]
        code, name, kind, options = [*parts, "", "", ""][:4]
        if not code:
            raise ValueError(f"line {number}: a privilege needs a code")
        kind = kind or ValueType.STRING
        if kind not in ValueType.values:
            raise ValueError(
                f"line {number}: type must be one of {', '.join(ValueType.values)}, not {kind!r}"
            )
        privilege = {"code": code, "name": name or None, "value_type": kind}
        choices = [option.strip() for option in options.split(",") if option.strip()]
        if kind == ValueType.SELECT:
            if not choices:
                raise ValueError(f"line {number}: a select privilege lists its options")
            privilege["config"] = {"select_options": choices}
        elif choices:
            raise ValueError(f"line {number}: only a select privilege has options")
        privileges.append(privilege)
    return privileges


def format_privileges(feature: Feature) -> str:
    lines = []
    for privilege in feature.privileges.alive().order_by("created_at", "id"):
        options = ", ".join(privilege.config.get("select_options", []))
        parts = [privilege.code, privilege.name, privilege.value_type, options]
        lines.append(" | ".join(parts).rstrip(" |"))
    return "\n".join(lines)


class FeatureForm(forms.ModelForm):
    privileges_text = forms.CharField(
        label=_("Privileges"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 5, "cols": 60}),
        help_text=_(
            "One per line: code | name | type | options. Types: integer, boolean, string, "
            "select (options separated by commas). Example: tier | Tier | select | basic, pro"
        ),
    )

    class Meta:
        model = Feature
        fields = ("organization", "code", "name", "description")

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial.setdefault("privileges_text", format_privileges(self.instance))

    def clean_privileges_text(self) -> list[dict]:
        try:
            return parse_privileges(self.cleaned_data.get("privileges_text") or "")
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from exc

    def validate_unique(self) -> None:
        """Codes are unique among live features: the service says so."""


@admin.register(Feature)
class FeatureAdmin(OrganizationAdmin):
    form = FeatureForm
    list_display = ("code", "name", "privilege_list", "organization", "created_at")
    search_fields = ("code", "name", "description")
    list_filter = ("organization",)
    fieldsets = ((None, {"fields": ("organization", "code", "name", "description",
                                    "privileges_text")}),)  # fmt: skip

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return (
            super()
            .get_queryset(request)
            .filter(deleted_at__isnull=True)
            .prefetch_related(
                Prefetch("privileges", queryset=Privilege.objects.alive(), to_attr="live")
            )
        )

    def get_readonly_fields(self, request: HttpRequest, obj: Feature | None = None) -> tuple:
        return ("organization", "code") if obj is not None else ()

    @admin.display(description=_("Privileges"))
    def privilege_list(self, feature: Feature) -> str:
        live = getattr(feature, "live", None) or feature.privileges.alive()
        return ", ".join(f"{p.code} ({p.value_type})" for p in live) or "—"

    def save_model(self, request: HttpRequest, obj: Feature, form: FeatureForm, change: bool):
        values = {
            "code": form.cleaned_data.get("code") or obj.code,
            "name": form.cleaned_data.get("name") or "",
            "description": form.cleaned_data.get("description") or "",
            "privileges": form.cleaned_data.get("privileges_text") or [],
        }
        actor, now = Actor.from_request(request), timezone.now()
        try:
            if change:
                feature = feature_update(feature=obj, values=values, actor=actor, now=now)
            else:
                feature = feature_create(
                    organization=form.cleaned_data["organization"],
                    values=values,
                    actor=actor,
                    now=now,
                )
        except DomainError as exc:
            request._feature_save_refused = describe(exc)
            return
        obj.pk, obj._state.adding = feature.pk, False

    def save_related(self, request: HttpRequest, form: FeatureForm, formsets, change: bool):
        """No related rows: the privileges were saved with the feature."""

    def response_add(self, request: HttpRequest, obj: Feature, post_url_continue=None):
        return self._refused(request) or super().response_add(request, obj, post_url_continue)

    def response_change(self, request: HttpRequest, obj: Feature) -> HttpResponse:
        return self._refused(request) or super().response_change(request, obj)

    def log_addition(self, request: HttpRequest, obj: Feature, message: object) -> None:
        if not getattr(request, "_feature_save_refused", None):
            super().log_addition(request, obj, message)

    def log_change(self, request: HttpRequest, obj: Feature, message: object) -> None:
        if not getattr(request, "_feature_save_refused", None):
            super().log_change(request, obj, message)

    def _refused(self, request: HttpRequest) -> HttpResponse | None:
        why = getattr(request, "_feature_save_refused", None)
        if why is None:
            return None
        self.message_user(request, _("Not saved: %(why)s") % {"why": why}, messages.ERROR)
        return HttpResponseRedirect(request.path)

    def delete_model(self, request: HttpRequest, obj: Feature) -> None:
        feature_delete(feature=obj, actor=Actor.from_request(request), now=timezone.now())

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        actor, now = Actor.from_request(request), timezone.now()
        for feature in queryset:
            feature_delete(feature=feature, actor=actor, now=now)


def plan_entitlements_view(
    model_admin: admin.ModelAdmin, request: HttpRequest, object_id: str
) -> HttpResponse:
    """The plan's entitlements page: every feature of its organization, checked when the plan
    grants it, with the plan's values; saved (replaced) by `plan_entitlements_update`."""
    plan = get_object_or_404(model_admin.get_queryset(request), pk=object_id)
    if not model_admin.has_view_permission(request, plan):
        raise PermissionDenied
    may_change = model_admin.has_change_permission(request, plan)
    current = plan_entitlement_list(plan=plan)
    values = {
        (e.feature.code, v.privilege.code): cast_value(v.value, v.privilege.value_type)
        for e in current
        for v in e.values.all()
    }
    form = EntitlementValuesForm(
        request.POST if request.method == "POST" else None,
        features=organization_features(plan.organization_id),
        entitled={e.feature.code for e in current},
        values=values,
    )
    if request.method == "POST":
        if not may_change:
            raise PermissionDenied
        if form.is_valid():
            try:
                plan_entitlements_update(
                    plan=plan,
                    entitlements=form.entitlements(),
                    partial=False,
                    actor=Actor.from_request(request),
                    now=timezone.now(),
                )
            except DomainError as exc:
                form.add_error(None, describe(exc))
            else:
                model_admin.log_change(request, plan, "Changed entitlements")
                model_admin.message_user(
                    request, _("Entitlements of %(plan)s saved.") % {"plan": plan}
                )
                return HttpResponseRedirect(request.path)
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": Plan._meta,
        "original": plan,
        "title": _("Entitlements of %(plan)s") % {"plan": plan},
        "form": form,
        "may_change": may_change,
        "show_plan_values": False,
        "back_url": reverse("admin:plans_plan_change", args=[plan.pk]),
        "features_url": reverse("admin:plans_feature_changelist"),
    }
    return TemplateResponse(request, "admin/plans/entitlements.html", context)
