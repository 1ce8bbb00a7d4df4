"""The incoming-webhook endpoint payment providers call (outside the API: no API key; each
request is authenticated by its signature)."""

from __future__ import annotations

import logging

from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from integrations.payment_providers.base import GatewayError
from integrations.services.stripe_webhooks import WebhookRejected, stripe_webhook_receive

logger = logging.getLogger(__name__)


@csrf_exempt
@require_POST
def stripe_webhook(request: HttpRequest, organization_id: str) -> HttpResponse:
    """200 once the event is handled (or was already), 400 when it is not a valid event of a
    known connection, 503 when Stripe could not be reached meanwhile (Stripe retries)."""
    try:
        stripe_webhook_receive(
            organization_id=organization_id,
            code=request.GET.get("code") or None,
            payload=request.body,
            signature=request.headers.get("Stripe-Signature", ""),
            now=timezone.now(),
        )
    except WebhookRejected as exc:
        logger.warning("stripe webhook rejected: %s", exc)
        return HttpResponse(status=400)
    except GatewayError as exc:
        logger.warning("stripe webhook not handled, Stripe call failed: %s", exc.code)
        return HttpResponse(status=503)
    return HttpResponse(status=200)
