"""The activity log in the admin: the organization's global page (Developers) and the
timeline that the pages of customers, subscriptions, invoices, wallets and plans show."""

from __future__ import annotations

import json

from django.contrib import admin
from django.db.models import Model
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _

from billing.activity import activity_timeline
from billing.admin_base import DateRangeFilter, OrganizationAdmin, with_quiet_line
from billing.models import ActivityLog

TIMELINE_TEMPLATE = "admin/billing/activity_timeline.html"


def _short(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 80 else f"{text[:77]}…"


def changes_html(changes: dict) -> SafeString:
    """`field: before → after` lines of an entry's changed fields."""
    if not changes:
        return format_html('<span class="activity-none">{}</span>', "no field changed")
    return format_html_join(
        "",
        '<div class="activity-change"><code>{}</code>: {} → <strong>{}</strong></div>',
        (
            (name, _short(before) if before is not None else "∅", _short(after))
            for name, (before, after) in sorted(changes.items())
        ),
    )


# changes listed in full on a list row or a timeline line; longer updates are cut to this many
SUMMARY_LINES = 3
# what names an object for a reader, in order of preference (as the API renders it)
_LABEL_KEYS = ("name", "number", "external_id", "code", "lago_id")


def changes_summary(activity_type: str, changes: dict) -> SafeString:
    """An entry's changes in a few lines: a creation names its set fields (the values are on
    the object's page), a short update lists each change, a long one its first changes and how
    many more."""
    if changes and activity_type.endswith(".created"):
        names = sorted(changes)
        shown = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
        return with_quiet_line("", f"created with {shown}")
    if len(changes) <= SUMMARY_LINES + 1:
        return changes_html(changes)
    first = dict(sorted(changes.items())[:SUMMARY_LINES])
    return with_quiet_line(changes_html(first), f"and {len(changes) - SUMMARY_LINES} more")


def resource_label(entry: ActivityLog) -> str:
    """`type · name` when the logged object has a readable name, else `type` and a short id."""
    after = entry.activity_object if isinstance(entry.activity_object, dict) else {}
    name = next((after[key] for key in _LABEL_KEYS if after.get(key)), None)
    if isinstance(name, str) and name != entry.resource_id:
        return f"{entry.resource_type} · {name}"
    return f"{entry.resource_type} {str(entry.resource_id)[:8]}"


@admin.register(ActivityLog)
class ActivityLogAdmin(OrganizationAdmin):
    """Every create, update and delete of a business object, who did it and what changed."""

    list_display = ("logged_at", "activity_type", "by", "object_label", "changed_fields")
    list_filter = (
        ("logged_at", DateRangeFilter),
        "activity_source",
        "resource_type",
        "activity_type",
        "user_email",
        ("organization", admin.RelatedOnlyFieldListFilter),
    )
    search_fields = ("resource_id", "external_customer_id", "external_subscription_id",
                     "activity_type", "user_email", "actor_name")  # fmt: skip
    list_select_related = ("organization",)
    fields = ("activity_id", "logged_at", "activity_type", "activity_source", "actor",
              "resource", "resource_id_full", "external_customer_id", "external_subscription_id",
              "changes", "object_after", "request_id", "organization")  # fmt: skip
    readonly_fields = fields
    list_per_page = 50

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False  # entries leave by the retention job only

    @admin.display(description=_("Actor"), ordering="user_email")
    def actor(self, entry: ActivityLog) -> str:
        return entry.user_email or entry.actor_name or "—"

    @admin.display(description=_("By"), ordering="user_email")
    def by(self, entry: ActivityLog) -> SafeString:
        source = entry.get_activity_source_display()
        if self.actor(entry).lower() == str(source).lower():  # "system", by the system
            return format_html("{}", source)
        return with_quiet_line(self.actor(entry), source)

    @admin.display(description=_("Object"), ordering="resource_type")
    def resource(self, entry: ActivityLog) -> str:
        return resource_label(entry)

    @admin.display(description=_("Object"), ordering="resource_type")
    def object_label(self, entry: ActivityLog) -> SafeString:
        label = resource_label(entry)
        customer = entry.external_customer_id
        if not customer or customer in label:
            return format_html("{}", label)
        return with_quiet_line(label, customer)

    @admin.display(description=_("Object id"))
    def resource_id_full(self, entry: ActivityLog) -> str:
        return f"{entry.resource_type} {entry.resource_id}"

    @admin.display(description=_("Changes"))
    def changed_fields(self, entry: ActivityLog) -> SafeString:
        return changes_summary(entry.activity_type, entry.activity_object_changes)

    @admin.display(description=_("Changes"))
    def changes(self, entry: ActivityLog) -> SafeString:
        return changes_html(entry.activity_object_changes)

    @admin.display(description=_("Object after the change"))
    def object_after(self, entry: ActivityLog) -> SafeString:
        text = json.dumps(entry.activity_object, indent=2, ensure_ascii=False, sort_keys=True)
        return format_html('<pre class="activity-object">{}</pre>', text)


class ActivityTimelineMixin:
    """Adds the object's activity timeline under its change page (latest entries first)."""

    change_form_outer_after_template = TIMELINE_TEMPLATE

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "",
                    extra_context: dict | None = None):  # fmt: skip
        extra_context = dict(extra_context or {})
        obj = self.get_object(request, object_id)  # type: ignore[attr-defined]
        if obj is not None:
            extra_context["activity_timeline"] = timeline_rows(obj)
        return super().change_view(request, object_id, form_url, extra_context)  # type: ignore[misc]


def timeline_rows(obj: Model) -> list[dict]:
    """The object's activity entries as the timeline template shows them."""
    return [
        {
            "logged_at": entry.logged_at,
            "activity_type": entry.activity_type,
            "source": entry.get_activity_source_display(),
            "actor": entry.user_email or entry.actor_name or "—",
            "changes": changes_summary(entry.activity_type, entry.activity_object_changes),
        }
        for entry in activity_timeline(obj)
    ]
