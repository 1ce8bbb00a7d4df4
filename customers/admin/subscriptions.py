"""Subscription admin: browse, then change plan or terminate through the services (spec §9).

Subscriptions are never edited field by field here: every change is a service call (an action
with an intermediate form), so the status machine, periods and outbox stay consistent.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template import engines
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from billing.actors import Actor
from billing.admin_audit import ActivityTimelineMixin
from billing.admin_base import (
    ActionReport,
    DateRangeFilter,
    OrganizationAdmin,
    ThemedFormMixin,
    describe,
)
from billing.admin_export import StreamingExportMixin
from billing.errors import DomainError
from billing.money import format_money
from customers import ports
from customers.admin.exports import SubscriptionResource
from customers.admin.subscribe import PlanChoiceField, subscribe_view
from customers.models import Subscription
from customers.services.entitlements import (
    subscription_entitlement_list,
    subscription_entitlements_replace,
)
from customers.services.subscription_reads import (
    subscription_current_period,
    subscription_next,
    subscription_plan_change_effect,
    subscription_trial_end,
)
from customers.services.subscriptions import subscription_change_plan, subscription_terminate
from plans.entitlement_forms import EntitlementValuesForm, organization_features
from plans.models import Plan

# An intermediate page in the admin's look (kept here: one module per part of the app).
ACTION_FORM_TEMPLATE = engines["django"].from_string(
    """{% extends "admin/base_site.html" %}
{% block breadcrumbs %}<div class="breadcrumbs">
  <a href="{% url 'admin:index' %}">Home</a> &rsaquo;
  <a href="{% url 'admin:customers_subscription_changelist' %}">Subscriptions</a> &rsaquo;
  {{ title }}</div>{% endblock %}
{% block content %}
<form method="post">{% csrf_token %}
  <p>{{ intro }}</p>
  <ul>{% for s in subscriptions %}
    <li>{{ s.external_id }} — {{ s.customer }} — {{ s.plan }} ({{ s.get_status_display }})
      {% if effects %}
        <strong class="plan-change-effect" data-subscription="{{ s.pk }}"></strong>
      {% endif %}</li>
  {% endfor %}</ul>
  <fieldset class="module aligned">{{ form.as_p }}</fieldset>
  {% if effects %}{{ effects|json_script:"plan-change-effects" }}
  <script>
    // what the chosen plan does to each subscription: upgrade now or downgrade later
    (function () {
      var effects = JSON.parse(document.getElementById('plan-change-effects').textContent);
      var select = document.querySelector('select[name="plan"]');
      function show() {
        var byPlan = effects[select.value] || {};
        document.querySelectorAll('.plan-change-effect').forEach(function (el) {
          var effect = byPlan[el.dataset.subscription];
          el.textContent = effect ? ' → ' + effect : '';
        });
      }
      select.addEventListener('change', show); show();
    })();
  </script>{% endif %}
  <input type="hidden" name="action" value="{{ action }}">
  {% for s in subscriptions %}
    <input type="hidden" name="_selected_action" value="{{ s.pk }}">
  {% endfor %}
  <div class="submit-row">
    <input type="submit" name="apply" value="{{ submit }}" class="default">
    <a href="{% url 'admin:customers_subscription_changelist' %}" class="closelink">Cancel</a>
  </div>
