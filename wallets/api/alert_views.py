"""`/customers/{external_customer_id}/wallets/{wallet_code}/alerts[/{code}]` (spec §17.8).

POST takes one alert (`alert: {...}`, answers `alert`) or several at once (`alerts: [...]`,
answers `alerts`, all or none); DELETE on the collection removes every alert of the wallet.
Another organization's customer, wallet or alert is a 404.
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
from wallets.api.alert_serializers import AlertInput, AlertSerializer
from wallets.models import Wallet, WalletAlert
from wallets.selectors import wallet_get_by_code
from wallets.services.alerts import (
    alert_create,
    alert_create_batch,
    alert_delete,
    alert_delete_all,
    alert_update,
)

ALERT_RESPONSE = wrapped_schema("WalletAlertResponse", AlertSerializer, "alert")
ALERTS_RESPONSE = inline_serializer(
    "WalletAlertsResponse", fields={"alerts": AlertSerializer(many=True)}
)
_PATH = OpenApiParameter.PATH
PARAMETERS = [
    OpenApiParameter("external_customer_id", OpenApiTypes.STR, _PATH),
    OpenApiParameter("wallet_code", OpenApiTypes.STR, _PATH, description="Code of the wallet"),
]
ALERT_CODE = OpenApiParameter("code", OpenApiTypes.STR, _PATH, description="Code of the alert")


class WalletAlertViewSet(OrganizationViewSet):
    serializer_class = AlertSerializer
    root_key, root_key_plural = "alert", "alerts"
    permission_resource = "alert"

    def wallet(self) -> Wallet:
        return wallet_get_by_code(
            organization=self.organization,
            external_customer_id=self.kwargs["external_customer_id"],
            code=self.kwargs["wallet_code"],
        )

    def get_queryset(self) -> QuerySet[WalletAlert]:
        if getattr(self, "swagger_fake_view", False):  # schema generation: no API key
            return WalletAlert.objects.none()
        return (
            WalletAlert.objects.for_organization(self.organization)
            .filter(wallet=self.wallet())
            .select_related("wallet__customer")
            .order_by("created_at", "id")
        )

    def alert(self) -> WalletAlert:
        alert = self.get_queryset().filter(code=self.kwargs["code"]).first()
        if alert is None:
            raise NotFound("alert")
        return alert

    def _many(self, alerts: list[WalletAlert]) -> Response:
        return Response({"alerts": self.get_serializer(alerts, many=True).data})

    @extend_schema(parameters=PARAMETERS, responses=ALERTS_RESPONSE)
    def list(self, request: Request, **kwargs: object) -> Response:
        return super().list(request)

    @extend_schema(
        parameters=PARAMETERS,
        request=wrapped_schema("WalletAlertCreate", AlertInput, "alert"),
        responses=ALERT_RESPONSE,
    )
    def create(self, request: Request, **kwargs: object) -> Response:
        wallet, now = self.wallet(), timezone.now()
        if isinstance(request.data, dict) and "alerts" in request.data:
            alerts = request.data["alerts"]
            if not isinstance(alerts, list):
                raise BadRequest("param is missing or the value is empty: alerts")
            return self._many(
                alert_create_batch(wallet=wallet, alerts=alerts, actor=self.actor, now=now)
            )
        values = parse(AlertInput, request.data, root="alert")
        alert = alert_create(wallet=wallet, values=values, actor=self.actor, now=now)
        return self.respond(self.get_queryset().get(pk=alert.pk))

    @extend_schema(
        parameters=PARAMETERS,
        responses=ALERTS_RESPONSE,
        operation_id="customers_wallets_alerts_destroy_all",
    )
    def destroy_all(self, request: Request, **kwargs: object) -> Response:
        return self._many(alert_delete_all(wallet=self.wallet(), actor=self.actor))

    @extend_schema(parameters=[*PARAMETERS, ALERT_CODE], responses=ALERT_RESPONSE)
    def retrieve(self, request: Request, **kwargs: object) -> Response:
        return self.respond(self.alert())

    @extend_schema(
        parameters=[*PARAMETERS, ALERT_CODE],
        request=wrapped_schema("WalletAlertUpdate", AlertInput, "alert"),
        responses=ALERT_RESPONSE,
    )
    def update(self, request: Request, **kwargs: object) -> Response:
        alert = self.alert()
        values = parse(AlertInput, request.data, root="alert", partial=True)
        alert = alert_update(alert=alert, values=values, actor=self.actor, now=timezone.now())
        return self.respond(self.get_queryset().get(pk=alert.pk))

    @extend_schema(parameters=[*PARAMETERS, ALERT_CODE], responses=ALERT_RESPONSE)
    def destroy(self, request: Request, **kwargs: object) -> Response:
        alert = self.alert()
        data = self.get_serializer(alert).data
        alert_delete(alert=alert, actor=self.actor)
        return Response({"alert": data})
