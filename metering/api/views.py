"""`/events` (spec §5, Appendix A): ingestion, listing and fee estimates.

Rate-limited in the `events` bucket (spec §1.4: 500 req/s per organization); reads and writes
go through the event store, the ingestion service and the usage engine.
"""

from __future__ import annotations

from datetime import UTC, datetime

from django.db.models import QuerySet
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework.request import Request
from rest_framework.response import Response

from billing.api.fields import storable_instant
from billing.api.views import OrganizationViewSet, wrapped_schema
from billing.errors import BadRequest, NotFound
from customers.models import Subscription
from metering.api.serializers import (
    EstimatedFeeSerializer,
    EventBatchInput,
    EventEstimateInput,
    EventInput,
    EventInstantBatchInput,
    EventInstantInput,
    EventSerializer,
    InstantFeeSerializer,
    batch_payload,
    events_payload,
    instant_fees_payload,
)
from metering.models import Event
from metering.services.ingestion import event_create, event_create_batch
from metering.store import get_event_store
from metering.usage import (
    FeeTaxes,
    event_estimate_fees,
    event_estimate_instant_fees,
    events_estimate_instant_fees,
)

EVENT_RESPONSE = wrapped_schema("EventResponse", EventSerializer, "event")
EVENTS_RESPONSE = inline_serializer(
    name="EventsResponse", fields={"events": EventSerializer(many=True)}
)
FEES_RESPONSE = inline_serializer(
    name="EstimatedFeesResponse", fields={"fees": EstimatedFeeSerializer(many=True)}
)
INSTANT_FEES_RESPONSE = inline_serializer(
    name="FeesEstimate", fields={"fees": InstantFeeSerializer(many=True)}
)


def _instant(raw: str | None, name: str) -> datetime | None:
    """A query-string datetime (ISO 8601; naive = UTC)."""
    if raw in (None, ""):
        return None
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError as exc:
        raise BadRequest(f"{name} is not a valid datetime") from exc
    if not storable_instant(value):
        raise BadRequest(f"{name} is not a valid datetime")
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class EventViewSet(OrganizationViewSet):
    """Usage events by `transaction_id`."""

    serializer_class = EventSerializer
    lookup_field = "transaction_id"
    root_key, root_key_plural = "event", "events"
    permission_resource = "event"
    rate_limit_bucket = "events"

    def get_queryset(self) -> QuerySet[Event]:
        if getattr(self, "swagger_fake_view", False):  # schema generation: no API key
            return Event.objects.none()
        params = self.request.query_params
        external_subscription_id = params.get("external_subscription_id") or None
        timestamp_from = _instant(params.get("timestamp_from"), "timestamp_from")
        if params.get("timestamp_from_started_at") in ("true", "1") and external_subscription_id:
            started = (
                Subscription.objects.for_organization(self.organization)
                .filter(external_id=external_subscription_id, started_at__isnull=False)
                .order_by("-started_at")
                .values_list("started_at", flat=True)
                .first()
            )
            if started is not None:
                timestamp_from = max(timestamp_from or started, started)
        return get_event_store().list_events(
            self.organization.id,
            external_subscription_id=external_subscription_id,
            code=params.get("code") or None,
            timestamp_from=timestamp_from,
            timestamp_to=_instant(params.get("timestamp_to"), "timestamp_to"),
        )

    @extend_schema(
        parameters=[
            OpenApiParameter("external_subscription_id", OpenApiTypes.STR),
            OpenApiParameter("code", OpenApiTypes.STR),
            OpenApiParameter("timestamp_from", OpenApiTypes.DATETIME),
            OpenApiParameter("timestamp_to", OpenApiTypes.DATETIME),
            OpenApiParameter("timestamp_from_started_at", OpenApiTypes.BOOL),
            OpenApiParameter("page", OpenApiTypes.INT),
            OpenApiParameter("per_page", OpenApiTypes.INT),
        ]
    )
    def list(self, request: Request, *args: object, **kwargs: object) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(events_payload(page))

    @extend_schema(
        parameters=[
            OpenApiParameter("transaction_id", OpenApiTypes.STR, OpenApiParameter.PATH),
            OpenApiParameter("external_subscription_id", OpenApiTypes.STR),
        ],
        responses=EVENT_RESPONSE,
    )
    def retrieve(self, request: Request, transaction_id: str) -> Response:
        event = get_event_store().get_event(
            self.organization.id,
            transaction_id,
            request.query_params.get("external_subscription_id") or None,
        )
        if event is None:
            raise NotFound("event")
        return Response({"event": EventSerializer().to_representation(event)})

    @extend_schema(
        request=wrapped_schema("EventCreate", EventInput, "event"), responses=EVENT_RESPONSE
    )
    def create(self, request: Request) -> Response:
        payload = request.data.get("event") if isinstance(request.data, dict) else None
        if not isinstance(payload, dict):
            raise BadRequest("param is missing or the value is empty: event")
        event = event_create(
            organization=self.organization, payload=payload, actor=self.actor, now=timezone.now()
        )
        return Response({"event": EventSerializer().to_representation(event)})

    @extend_schema(request=EventBatchInput, responses=EVENTS_RESPONSE)
    def batch(self, request: Request) -> Response:
        if not isinstance(request.data, dict):
            raise BadRequest("param is missing or the value is empty: events")
        events = event_create_batch(
            organization=self.organization,
            payloads=request.data.get("events"),
            actor=self.actor,
            now=timezone.now(),
        )
        return Response({"events": batch_payload(events)})

    @extend_schema(
        request=wrapped_schema("EventEstimateFeesInput", EventEstimateInput, "event"),
        responses=FEES_RESPONSE,
    )
    def estimate_fees(self, request: Request) -> Response:
        payload = request.data.get("event") if isinstance(request.data, dict) else None
        if not isinstance(payload, dict):
            raise BadRequest("param is missing or the value is empty: event")
        subscription, fees = event_estimate_fees(
            organization=self.organization, payload=payload, now=timezone.now()
        )
        fee_taxes = FeeTaxes(subscription=subscription)
        context = {
            "subscription": subscription,
            "taxes": {fee.charge.pk: fee_taxes.for_charge(fee.charge) for fee in fees},
        }
        return Response(
            {"fees": [EstimatedFeeSerializer(context=context).to_representation(f) for f in fees]}
        )

    @extend_schema(
        request=wrapped_schema("EventEstimateInstantFeesInput", EventInstantInput, "event"),
        responses=INSTANT_FEES_RESPONSE,
    )
    def estimate_instant_fees(self, request: Request) -> Response:
        payload = request.data.get("event") if isinstance(request.data, dict) else None
        if not isinstance(payload, dict):
            raise BadRequest("param is missing or the value is empty: event")
        fees = event_estimate_instant_fees(
            organization=self.organization, payload=payload, now=timezone.now()
        )
        return Response({"fees": instant_fees_payload(fees)})

    @extend_schema(request=EventInstantBatchInput, responses=INSTANT_FEES_RESPONSE)
    def batch_estimate_instant_fees(self, request: Request) -> Response:
        payloads = request.data.get("events") if isinstance(request.data, dict) else None
        if payloads is None:
            raise BadRequest("param is missing or the value is empty: events")
        fees = events_estimate_instant_fees(
            organization=self.organization, payloads=payloads, now=timezone.now()
        )
        return Response({"fees": instant_fees_payload(fees)})
