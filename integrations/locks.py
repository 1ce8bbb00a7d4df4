"""Row locks of the integrations app (STYLE §7): own table only."""

from __future__ import annotations

import uuid

from integrations.models import PaymentProvider


def lock_payment_provider(pk: uuid.UUID) -> PaymentProvider:
    """The connection row: its removal and its secrets change under it."""
    return PaymentProvider.objects.select_for_update(of=("self",)).get(pk=pk)
