"""Wallet expiration (spec §17.7): the hourly :45 job terminates wallets whose `expiration_at`
passed, through the same service as `DELETE /wallets/{id}` (remaining credits voided, active
rule terminated, `wallet.terminated`)."""

from __future__ import annotations

import logging
from datetime import datetime

from billing.actors import Actor
from wallets.models import Wallet
from wallets.services.wallets import wallet_terminate

logger = logging.getLogger(__name__)


def terminate_expired_wallets(*, actor: Actor, now: datetime) -> int:
    """Terminates every active wallet expired at `now`; returns how many. A wallet that fails
    is logged and retried by the next run; the others go on."""
    expired = Wallet.objects.filter(
        status=Wallet.Status.ACTIVE, expiration_at__isnull=False, expiration_at__lte=now
    ).order_by("expiration_at", "pk")
    terminated = 0
    for wallet in expired:
        try:
            wallet_terminate(wallet=wallet, actor=actor, now=now)
        except Exception:
            logger.exception("expiring wallet %s failed", wallet.pk)
            continue
        terminated += 1
    return terminated
