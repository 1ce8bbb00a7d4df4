"""Base views every app's API builds on: tenancy scoping, root keys, idempotency, headers."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from functools import cache

from django.db import IntegrityError, transaction
from django.db.models import Model, QuerySet
from django.utils import timezone
from drf_spectacular.utils import inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework.viewsets import GenericViewSet

from billing.actors import Actor
from billing.errors import BadRequest, Invalid, NotFound
from billing.models import IdempotencyRecord, Organization


@cache
def wrapped_schema(
    name: str, serializer_class: type[serializers.Serializer], root: str
) -> serializers.Serializer:
    """OpenAPI shape of a Lago body `{root: {...}}`; built once per name (schema components)."""
    return inline_serializer(name=name, fields={root: serializer_class()})


class _Replay(Exception):
    """Raised in `initial` to answer a stored idempotent response."""

    def __init__(self, record: IdempotencyRecord) -> None:
        self.record = record


class LagoAPIView(APIView):
    """Adds the rate-limit headers, and `Idempotency-Key` replay on POST."""

    root_key: str = ""
    root_key_plural: str = ""
    permission_resource: str | None = None
    rate_limit_bucket = "default"
    # no TRACE: Django would route it to any method named `trace` and list it in `Allow`
    http_method_names = ["get", "post", "put", "patch", "delete", "head", "options"]

    @property
    def organization(self) -> Organization:
        return self.request.auth.organization

    @property
    def actor(self) -> Actor:
        """The API key of the call: who the services it calls record as the author."""
        return Actor.from_request(self.request)

    def initial(self, request: Request, *args: object, **kwargs: object) -> None:
        refuse_nul_in_url(request)
        super().initial(request, *args, **kwargs)
        self._idempotency: tuple[str, str] | None = None
        key = request.headers.get("Idempotency-Key")
        if request.method != "POST" or not key:
            return
        if len(key) > 255:
            raise BadRequest("Idempotency-Key is too long")
        fingerprint = hashlib.sha256(
            b"%s %s\n%s" % (request.method.encode(), request.path.encode(), request._request.body)
        ).hexdigest()
        since = timezone.now() - timedelta(hours=24)
        records = IdempotencyRecord.objects.for_organization(self.organization).filter(key=key)
        records.filter(created_at__lt=since).delete()
        record = records.first()
        if record is not None:
            if record.request_fingerprint != fingerprint:
                raise Invalid({"idempotency_key": ["used_with_another_request"]})
            raise _Replay(record)
        self._idempotency = (key, fingerprint)

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, _Replay):
            return Response(
                exc.record.response_body,
                status=exc.record.response_status,
                headers={"Idempotent-Replayed": "true"},
            )
        return super().handle_exception(exc)

    def finalize_response(
        self, request: Request, response: Response, *args: object, **kwargs: object
    ) -> Response:
        response = super().finalize_response(request, response, *args, **kwargs)
        for name, value in getattr(request._request, "rate_limit_headers", {}).items():
            response[name] = value
        pending = getattr(self, "_idempotency", None)
        if pending and response.status_code < 500 and isinstance(response, Response):
            try:
                with transaction.atomic():
                    IdempotencyRecord.objects.create(
                        organization=self.organization,
                        key=pending[0],
                        request_fingerprint=pending[1],
                        response_status=response.status_code,
                        response_body=response.data,
                    )
            except IntegrityError:
                pass  # a concurrent twin stored it first; its answer is the one replayed
        return response


def refuse_nul_in_url(request: Request) -> None:
    """PostgreSQL refuses NUL in text: a NUL in the path or the query is refused before any
    lookup or filter sends it there (the JSON parser refuses it in bodies)."""
    query = request.query_params
    if "\x00" in request.path or any(
        "\x00" in key or any("\x00" in value for value in query.getlist(key)) for key in query
    ):
        raise BadRequest("a NUL character is not allowed in the URL")


class OrganizationViewSet(LagoAPIView, GenericViewSet):
    """Every queryset scoped to the API key's organization; other tenants' rows are 404."""

    not_found_resource: str = ""

    def get_queryset(self) -> QuerySet:
        return super().get_queryset().for_organization(self.organization)

    def get_object(self) -> Model:
        lookup = self.kwargs[self.lookup_url_kwarg or self.lookup_field]
        obj = self.get_queryset().filter(**{self.lookup_field: lookup}).first()
        if obj is None:
            raise NotFound(self.not_found_resource or self.root_key)
        return obj

    def list(self, request: Request, *args: object, **kwargs: object) -> Response:
        queryset = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(queryset)
        serializer = self.get_serializer(page, many=True)
        return self.get_paginated_response(serializer.data)

    def retrieve(self, request: Request, *args: object, **kwargs: object) -> Response:
        return self.respond(self.get_object())

    def respond(self, obj: Model, status: int = 200) -> Response:
        return Response({self.root_key: self.get_serializer(obj).data}, status=status)


def parse(
    serializer_class: type[serializers.Serializer],
    data: object,
    root: str,
    partial: bool = False,
    context: dict | None = None,
) -> dict:
    """Validates a Lago payload `{root: {...}}` and returns the inner validated data.

    A missing or non-object root is a 400 (Lago: `param is missing or the value is empty`);
    invalid fields are a 422 with Lago's codes.
    """
    if not isinstance(data, dict) or not isinstance(data.get(root), dict):
        raise BadRequest(f"param is missing or the value is empty: {root}")
    serializer = serializer_class(data=data[root], partial=partial, context=context or {})
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data
