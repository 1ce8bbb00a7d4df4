"""Admin for organizations, billing entities, staff memberships (users and roles), API keys,
the API request log and the activity log (`billing.admin_audit`)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import HttpRequest
from django.utils import timezone

import billing.admin_thirdparty  # noqa: F401  (users, groups, scheduled jobs on the theme)
from billing.actors import Actor
from billing.admin_audit import ActivityLogAdmin  # noqa: F401  (registers the page)
from billing.admin_base import (
    ActionReport,
    ModelAdmin,
    OrganizationAdmin,
    StackedInline,
    TabularInline,
    staff_organizations,
)
from billing.models import ApiKey, ApiRequestLog, BillingEntity, Membership, Organization
from billing.services import (
    SHARED_SETTINGS,
    api_key_create,
    api_key_revoke,
    api_key_rotate,
    membership_remove,
    membership_set,
    organization_create,
)

admin.site.site_header = "Billing"
admin.site.site_title = "Billing"
admin.site.index_title = "Finance dashboard"


class MembershipInline(TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ("user",)


class BillingEntityInline(StackedInline):
    model = BillingEntity
    extra = 0
    fields = ("code", "name", "is_default", "default_currency", "timezone", "document_locale")
    readonly_fields = ("code", "is_default")
    show_change_link = True
    can_delete = False


@admin.register(Organization)
class OrganizationModelAdmin(ModelAdmin):
    list_display = ("name", "default_currency", "timezone", "document_numbering", "created_at")
    search_fields = ("name", "legal_name", "email")
    inlines = (BillingEntityInline, MembershipInline)

    def save_formset(self, request: HttpRequest, form: ModelForm, formset, change: bool) -> None:
        if formset.model is not Membership:
            return super().save_formset(request, form, formset, change)
        # memberships through their services: the role groups follow, the activity log too
        actor = Actor.from_request(request)
        saved = formset.save(commit=False)
        for membership in formset.deleted_objects:
            membership_remove(membership=membership, actor=actor)
        for membership, changed in formset.changed_objects:
            if "user" in changed:  # another person on that row: the first one leaves
                membership_remove(membership=Membership.objects.get(pk=membership.pk), actor=actor)
        for membership in saved:
            membership_set(
                organization=form.instance, user=membership.user, role=membership.role, actor=actor
            )
        return None

    readonly_fields = ("id", "created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("name", "id", "default_currency", "timezone", "document_locale")}),
        (
            "Legal identity",
            {
                "fields": (
                    "legal_name", "legal_number", "tax_identification_number", "email",
                    "address_line1", "address_line2", "zipcode", "city", "state", "country",
                )
            },
        ),
        (
            "Invoicing",
            {
                "fields": (
                    "document_numbering", "document_number_prefix", "net_payment_term",
                    "invoice_grace_period", "finalize_zero_amount_invoice", "invoice_footer",
                    "max_wallets", "issue_receipts",
                )
            },
        ),
        ("Audit trail", {"fields": ("audit_logs_retention_days",)}),
        ("Timestamps", {"fields": ("created_at", "updated_at"), "classes": ("collapse",)}),
    )  # fmt: skip

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return staff_organizations(request, Organization)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser

    def save_model(self, request: HttpRequest, obj: Organization, form: ModelForm, change: bool):
        if change:
            return super().save_model(request, obj, form, change)
        # A new organization always comes with its default billing entity (spec §2.2).
        created = organization_create(
            name=obj.name,
            **{f: getattr(obj, f) for f in SHARED_SETTINGS if f != "name"},
        )
        obj.pk = created.pk
        obj._state.adding = False
        return None


@admin.register(BillingEntity)
class BillingEntityAdmin(OrganizationAdmin):
    list_display = ("name", "code", "organization", "is_default", "default_currency",
                    "document_numbering")  # fmt: skip
    list_filter = ("is_default", "document_numbering", "default_currency")
    search_fields = ("name", "code", "legal_name")
    list_select_related = ("organization",)
    readonly_fields = ("id", "is_default", "invoices_sequence", "created_at", "updated_at")

    def get_readonly_fields(self, request: HttpRequest, obj: BillingEntity | None = None):
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None:
            fields += ["code", "organization"]  # code is immutable (spec §2.2)
        return fields


@admin.register(ApiKey)
class ApiKeyAdmin(OrganizationAdmin):
    list_display = ("__str__", "organization", "state", "expires_at", "last_used_at", "created_at")
    list_filter = ("organization",)
    search_fields = ("name", "prefix")
    list_select_related = ("organization",)
    fields = ("organization", "name", "permissions", "prefix", "expires_at", "revoked_at",
              "last_used_at", "rotated_to")  # fmt: skip
    readonly_fields = ("prefix", "expires_at", "revoked_at", "last_used_at", "rotated_to")
    actions = ("rotate_now", "rotate_in_24h", "revoke")

    @admin.display(description="State")
    def state(self, api_key: ApiKey) -> str:
        now = timezone.now()
        if api_key.revoked_at:
            return "revoked"
        if api_key.expires_at and api_key.expires_at <= now:
            return "expired"
        if api_key.expires_at:
            return f"expires {api_key.expires_at:%Y-%m-%d %H:%M} UTC"
        return "active"

    def save_model(self, request: HttpRequest, obj: ApiKey, form: ModelForm, change: bool):
        if change:
            return super().save_model(request, obj, form, change)
        api_key, raw = api_key_create(
            organization=obj.organization,
            name=obj.name,
            permissions=obj.permissions,
            actor=Actor.from_request(request),
        )
        obj.pk = api_key.pk
        obj._state.adding = False
        obj.refresh_from_db()
        self.message_user(
            request, f"New API key — copy it now, it is not shown again: {raw}", messages.WARNING
        )
        return None

    def _rotate(self, request: HttpRequest, queryset: QuerySet, expires_in: str) -> None:
        report = ActionReport(self, request, "rotated")
        now, actor = timezone.now(), Actor.from_request(request)
        for api_key in queryset:
            result = report.attempt(
                api_key, api_key_rotate, api_key=api_key, now=now, expires_in=expires_in,
                actor=actor,
            )  # fmt: skip
            if result is not None:
                self.message_user(
                    request,
                    f"{api_key.name or api_key.prefix}: new key (shown once): {result[1]}",
                    messages.WARNING,
                )
        report.send()

    @admin.action(description="Rotate selected keys now", permissions=["change"])
    def rotate_now(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._rotate(request, queryset, "now")

    @admin.action(description="Rotate selected keys (old key valid 24 h)", permissions=["change"])
    def rotate_in_24h(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._rotate(request, queryset, "24h")

    @admin.action(description="Revoke selected keys", permissions=["change"])
    def revoke(self, request: HttpRequest, queryset: QuerySet) -> None:
        report, now = ActionReport(self, request, "revoked"), timezone.now()
        actor = Actor.from_request(request)
        for api_key in queryset:
            report.attempt(api_key, api_key_revoke, api_key=api_key, now=now, actor=actor)
        report.send()


@admin.register(ApiRequestLog)
class ApiRequestLogAdmin(OrganizationAdmin):
    list_display = ("created_at", "method", "path", "status", "duration_ms", "key_name",
                    "organization")  # fmt: skip
    list_filter = ("method", "status", "organization")
    search_fields = ("path", "request_id", "key_name")
    date_hierarchy = "created_at"
    list_select_related = ("organization",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Membership)
class MembershipAdmin(OrganizationAdmin):
    """Users and roles: who works in which organization as admin, manager or finance."""

    list_display = ("user", "organization", "role", "created_at")
    list_filter = ("role",)
    search_fields = ("user__username", "user__email", "organization__name")
    list_select_related = ("user", "organization")
    fields = ("organization", "user", "role")

    def get_readonly_fields(self, request: HttpRequest, obj: Membership | None = None):
        return ("organization", "user") if obj is not None else ()

    def save_model(self, request: HttpRequest, obj: Membership, form: ModelForm, change: bool):
        # through the service: the role's group follows the membership
        saved = membership_set(
            organization=obj.organization,
            user=obj.user,
            role=obj.role,
            actor=Actor.from_request(request),
        )
        obj.pk = saved.pk
        obj._state.adding = False

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "user" and not request.user.is_superuser:
            # new staff accounts come from `manage.py create_user`; an organization admin gives
            # roles to people already working in one of their organizations
            kwargs["queryset"] = (
                get_user_model()
                .objects.filter(memberships__organization__in=staff_organizations(request))
                .distinct()
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def delete_model(self, request: HttpRequest, obj: Membership) -> None:
        membership_remove(membership=obj, actor=Actor.from_request(request))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        actor = Actor.from_request(request)
        for membership in queryset.select_related("user"):
            membership_remove(membership=membership, actor=actor)
