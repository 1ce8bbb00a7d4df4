"""Ingestion's hook for the apps to the right of `metering` (wallets, invoicing).

A `billing.signals.Hook`: fired after commit by `metering.services.ingestion`, connected by
`wallets/apps.py` and `invoicing/apps.py`.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from billing.signals import hook


@hook
def on_events_ingested(
    *, organization_id: UUID, events: list[list[str]], pay_in_advance_events: list[list[str]]
) -> None:
    """Usage events were stored (spec §5.2 post-processing). `events` lists every stored event
    and `pay_in_advance_events` those whose subscription's plan has a pay-in-advance charge on
    their metric, each as an `[external_subscription_id, transaction_id]` pair (how the event
    store finds an event). Wallets flag their ongoing balance for a refresh (§17.4); invoicing
    bills the pay-in-advance fees (§7.14)."""


@hook
def on_usage_refreshed(
    *,
    organization_ids: list[UUID],
    subscription_ids: list[UUID],
    customer_ids: list[UUID],
    now: datetime,
) -> None:
    """A refresh pass (`metering.services.refresh.refresh_usage`) recomputed the lifetime usage
    and evaluated the usage alerts of these subscriptions (of these customers). Wallets refresh
    the ongoing balance of those customers' flagged wallets as of the pass's `now` (§17.4);
    invoicing checks the subscriptions' progressive billing thresholds (§21.2)."""
