"""Webhook endpoints: create, update, delete (Lago's WebhookEndpoints services)."""

from __future__ import annotations

from django.db import IntegrityError, transaction

from billing.activity import record_activity
from billing.actors import Actor
from billing.errors import Invalid
from billing.locks import lock_organization
from billing.models import Organization
from integrations.models import MAX_ENDPOINTS_PER_ORGANIZATION, SignatureAlgo, WebhookEndpoint
from integrations.services.webhook_payloads import WEBHOOK_TYPES
from integrations.services.webhook_targets import target_errors, url_errors

NAME_MAX_LENGTH = 255
_UNSET = object()


def _event_types(value: object, errors: dict[str, list[str]]) -> list[str] | None:
    """Lago's normalization: trimmed, lower-cased, deduplicated; `["*"]` (or null) is every
    type; an unknown type is `invalid_types`."""
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) or v is None for v in value):
        errors["event_types"] = ["must_be_array"]
        return None
    normalized = list(dict.fromkeys(v.strip().lower() for v in value if v and v.strip()))
    if normalized == ["*"]:
        return None
    if any(v not in WEBHOOK_TYPES for v in normalized):
        errors["event_types"] = ["invalid_types"]
    return normalized


def _apply(endpoint: WebhookEndpoint, values: dict, *, creating: bool) -> None:
    errors: dict[str, list[str]] = {}
    if creating or "webhook_url" in values:
        url = values.get("webhook_url")
        url_problems = url_errors(url) or target_errors(url)
        if url_problems:
            errors["webhook_url"] = url_problems
        else:
            endpoint.webhook_url = url.strip()
    if "signature_algo" in values:
        algo = values["signature_algo"]
        if algo is None and creating:
            algo = SignatureAlgo.JWT
        if algo not in SignatureAlgo.values:
            errors["signature_algo"] = ["value_is_invalid"]
        else:
            endpoint.signature_algo = algo
    if "name" in values:
        name = values["name"]
        if name is not None and (not isinstance(name, str) or len(name) > NAME_MAX_LENGTH):
            errors["name"] = ["value_is_invalid"]
        else:
            endpoint.name = name or None
    if "event_types" in values:
        endpoint.event_types = _event_types(values["event_types"], errors)
    if not errors and endpoint.webhook_url:
        taken = (
            WebhookEndpoint.objects.for_organization(endpoint.organization)
            .filter(webhook_url=endpoint.webhook_url)
            .exclude(pk=endpoint.pk)
            .exists()
        )
        if taken:
            errors["webhook_url"] = ["value_already_exist"]
    if errors:
        raise Invalid(errors)


def _save(endpoint: WebhookEndpoint) -> None:
    try:
        with transaction.atomic():
            endpoint.save()
    except IntegrityError as exc:  # a concurrent twin registered the same URL
        raise Invalid({"webhook_url": ["value_already_exist"]}) from exc


@transaction.atomic
def webhook_endpoint_create(
    *, organization: Organization, values: dict, actor: Actor
) -> WebhookEndpoint:
    """A new endpoint; at most 10 per organization (`base: exceeded_limit`)."""
    lock_organization(organization.pk, no_key=True)  # two creations cannot both be the 10th
    if (
        WebhookEndpoint.objects.for_organization(organization).count()
        >= MAX_ENDPOINTS_PER_ORGANIZATION
    ):
        raise Invalid({"base": ["exceeded_limit"]})
    endpoint = WebhookEndpoint(organization=organization, signature_algo=SignatureAlgo.JWT)
    _apply(endpoint, values, creating=True)
    _save(endpoint)
    record_activity(activity_type="webhook_endpoint.created", actor=actor, obj=endpoint)
    return endpoint


@transaction.atomic
def webhook_endpoint_update(
    *, endpoint: WebhookEndpoint, values: dict, actor: Actor
) -> WebhookEndpoint:
    """Changes the given fields only; pending deliveries go to the new URL."""
    _apply(endpoint, values, creating=False)
    _save(endpoint)
    record_activity(activity_type="webhook_endpoint.updated", actor=actor, obj=endpoint)
    return endpoint


@transaction.atomic
def webhook_endpoint_delete(*, endpoint: WebhookEndpoint, actor: Actor) -> WebhookEndpoint:
    """Deletes the endpoint and its delivery log (as Lago); returns it as it was."""
    WebhookEndpoint.objects.filter(pk=endpoint.pk).delete()
    record_activity(activity_type="webhook_endpoint.deleted", actor=actor, obj=endpoint)
    return endpoint
