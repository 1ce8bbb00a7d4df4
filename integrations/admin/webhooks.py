"""Webhook endpoints (with the organization's HMAC key) and the delivery log, with resend."""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from billing.actors import Actor
from billing.admin_base import ActionReport, OrganizationAdmin, describe
from billing.errors import DomainError
from integrations.models import SignatureAlgo, WebhookDelivery, WebhookEndpoint
from integrations.services.webhook_delivery import delivery_resend
from integrations.services.webhook_endpoints import (
    webhook_endpoint_create,
    webhook_endpoint_delete,
    webhook_endpoint_update,
)
from integrations.services.webhook_payloads import WEBHOOK_OBJECT_TYPES
from integrations.services.webhook_signing import (
    organization_hmac_key,
    organization_hmac_key_rotate,
)
from integrations.tasks import send_webhook_deliveries_task

EVENT_TYPE_CHOICES = [(name, name) for name in sorted(WEBHOOK_OBJECT_TYPES)]


class WebhookEndpointForm(forms.ModelForm):
    event_types = forms.MultipleChoiceField(
        choices=EVENT_TYPE_CHOICES,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: every event type.",
    )

    class Meta:
        model = WebhookEndpoint
        fields = ("organization", "name", "webhook_url", "signature_algo", "event_types")

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.initial["event_types"] = self.instance.event_types or []

    def clean(self) -> dict:
        data = super().clean()
        values = {
            "webhook_url": data.get("webhook_url"),
            "name": data.get("name") or None,
            "signature_algo": data.get("signature_algo") or SignatureAlgo.JWT,
            "event_types": list(data.get("event_types") or []) or None,
        }
        self.service_values = values
        return data

    def _post_clean(self) -> None:
        # the model's own checks are the service's to make (limit, URL, SSRF, uniqueness)
        pass


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(OrganizationAdmin):
    form = WebhookEndpointForm
    list_display = ("__str__", "webhook_url", "signature_algo", "subscriptions", "organization",
                    "created_at")  # fmt: skip
    list_filter = ("signature_algo",)
    search_fields = ("name", "webhook_url")
    list_select_related = ("organization",)
    readonly_fields = ("hmac_key", "delivery_log")
    actions = ("rotate_hmac_key",)

    class Media:
        css = {"all": ("integrations/webhooks.css",)}

    def get_fields(self, request: HttpRequest, obj: WebhookEndpoint | None = None):
        fields = ["organization", "name", "webhook_url", "signature_algo", "event_types"]
        return [*fields, "hmac_key", "delivery_log"] if obj else fields

    def get_readonly_fields(self, request: HttpRequest, obj: WebhookEndpoint | None = None):
        return ("organization", "hmac_key", "delivery_log") if obj else ()

    @admin.display(description="Event types")
    def subscriptions(self, endpoint: WebhookEndpoint) -> str:
        if endpoint.event_types is None:
            return "all"
        return ", ".join(endpoint.event_types) or "none"

    @admin.display(description="HMAC key of the organization")
    def hmac_key(self, endpoint: WebhookEndpoint) -> str:
        return format_html(
            "<code>{}</code><div class='help'>Signs the webhooks of HMAC endpoints "
            "(Base64 of HMAC-SHA256 of the body). Rotate it with the list's action.</div>",
            organization_hmac_key(endpoint.organization),
        )

    @admin.display(description="Deliveries")
    def delivery_log(self, endpoint: WebhookEndpoint) -> str:
        url = reverse("admin:integrations_webhookdelivery_changelist")
        return format_html('<a href="{}?endpoint__id__exact={}">Delivery log</a>', url, endpoint.pk)

    def save_model(self, request, obj: WebhookEndpoint, form, change: bool) -> None:
        actor = Actor.from_request(request)
        values = form.service_values
        if change:
            webhook_endpoint_update(endpoint=obj, values=values, actor=actor)
        else:
            created = webhook_endpoint_create(
                organization=form.cleaned_data["organization"], values=values, actor=actor
            )
            obj.pk, obj._state.adding = created.pk, False
            obj.refresh_from_db()

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except DomainError as exc:  # refused by the service: say why, keep the page
            self.message_user(request, f"Not saved: {describe(exc)}", messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def delete_model(self, request: HttpRequest, obj: WebhookEndpoint) -> None:
        webhook_endpoint_delete(endpoint=obj, actor=Actor.from_request(request))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for endpoint in queryset:
            self.delete_model(request, endpoint)

    @admin.action(description="Rotate the HMAC key of their organizations", permissions=["change"])
    def rotate_hmac_key(self, request: HttpRequest, queryset: QuerySet) -> None:
        report = ActionReport(self, request, "rotated")
        seen = set()
        for endpoint in queryset.select_related("organization"):
            if endpoint.organization_id in seen:
                continue
            seen.add(endpoint.organization_id)
            report.attempt(
                endpoint.organization,
                organization_hmac_key_rotate,
                organization=endpoint.organization,
                actor=report.actor,
            )
        report.send()


class WebhookTypeFilter(admin.SimpleListFilter):
    """Webhook types found in the deliveries the staff member may see."""

    title = "webhook type"
    parameter_name = "webhook_type"

    def lookups(self, request, model_admin):
        types = (
            model_admin.get_queryset(request)
            .order_by("webhook_type")
            .values_list("webhook_type", flat=True)
            .distinct()
        )
        return [(name, name) for name in types]

    def queryset(self, request, queryset):
        return queryset.filter(webhook_type=self.value()) if self.value() else queryset


def _pretty(text: str) -> str:
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        return text


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(OrganizationAdmin):
    list_display = ("created_at", "webhook_type", "endpoint", "status", "http_status", "attempts",
                    "last_attempt_at", "next_attempt_at")  # fmt: skip
    list_filter = (
        ("endpoint", admin.RelatedOnlyFieldListFilter),
        WebhookTypeFilter,
        "status",
        "created_at",
    )
    search_fields = ("=id", "object_id", "webhook_url")
    date_hierarchy = "created_at"
    list_select_related = ("endpoint", "organization")
    actions = ("resend",)
    fields = ("id", "organization", "endpoint", "webhook_type", "object_type", "object_id",
              "status", "attempts", "http_status", "webhook_url", "recorded_at", "created_at",
              "last_attempt_at", "next_attempt_at", "delivered_at", "resend_button",
              "payload_pretty", "response_pretty")  # fmt: skip
    readonly_fields = fields

    class Media:
        css = {"all": ("integrations/webhooks.css",)}

    def change_view(self, request, object_id, form_url="", extra_context=None):
        # nothing to save here: the page is the log entry and its resend button
        extra = {"show_save": False, "show_save_and_continue": False, **(extra_context or {})}
        return super().change_view(request, object_id, form_url, extra)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    @admin.display(description="Payload")
    def payload_pretty(self, delivery: WebhookDelivery) -> str:
        return format_html("<pre class='webhook-json'>{}</pre>", _pretty(delivery.payload))

    @admin.display(description="Response")
    def response_pretty(self, delivery: WebhookDelivery) -> str:
        return format_html("<pre class='webhook-json'>{}</pre>", _pretty(delivery.response) or "—")

    @admin.display(description="Resend")
    def resend_button(self, delivery: WebhookDelivery) -> str:
        url = reverse("admin:integrations_webhookdelivery_resend", args=[delivery.pk])
        return format_html(
            '<button type="submit" class="button" formaction="{}" formmethod="post">Resend now'
            '</button> <span class="help">Same body and X-Lago-Unique-Key; one more attempt.'
            "</span>",
            url,
        )

    def get_urls(self):
        return [
            path(
                "<uuid:pk>/resend/",
                self.admin_site.admin_view(self.resend_view),
                name="integrations_webhookdelivery_resend",
            ),
            *super().get_urls(),
        ]

    def _resend(self, request: HttpRequest, deliveries) -> int:
        now, actor, endpoints = timezone.now(), Actor.from_request(request), set()
        for delivery in deliveries:
            delivery_resend(delivery=delivery, actor=actor, now=now)
            self.log_change(request, delivery, "resent via admin")
            endpoints.add(delivery.endpoint_id)
        for endpoint_id in endpoints:
            send_webhook_deliveries_task.delay(str(endpoint_id))
        return len(deliveries)

    def resend_view(self, request: HttpRequest, pk: str) -> HttpResponse:
        delivery = get_object_or_404(self.get_queryset(request), pk=pk)
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_change_permission(request, delivery):
            raise PermissionDenied
        self._resend(request, [delivery])
        self.message_user(request, "Queued for one more attempt.", messages.SUCCESS)
        return HttpResponseRedirect(
            reverse("admin:integrations_webhookdelivery_change", args=[delivery.pk])
        )

    @admin.action(description="Resend selected deliveries", permissions=["change"])
    def resend(self, request: HttpRequest, queryset: QuerySet) -> None:
        count = self._resend(request, list(queryset))
        self.message_user(request, f"{count} queued for one more attempt.", messages.SUCCESS)
