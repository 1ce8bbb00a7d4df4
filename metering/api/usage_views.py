"""`/customers/{external_customer_id}/current_usage` and `/projected_usage` (spec §25): dry runs
of the usage engine, rate-limited in the `usage` bucket (§1.4)."""

from __future__ import annotations

import json
from typing import Any

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from billing.api.parameters import EXTERNAL_CUSTOMER_ID, EXTERNAL_SUBSCRIPTION_ID
from billing.api.views import LagoAPIView
from billing.errors import Invalid, NotAllowed
from customers.models import Customer, Subscription
from customers.selectors import customer_get_for_usage
from customers.services.subscription_reads import initial_started_at, with_initial_started_at
from metering.usage import UsageSelection, customer_current_usage

APPLY_TAXES = OpenApiParameter("apply_taxes", OpenApiTypes.BOOL, description="Default true.")
USAGE_PARAMETERS = [
    EXTERNAL_CUSTOMER_ID,
    EXTERNAL_SUBSCRIPTION_ID,
    APPLY_TAXES,
    OpenApiParameter("charge_id", OpenApiTypes.UUID),
    OpenApiParameter("charge_code", OpenApiTypes.STR),
    OpenApiParameter("billable_metric_code", OpenApiTypes.STR),
    OpenApiParameter(
        "filter_by_presentation[]",
        OpenApiTypes.STR,
        many=True,
        description="Presentation group keys to break the units down by (default: all).",
    ),
]


def _flag(raw: str | None, default: bool) -> bool:
    if raw in (None, ""):
        return default
    return raw.lower() not in ("false", "0", "no")


def _legacy_group_filter(raw: str | None) -> dict[str, list[str]]:
    """The deprecated `filter_by_group` (lago-python-client still sends it): a JSON object of
    key -> value or list of values. Anything else is a 422."""
    if raw in (None, ""):
        return {}
    try:
        decoded = json.loads(raw)
    except ValueError:
        decoded = None
    if not isinstance(decoded, dict):
        raise Invalid({"filter_by_group": ["invalid_format"]})
    return {
        str(key): [str(v) for v in (value if isinstance(value, list) else [value])]
        for key, value in decoded.items()
    }


def _presentation_filter(params: Any) -> tuple[str, ...] | None:
    """The presentation keys to break down by (absent: all of them): `filter_by_presentation[]`
    repeated, or `filter_by_presentation` as a JSON array (what lago-python-client sends) or a
    comma-separated list."""
    names = ("filter_by_presentation[]", "filter_by_presentation")
    if not any(name in params for name in names):
        return None
    keys: list[str] = []
    for name in names:
        for raw in params.getlist(name):
            text = str(raw).strip()
            try:
                decoded = json.loads(text) if text.startswith("[") else None
            except ValueError:
                decoded = None
            values = decoded if isinstance(decoded, list) else text.split(",")
            keys.extend(str(value).strip() for value in values if str(value).strip())
    return tuple(keys)


class UsageView(LagoAPIView):
    """Base of the usage endpoints: the customer, its active subscription, the rate limit."""

    permission_resource = "customer_usage"
    rate_limit_bucket = "usage"

    def customer(self, external_customer_id: str) -> Customer:
        return customer_get_for_usage(
            organization=self.organization, external_id=external_customer_id
        )

    def _active_subscription(self, customer: Customer, request: Request) -> Subscription:
        subscription = (
            with_initial_started_at(customer.subscriptions.all())
            .filter(
                external_id=request.query_params.get("external_subscription_id") or "",
                status=Subscription.Status.ACTIVE,
            )
            .select_related("plan", "organization")
            .prefetch_related("plan__taxes")
            .first()
        )
        if subscription is None:
            raise NotAllowed("no_active_subscription")  # Lago's CustomerUsageService
        subscription.customer = customer  # already loaded, with its taxes
        return subscription

    def _usage(self, request: Request, external_customer_id: str, *, projected: bool) -> dict:
        customer = self.customer(external_customer_id)
        subscription = self._active_subscription(customer, request)
        params = request.query_params
        selection = UsageSelection(
            charge_id=params.get("charge_id") or params.get("filter_by_charge_id") or None,
            charge_code=params.get("charge_code") or params.get("filter_by_charge_code") or None,
            billable_metric_code=params.get("billable_metric_code") or None,
            group={
                **_legacy_group_filter(params.get("filter_by_group")),
                **{
                    key[len("group[") : -1]: value
                    for key, value in params.items()
                    if key.startswith("group[") and key.endswith("]")
                },
            },
            presentation=_presentation_filter(params),
        )
        return customer_current_usage(
            customer=subscription.customer,
            subscription=subscription,
            now=timezone.now(),
            apply_taxes=_flag(params.get("apply_taxes"), True),
            projected=projected,
            selection=selection,
            chain_started_at=initial_started_at(subscription),
        )


class CurrentUsageView(UsageView):
    """Usage of the current period so far."""

    @extend_schema(
        parameters=USAGE_PARAMETERS,
        responses=OpenApiResponse(OpenApiTypes.OBJECT, description="`{customer_usage: {...}}`"),
    )
    def get(self, request: Request, external_customer_id: str) -> Response:
        return Response(
            {"customer_usage": self._usage(request, external_customer_id, projected=False)}
        )


class ProjectedUsageView(UsageView):
    """Current usage plus its projection to the end of the period."""

    @extend_schema(
        parameters=USAGE_PARAMETERS,
        responses=OpenApiResponse(
            OpenApiTypes.OBJECT, description="`{customer_projected_usage: {...}}`"
        ),
    )
    def get(self, request: Request, external_customer_id: str) -> Response:
        usage = self._usage(request, external_customer_id, projected=True)
        return Response({"customer_projected_usage": usage})
