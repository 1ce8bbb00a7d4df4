"""Metering: usage events and their aggregation (spec §4, §5).

Everything outside this package reads and writes events through `billing.metering.store`
(`get_event_store()`), so that the PostgreSQL store can be swapped for a ClickHouse one
(DESIGN "Scale path", docs/event-store.md). The `Event` model lives in `models.py` and is
registered under the `billing` app.
"""
