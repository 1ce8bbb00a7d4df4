"""The usage engine: what a subscription's charges amount to over a usage window (spec §4, §7,
§25), and what one event bills on a pay-in-advance charge (spec §7.14).

Aggregation happens in the database through the event store (`metering.store`): one
statement per charge filter (and the default bucket), grouped by pricing group keys; the units
then go through the metric's rounding (§4.4) and the pure charge models
(`plans.charge_models.compute`). Nothing here writes fees: invoicing turns `ChargeUsage` into
fees (spec §13), the current-usage endpoint renders them (§25).

    window = usage_window(subscription=subscription, at=now)      # period containing `at`
    usages = subscription_usage(subscription=subscription, window=window)
    body = customer_current_usage(customer=c, subscription=s, now=now)   # §25 `customer_usage`

Modules, each depending only on those above it:

- `windows`: the billing period containing an instant and the part of it usage reads;
- `buckets`: a charge's filters and default bucket, and the properties pricing each;
- `replay`: a bucket's events read back in (timestamp, id) order into a running total;
- `engine`: charge usage in arrears (`charge_usage`, `subscription_usage`, and
  `subscriptions_usage` for many subscriptions at once);
- `cached`: the state after each pay-in-advance event, resumed instead of replaying the period;
- `in_advance`: what one event bills on a pay-in-advance charge (`in_advance_fees`);
- `estimates`: fee estimates of events that are never stored;
- `taxes`: the tax figures of a usage;
- `current`: the `customer_usage` body of current and projected usage.
"""

from metering.usage.current import UsageSelection, charges_usage_payload, customer_current_usage
from metering.usage.engine import (
    ChargeUsage,
    UsageAnswers,
    charge_usage,
    plan_charges,
    read_usage_ahead,
    subscription_usage,
    subscriptions_usage,
)
from metering.usage.estimates import (
    InstantFee,
    event_estimate_fees,
    event_estimate_instant_fees,
    events_estimate_instant_fees,
)
from metering.usage.in_advance import CacheMode, InAdvanceFee, in_advance_fees
from metering.usage.replay import EventLike
from metering.usage.taxes import FeeTaxes, FeeTaxFigures, fee_tax_figures, taxes_amount_cents
from metering.usage.windows import UsageWindow, usage_period, usage_window, window_of

__all__ = [
    "CacheMode",
    "ChargeUsage",
    "EventLike",
    "FeeTaxFigures",
    "FeeTaxes",
    "InAdvanceFee",
    "InstantFee",
    "UsageAnswers",
    "UsageSelection",
    "UsageWindow",
    "charge_usage",
    "charges_usage_payload",
    "customer_current_usage",
    "event_estimate_fees",
    "event_estimate_instant_fees",
    "events_estimate_instant_fees",
    "fee_tax_figures",
    "in_advance_fees",
    "plan_charges",
    "read_usage_ahead",
    "subscription_usage",
    "subscriptions_usage",
    "taxes_amount_cents",
    "usage_period",
    "usage_window",
    "window_of",
]
