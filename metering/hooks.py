"""Ingestion's hook for the apps to the right of `metering` (wallets, invoicing).

`on_events_ingested(organization_id, events, pay_in_advance_events)`: usage events were stored
(spec §5.2 post-processing). `events` lists every stored event and `pay_in_advance_events` those
whose subscription's plan has a pay-in-advance charge on their metric, each as an
`[external_subscription_id, transaction_id]` pair (how the event store finds an event). Wallets
flag their ongoing balance for a refresh (§17.4); invoicing bills the pay-in-advance fees
(§7.14). Hooks run after commit, as `customers.hooks` describes.
"""

from __future__ import annotations

from customers.hooks import Hook, fire, register

on_events_ingested: list[Hook] = []

__all__ = ["fire", "on_events_ingested", "register"]
