"""Admin building blocks every app's admin uses: tenancy scoping, money display, reports."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from billing.actors import Actor
from billing.errors import DomainError
from billing.models import Organization


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