</form>
{% endblock %}"""
)


class ChangePlanForm(ThemedFormMixin, forms.Form):
    plan = PlanChoiceField(queryset=Plan.objects.none(), label=_("New plan"))

    def __init__(self, *args: object, plans: QuerySet, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["plan"].queryset = plans


class TerminateForm(ThemedFormMixin, forms.Form):
    on_termination_credit_note = forms.ChoiceField(
        choices=[("", _("Default (credit)")), *Subscription.OnTerminationCreditNote.choices],
        required=False,
        label=_("Unused days (pay-in-advance plans)"),
        help_text=_(
            "Credit: a credit note the next invoices use; refund: a credit note paid back; "
            "offset: a credit note that reduces what is still due on the invoice; skip: none."
        ),
    )
    on_termination_invoice = forms.ChoiceField(
        choices=Subscription.OnTerminationInvoice.choices,
        initial=Subscription.OnTerminationInvoice.GENERATE,
        label=_("Closing invoice"),
        help_text=_("Generate: bill the usage and fees due up to now; skip: no closing invoice."),
    )


@admin.register(Subscription)
class SubscriptionAdmin(ActivityTimelineMixin, StreamingExportMixin, OrganizationAdmin):
    resource_classes = (SubscriptionResource,)
    export_name = "subscriptions"
    # dates without their time of day (every list shows dates the same way) and one end
    # column, so the list fits a 1280 px screen
    list_display = ("external_id", "customer", "plan_name", "status", "billing_time", "started",
                    "ends")  # fmt: skip
    list_filter = (
        "status",
        ("plan", admin.RelatedOnlyFieldListFilter),
        "billing_time",
        ("started_at", DateRangeFilter),
    )
    search_fields = ("external_id", "name", "customer__external_id", "customer__name")
    list_select_related = ("customer", "plan")
    date_hierarchy = "subscription_at"
    actions = ("change_plan", "terminate")
    fieldsets = (
        (None, {"fields": ("external_id", "name", "customer", "plan", "plan_price", "status",
                           "billing_time", "organization")}),
        (_("Dates"), {"fields": ("subscription_at", "started_at", "ending_at", "terminated_at",
                                 "canceled_at", "trial_end", "trial_ended_at",
                                 "current_billing_period")}),
        (_("Plan changes"), {"fields": ("previous_subscription", "next_subscription",
                                        "downgrade_plan_date")}),
        (_("Termination"), {"fields": ("on_termination_credit_note", "on_termination_invoice",
                                       "termination_alerts_sent")}),
        (_("Invoicing"), {"fields": ("consolidate_invoice", "purchase_order_number")}),
        (_("Entitlements"), {"fields": ("entitlements",)}),
    )  # fmt: skip

    def get_readonly_fields(self, request: HttpRequest, obj: Subscription | None = None) -> list:
        # Read-only: every change goes through an action (and so through a service).
        return [field for fieldset in self.fieldsets for field in fieldset[1]["fields"]]

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: dict | None = None
    ) -> HttpResponse:
        """ "New subscription": a customer, a plan and its terms, through the service of
        POST /subscriptions (never a raw row)."""
        return subscribe_view(self, request)

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False  # subscriptions are terminated, never deleted

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context=None
    ) -> HttpResponse:
        hidden = ("show_save", "show_save_and_continue", "show_save_and_add_another")
        extra_context = {**(extra_context or {}), **dict.fromkeys(hidden, False)}
        subscription = self.get_object(request, object_id)
        if subscription is not None:
            # the panels of the apps to the right (usage monitoring), under the fields
            extra_context["subscription_panels"] = [
                panel
                for provider in ports.subscription_panels()
                if (panel := provider(request, subscription))
            ]
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.display(description=_("Plan"), ordering="plan__name")
    def plan_name(self, subscription: Subscription) -> str:
        return subscription.plan.name or subscription.plan.code

    @admin.display(description=_("Started"), ordering="started_at")
    def started(self, subscription: Subscription) -> str:
        when = subscription.started_at or subscription.subscription_at
        return when.date().isoformat() if when else "—"

    @admin.display(description=_("Ends"), ordering="ending_at")
    def ends(self, subscription: Subscription) -> str:
        if subscription.terminated_at:
            return f"ended {subscription.terminated_at.date().isoformat()}"
        if subscription.ending_at:
            return subscription.ending_at.date().isoformat()
        return "—"

    @admin.display(description=_("Entitlements"))
    def entitlements(self, subscription: Subscription) -> str:
        effective = subscription_entitlement_list(subscription=subscription)
        summary = "; ".join(
            e.feature.code
            + (
                " ("
                + ", ".join(f"{p['code']} {p['value']}" for p in e.payload()["privileges"])
                + ")"
                if e.privileges
                else ""
            )
            for e in effective
        )
        return format_html(
            '{} <a class="button" href="{}">{}</a>',
            summary or "—",
            reverse("admin:customers_subscription_entitlements", args=[subscription.pk]),
            _("Edit entitlements"),
        )

    def get_urls(self) -> list:
        return [
            path(
                "<path:object_id>/entitlements/",
                self.admin_site.admin_view(self.entitlements_view),
                name="customers_subscription_entitlements",
            ),
            *super().get_urls(),
        ]

    def entitlements_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """The subscription's entitlements: its plan's, with this subscription's overrides typed
        over them (an empty field keeps the plan's value, shown greyed); a feature unchecked
        is taken away from this subscription only."""
        subscription = get_object_or_404(self.get_queryset(request), pk=object_id)
        if not self.has_view_permission(request, subscription):
            raise PermissionDenied
        may_change = self.has_change_permission(request, subscription)
        effective = subscription_entitlement_list(subscription=subscription)
        overrides, plan_values = {}, {}
        for entitlement in effective:
            for privilege in entitlement.payload()["privileges"]:
                key = (entitlement.feature.code, privilege["code"])
                overrides[key], plan_values[key] = (
                    privilege["override_value"],
                    privilege["plan_value"],
                )
        form = EntitlementValuesForm(
            request.POST if request.method == "POST" else None,
            features=organization_features(subscription.organization_id),
            entitled={e.feature.code for e in effective},
            values=overrides,
            placeholders=plan_values,
        )
        if request.method == "POST":
            if not may_change:
                raise PermissionDenied
            if form.is_valid():
                try:
                    subscription_entitlements_replace(
                        subscription=subscription,
                        entitlements=form.entitlements(),
                        actor=Actor.from_request(request),
                        now=timezone.now(),
                    )
                except DomainError as exc:
                    form.add_error(None, describe(exc))
                else:
                    self.log_change(request, subscription, "Changed entitlements")
                    self.message_user(
                        request, _("Entitlements of %(s)s saved.") % {"s": subscription}
                    )
                    return HttpResponseRedirect(request.path)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": subscription,
            "title": _("Entitlements of %(s)s") % {"s": subscription},
            "intro": _(
                "The plan's values show greyed; a value typed here applies to this "
                "subscription only."
            ),
            "form": form,
            "may_change": may_change,
            "show_plan_values": True,
            "back_url": reverse("admin:customers_subscription_change", args=[subscription.pk]),
            "features_url": reverse("admin:plans_feature_changelist"),
        }
        return TemplateResponse(request, "admin/plans/entitlements.html", context)

    @admin.display(description=_("Plan price"))
    def plan_price(self, subscription: Subscription) -> str:
        plan = subscription.plan
        return f"{format_money(plan.amount_cents, plan.amount_currency)} / {plan.interval}"

    @admin.display(description=_("Current billing period"))
    def current_billing_period(self, subscription: Subscription) -> str:
        period = subscription_current_period(subscription, now=timezone.now())
        if period is None:
            return "—"
        tz = period.timezone
        start = period.charges_from_datetime.astimezone(tz)
        end = period.charges_to_datetime.astimezone(tz)
        return f"{start:%Y-%m-%d %H:%M} → {end:%Y-%m-%d %H:%M} ({tz.key})"

    @admin.display(description=_("Trial ends"))
    def trial_end(self, subscription: Subscription) -> str:
        end = subscription_trial_end(subscription)
        return f"{end:%Y-%m-%d %H:%M} UTC" if end else "—"

    @admin.display(description=_("Next subscription"))
    def next_subscription(self, subscription: Subscription) -> str:
        successor = subscription_next(subscription)
        if successor is None:
            return "—"
        return format_html(
            '<a href="../../{}/change/">{} ({})</a>',
            successor.pk,
            successor.plan,
            successor.get_status_display(),
        )

    def _action_page(
        self,
        request: HttpRequest,
        queryset: QuerySet,
        *,
        action: str,
        title: str,
        intro: str,
        submit: str,
        form: forms.Form,
        effects: dict | None = None,
    ) -> HttpResponse:
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": title,
            "intro": intro,
            "submit": submit,
            "form": form,
            "action": action,
            "effects": effects,
            "subscriptions": queryset.select_related("customer", "plan"),
        }
        return HttpResponse(ACTION_FORM_TEMPLATE.render(context, request))

    @admin.action(description=_("Change plan…"), permissions=["change"])
    def change_plan(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        plans = (
            Plan.objects.alive()
            .filter(parent__isnull=True, organization__in=queryset.values("organization"))
            .order_by("name", "code")
        )
        form = ChangePlanForm(request.POST if "apply" in request.POST else None, plans=plans)
        now = timezone.now()
        if form.is_bound and form.is_valid():
            report = ActionReport(self, request, "moved to another plan")
            code = form.cleaned_data["plan"].code
            for subscription in queryset.select_related("customer", "organization"):
                report.attempt(
                    subscription,
                    subscription_change_plan,
                    subscription=subscription,
                    plan_code=code,
                    actor=report.actor,
                    now=now,
                )
            report.send()
            return None
        return self._action_page(
            request,
            queryset,
            action="change_plan",
            title=_("Change plan"),
            intro=_(
                "A plan costing at least as much per year is an upgrade and applies now; a "
                "cheaper one is a downgrade and applies at the end of the current billing "
                "period. Each subscription below shows what the chosen plan does to it."
            ),
            submit=_("Change plan"),
            form=form,
            effects=self._plan_change_effects(queryset, plans, now),
        )

    @staticmethod
    def _plan_change_effects(queryset: QuerySet, plans: QuerySet, now) -> dict:
        """{plan id: {subscription id: what choosing the plan does to it}} for the page."""
        effects: dict[str, dict[str, str]] = {}
        subscriptions = list(
            queryset.filter(
                status__in=(Subscription.Status.ACTIVE, Subscription.Status.PENDING)
            ).select_related("customer__billing_entity", "customer__organization", "plan")[:100]
        )
        for plan in plans:
            for subscription in subscriptions:
                kind, day = subscription_plan_change_effect(subscription, plan=plan, now=now)
                effects.setdefault(str(plan.pk), {})[str(subscription.pk)] = {
                    "same": "already on this plan: nothing changes",
                    "swap": "not started yet: its plan is replaced",
                    "upgrade": "upgrade: the new plan applies now",
                    "downgrade": f"downgrade: the new plan applies on {day}",
                }[kind]
        return effects

    @admin.action(description=_("Terminate…"), permissions=["change"])
    def terminate(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        form = TerminateForm(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            report, now = ActionReport(self, request, "terminated"), timezone.now()
            for subscription in queryset:
                report.attempt(
                    subscription,
                    subscription_terminate,
                    subscription=subscription,
                    actor=report.actor,
                    now=now,
                    on_termination_credit_note=form.cleaned_data["on_termination_credit_note"]
                    or None,
                    on_termination_invoice=form.cleaned_data["on_termination_invoice"],
                )
            report.send()
            return None
        return self._action_page(
            request,
            queryset,
            action="terminate",
            title=_("Terminate subscriptions"),
            intro=_("Active subscriptions end now; pending ones are canceled."),
            submit=_("Terminate"),
            form=form,
        )
