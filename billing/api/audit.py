"""`/activity_logs` and `/api_logs`: the organization's audit trail, read-only (Lago's
activity-log and API-log objects and filters)."""

from __future__ import annotations

import uuid

import django_filters as filters
from django.db.models import Q, QuerySet
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from billing.api.filters import LagoFilterSet, ListFilter
from billing.api.views import OrganizationViewSet
from billing.errors import NotFound
from billing.models import ActivityLog, ActivitySource, ApiRequestLog


class ActivityLogSerializer(serializers.ModelSerializer):
    """Lago's `activity_log` object."""

    organization_id = serializers.UUIDField(read_only=True)
    api_key_id = serializers.UUIDField(read_only=True, allow_null=True)

    class Meta:
        model = ActivityLog
        fields = (
            "activity_id", "user_email", "activity_type", "activity_source", "activity_object",
            "activity_object_changes", "external_customer_id", "external_subscription_id",
            "resource_id", "resource_type", "organization_id", "api_key_id", "logged_at",
            "created_at",
        )  # fmt: skip


class ApiLogSerializer(serializers.ModelSerializer):
    """Lago's `api_log` object."""

    http_method = serializers.SerializerMethodField()
    http_status = serializers.IntegerField(source="status")
    request_path = serializers.CharField(source="path")
    api_key_id = serializers.UUIDField(read_only=True, allow_null=True)
    logged_at = serializers.DateTimeField(source="created_at")

    class Meta:
        model = ApiRequestLog
        fields = (
            "request_id", "api_version", "client", "http_method", "http_status",
            "request_origin", "request_path", "request_body", "request_response", "api_key_id",
            "logged_at", "created_at",
        )  # fmt: skip

    def get_http_method(self, log: ApiRequestLog) -> str:
        return log.method.lower()


class ActivityLogFilter(LagoFilterSet):
    """`GET /activity_logs` filters (Lago's `ActivityLogsQuery`)."""

    from_date = filters.DateFilter(field_name="logged_at", lookup_expr="date__gte")
    to_date = filters.DateFilter(field_name="logged_at", lookup_expr="date__lte")
    activity_types = ListFilter(field_name="activity_type")
    activity_sources = filters.MultipleChoiceFilter(
        field_name="activity_source", choices=ActivitySource.choices
    )
    user_emails = ListFilter(field_name="user_email")
    external_customer_id = filters.CharFilter()
    external_subscription_id = filters.CharFilter()
    resource_ids = ListFilter(field_name="resource_id")
    resource_types = ListFilter(field_name="resource_type")

    class Meta:
        model = ActivityLog
        fields: list[str] = []


class ApiLogFilter(LagoFilterSet):
    """`GET /api_logs` filters (Lago's `ApiLogsQuery`)."""

    from_date = filters.DateFilter(field_name="created_at", lookup_expr="date__gte")
    to_date = filters.DateFilter(field_name="created_at", lookup_expr="date__lte")
    http_methods = ListFilter(method="filter_http_methods")
    http_statuses = ListFilter(method="filter_http_statuses")
    api_version = filters.CharFilter()
    request_paths = ListFilter(method="filter_request_paths")

    class Meta:
        model = ApiRequestLog
        fields: list[str] = []

    def filter_http_methods(self, queryset: QuerySet, name: str, value: list[str]) -> QuerySet:
        return queryset.filter(method__in=[m.upper() for m in value]) if value else queryset

    def filter_http_statuses(self, queryset: QuerySet, name: str, value: list[str]) -> QuerySet:
        # Lago takes codes (200) and the words "succeeded" (< 400) and "failed" (>= 400)
        if not value:
            return queryset
        codes = [int(v) for v in value if v.isdigit()]
        condition = Q(status__in=codes)
        if "succeeded" in value:
            condition |= Q(status__lt=400)
        if "failed" in value:
            condition |= Q(status__gte=400)
        return queryset.filter(condition)

    def filter_request_paths(self, queryset: QuerySet, name: str, value: list[str]) -> QuerySet:
        if not value:
            return queryset
        condition = Q()
        for path in value:
            condition |= Q(path__startswith=path) | Q(
                path__startswith=f"/api/v1/{path.lstrip('/')}"
            )
        return queryset.filter(condition)


class ActivityLogViewSet(OrganizationViewSet):
    """Activity log entries of the key's organization, newest first, by `activity_id`."""

    queryset = ActivityLog.objects.order_by("-logged_at", "-id")
    serializer_class, filterset_class = ActivityLogSerializer, ActivityLogFilter
    root_key, root_key_plural = "activity_log", "activity_logs"
    permission_resource = "activity_log"
    lookup_field = "activity_id"

    def retrieve(self, request: Request, activity_id: str) -> Response:
        try:
            uuid.UUID(activity_id)
        except ValueError:
            raise NotFound("activity_log") from None
        return self.respond(self.get_object())


class ApiLogViewSet(OrganizationViewSet):
    """Write calls made with the key's organization's API keys, newest first, by
    `request_id`."""

    queryset = ApiRequestLog.objects.filter(method__in=("POST", "PUT", "PATCH", "DELETE")).order_by(
        "-created_at", "-id"
    )
    serializer_class, filterset_class = ApiLogSerializer, ApiLogFilter
    root_key, root_key_plural = "api_log", "api_logs"
    permission_resource = "api_log"
    lookup_field = "request_id"

    def retrieve(self, request: Request, request_id: str) -> Response:
        return self.respond(self.get_object())
