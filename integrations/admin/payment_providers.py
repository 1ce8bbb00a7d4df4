"""Stripe connections for finance staff: connect an account, list the connections, look at one
(its webhook endpoint and the last events received), remove it. Secrets are asked for once and
never shown again: the page shows the kind of key (test or live) only.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from billing.actors import Actor
from billing.admin_base import (
    ActionReport,
    OrganizationAdmin,
    ThemedFormMixin,
    describe,
    describe_code,
    staff_organizations,
)
from billing.errors import DomainError, Invalid, ProviderError
from customers.models import Customer
from integrations.crypto import SecretUnreadable
from integrations.models import PaymentProvider
from integrations.selectors import provider_event_list
from integrations.services.connections import (
    payment_provider_destroy,
    stripe_connection_create,
    webhook_url,
)
from integrations.services.provider_customers import customer_checkout_url_generate


class ConnectStripeForm(ThemedFormMixin, forms.Form):
    """What connecting a Stripe account asks for."""

    organization = forms.ModelChoiceField(queryset=PaymentProvider.objects.none())
    code = forms.CharField(
        max_length=255, help_text="Unique in the organization; customers name the connection by it."
    )
    name = forms.CharField(max_length=255, required=False, help_text="Empty: the code.")
    secret_key = forms.CharField(
        widget=forms.PasswordInput(render_value=False),
        help_text="Stripe secret key (sk_test_… or sk_live_…), stored encrypted, never shown.",
    )
    success_redirect_url = forms.URLField(
        required=False,
        assume_scheme="https",
        max_length=1024,
        help_text="Page Stripe Checkout returns to once a payment method is saved.",
    )

    def __init__(self, *args: object, request: HttpRequest, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        organizations = staff_organizations(request, PaymentProvider, "add")
        self.fields["organization"].queryset = organizations
        if organizations.count() == 1:
            self.fields["organization"].initial = organizations.first()


@admin.register(PaymentProvider)
class PaymentProviderAdmin(OrganizationAdmin):
    list_display = ("name", "code", "provider_type", "organization", "key", "webhook", "created_at")
    list_filter = ("provider_type",)
    search_fields = ("code", "name")
    list_select_related = ("organization",)
    fields = (
        "organization", "provider_type", "code", "name", "key", "webhook_address", "webhook",
        "success_redirect_url", "recent_events",
    )  # fmt: skip
    readonly_fields = fields
    actions = ("remove_connections",)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).filter(deleted_at__isnull=True)

    # A connection is made by the connect page and removed by the action: never edited in place
    # (a new key means a new connection, with its own webhook endpoint).
    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_remove_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("integrations.delete_paymentprovider")

    @admin.display(description="Secret key")
    def key(self, provider: PaymentProvider) -> str:
        try:
            return provider.secret_key_hint
        except SecretUnreadable:
            return "unreadable (the encryption key changed): connect again"

    @admin.display(description="Webhook")
    def webhook(self, provider: PaymentProvider) -> str:
        if provider.webhook_id and provider.encrypted_webhook_secret:
            return format_html("registered <code>{}</code>", provider.webhook_id)
        return "not registered"

    @admin.display(description="Webhook address")
    def webhook_address(self, provider: PaymentProvider) -> str:
        return format_html("<code>{}</code>", webhook_url(provider))

    @admin.display(description="Last events received")
    def recent_events(self, provider: PaymentProvider) -> str:
        events = list(provider_event_list(provider=provider)[:20])
        if not events:
            return "None yet."
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td></tr>",
            (
                (f"{e.created_at:%Y-%m-%d %H:%M}", e.event_type, e.provider_event_id, e.outcome)
                for e in events
            ),
        )
        return format_html(
            "<table><thead><tr><th>Received</th><th>Event</th><th>Id</th><th>Outcome</th>"
            "</tr></thead><tbody>{}</tbody></table>",
            rows,
        )

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: dict | None = None
    ) -> HttpResponse:
        """The connect page: the service registers the webhook at Stripe, then stores."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = ConnectStripeForm(request.POST or None, request=request)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                provider = stripe_connection_create(
                    organization=data["organization"],
                    code=data["code"],
                    name=data["name"],
                    secret_key=data["secret_key"],
                    success_redirect_url=data["success_redirect_url"] or "",
                    actor=Actor.from_request(request),
                )
            except Invalid as exc:
                for name, codes in exc.details.items():
                    form.add_error(
                        name if name in form.fields else None,
                        ", ".join(map(describe_code, codes)),
                    )
            except ProviderError as exc:
                form.add_error(None, f"Stripe refused: {exc.details.get('message')}")
            else:
                self.log_addition(request, provider, "Connected via admin")
                self.message_user(
                    request,
                    f"Connected {provider}. Stripe sends its events to {webhook_url(provider)}.",
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(
                    reverse("admin:integrations_paymentprovider_changelist")
                )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Connect a Stripe account",
            "form": form,
            "has_view_permission": True,
        }
        return TemplateResponse(request, "admin/integrations/paymentprovider/connect.html", context)

    @admin.action(
        description="Remove selected connections (their webhook endpoints at Stripe too)",
        permissions=["remove"],
    )
    def remove_connections(self, request: HttpRequest, queryset: QuerySet) -> None:
        report, now = ActionReport(self, request, "removed"), timezone.now()
        for provider in queryset:
            report.attempt(
                provider, payment_provider_destroy, provider=provider, actor=report.actor, now=now
            )
        report.send()

    def get_urls(self) -> list:
        view = self.admin_site.admin_view
        return [
            path(
                "checkout-link/<uuid:customer_id>/",
                view(self.checkout_link_view),
                name="integrations_paymentprovider_checkout_link",
            ),
            *super().get_urls(),
        ]

    def checkout_link_view(self, request: HttpRequest, customer_id: object) -> HttpResponse:
        """POST from the customer page: a new Stripe Checkout link (setup mode) to send to the
        customer, shown in a message; the customer page again."""
        if request.method != "POST" or not request.user.has_perm("customers.change_customer"):
            raise PermissionDenied
        customers = Customer.objects.filter(
            organization__in=staff_organizations(request), deleted_at__isnull=True
        )
        customer = get_object_or_404(customers, pk=customer_id)
        try:
            url = customer_checkout_url_generate(
                customer=customer, actor=Actor.from_request(request)
            )
        except ProviderError as exc:
            self.message_user(
                request, f"Stripe refused: {exc.details.get('message')}", messages.ERROR
            )
        except DomainError as exc:
            self.message_user(request, f"No checkout link: {describe(exc)}", messages.WARNING)
        else:
            self.message_user(
                request,
                format_html(
                    'Checkout link for {} (valid 24 hours): <a href="{}">{}</a>', customer, url, url
                ),
                messages.SUCCESS,
            )
        return HttpResponseRedirect(reverse("admin:customers_customer_change", args=[customer.pk]))
