"""`/subscriptions/{external_id}/lifetime_usage` and `/subscriptions/{external_id}/alerts[/{code}]`.

Alerts: POST takes one alert (`alert: {...}`, answers `alert`) or several at once (`alerts:
[...]`, answers `alerts`, all or none); DELETE on the collection removes every alert of the
subscription. Another organization's subscription or alert is a 404.
"""

from __future__ import annotations

from django.db.models import QuerySet
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework.request import Request
from rest_framework.response import Response

from billing.api.views import OrganizationViewSet, parse, wrapped_schema
from billing.errors import BadRequest, NotFound
from customers.models import Subscription
from metering.api.monitoring_serializers import (
    LifetimeUsageInput,
    LifetimeUsageSerializer,
    UsageAlertInput,
    UsageAlertSerializer,
)
from metering.models import LifetimeUsage, UsageAlert
from metering.selectors import subscription_for_monitoring, usage_alert_list
from metering.services.lifetime_usages import (
    lifetime_usage_get_or_create,
    lifetime_usage_thresholds,
    lifetime_usage_update,
)
from metering.services.usage_alerts import (
    usage_alert_create,
    usage_alert_create_batch,
    usage_alert_delete,
    usage_alert_delete_all,
    usage_alert_update,
)

_PATH = OpenApiParameter.PATH
SUBSCRIPTION = [
    OpenApiParameter(
        "external_id", OpenApiTypes.STR, _PATH, description="External id of the subscription"
    )
]
ALERT_CODE = OpenApiParameter("code", OpenApiTypes.STR, _PATH, description="Code of the alert")
ALERT_RESPONSE = wrapped_schema("UsageAlertResponse", UsageAlertSerializer, "alert")
ALERTS_RESPONSE = inline_serializer(
    "UsageAlertsResponse", fields={"alerts": UsageAlertSerializer(many=True)}
)
LIFETIME_RESPONSE = wrapped_schema(
    "LifetimeUsageResponse", LifetimeUsageSerializer, "lifetime_usage"
)


class LifetimeUsageViewSet(OrganizationViewSet):
    serializer_class = LifetimeUsageSerializer
    root_key = "lifetime_usage"
    permission_resource = "lifetime_usage"

    def _respond(self, lifetime: LifetimeUsage) -> Response:
        now = timezone.now()
        lifetime = LifetimeUsage.objects.select_related("subscription").get(pk=lifetime.pk)
        context = {"now": now, "thresholds": lifetime_usage_thresholds(lifetime, now=now)}
        return Response({"lifetime_usage": LifetimeUsageSerializer(lifetime, context=context).data})

    def _lifetime(self) -> LifetimeUsage:
        subscription = subscription_for_monitoring(
            organization=self.organization,
            external_id=self.kwargs["external_id"],
            status=self.request.query_params.get("subscription_status"),
        )
        return lifetime_usage_get_or_create(subscription=subscription)

    @extend_schema(parameters=SUBSCRIPTION, responses=LIFETIME_RESPONSE)
    def retrieve(self, request: Request, **kwargs: object) -> Response:
        return self._respond(self._lifetime())

    @extend_schema(
        parameters=SUBSCRIPTION,
        request=wrapped_schema("LifetimeUsageUpdate", LifetimeUsageInput, "lifetime_usage"),
        responses=LIFETIME_RESPONSE,
    )
    def update(self, request: Request, **kwargs: object) -> Response:
        lifetime = self._lifetime()
        values = parse(LifetimeUsageInput, request.data, root="lifetime_usage")
        lifetime = lifetime_usage_update(
            lifetime_usage=lifetime, values=values, actor=self.actor, now=timezone.now()
        )
        return self._respond(lifetime)


class UsageAlertViewSet(OrganizationViewSet):
    serializer_class = UsageAlertSerializer
    root_key, root_key_plural = "alert", "alerts"
    permission_resource = "alert"

    def subscription(self) -> Subscription:
        return subscription_for_monitoring(
            organization=self.organization,
            external_id=self.kwargs["external_id"],
            status=self.request.query_params.get("subscription_status"),
        )

    def get_queryset(self) -> QuerySet[UsageAlert]:
        if getattr(self, "swagger_fake_view", False):  # schema generation: no API key
            return UsageAlert.objects.none()
        return usage_alert_list(
            organization=self.organization, external_subscription_id=self.kwargs["external_id"]
        )

    def alert(self) -> UsageAlert:
        self.subscription()  # an unknown subscription is a subscription_not_found
        alert = self.get_queryset().filter(code=self.kwargs["code"]).first()
        if alert is None:
            raise NotFound("alert")
        return alert

    def _many(self, alerts: list[UsageAlert]) -> Response:
        return Response({"alerts": self.get_serializer(alerts, many=True).data})

    @extend_schema(parameters=SUBSCRIPTION, responses=ALERTS_RESPONSE)
    def list(self, request: Request, **kwargs: object) -> Response:
        self.subscription()
        return super().list(request)

    @extend_schema(
        parameters=SUBSCRIPTION,
        request=wrapped_schema("UsageAlertCreate", UsageAlertInput, "alert"),
        responses=ALERT_RESPONSE,
    )
    def create(self, request: Request, **kwargs: object) -> Response:
        subscription, now = self.subscription(), timezone.now()
        if isinstance(request.data, dict) and "alerts" in request.data:
            alerts = request.data["alerts"]
            if not isinstance(alerts, list):
                raise BadRequest("param is missing or the value is empty: alerts")
            created = usage_alert_create_batch(
                subscription=subscription, alerts=alerts, actor=self.actor, now=now
            )
            return self._many([self.get_queryset().get(pk=a.pk) for a in created])
        values = parse(UsageAlertInput, request.data, root="alert")
        alert = usage_alert_create(
            subscription=subscription, values=values, actor=self.actor, now=now
        )
        return self.respond(self.get_queryset().get(pk=alert.pk))

    @extend_schema(
        parameters=SUBSCRIPTION,
        responses=ALERTS_RESPONSE,
        operation_id="subscriptions_alerts_destroy_all",
    )
    def destroy_all(self, request: Request, **kwargs: object) -> Response:
        subscription = self.subscription()
        alerts = list(self.get_queryset())
        data = self.get_serializer(alerts, many=True).data
        usage_alert_delete_all(subscription=subscription, actor=self.actor)
        return Response({"alerts": data})

    @extend_schema(parameters=[*SUBSCRIPTION, ALERT_CODE], responses=ALERT_RESPONSE)
    def retrieve(self, request: Request, **kwargs: object) -> Response:
        return self.respond(self.alert())

    @extend_schema(
        parameters=[*SUBSCRIPTION, ALERT_CODE],
        request=wrapped_schema("UsageAlertUpdate", UsageAlertInput, "alert"),
        responses=ALERT_RESPONSE,
    )
    def update(self, request: Request, **kwargs: object) -> Response:
        alert = self.alert()
        values = parse(UsageAlertInput, request.data, root="alert", partial=True)
        alert = usage_alert_update(
            alert=alert,
            subscription=self.subscription(),
            values=values,
            actor=self.actor,
            now=timezone.now(),
        )
        return self.respond(self.get_queryset().get(pk=alert.pk))

    @extend_schema(parameters=[*SUBSCRIPTION, ALERT_CODE], responses=ALERT_RESPONSE)
    def destroy(self, request: Request, **kwargs: object) -> Response:
        alert = self.alert()
        data = self.get_serializer(alert).data
        usage_alert_delete(alert=alert, actor=self.actor)
        return Response({"alert": data})
