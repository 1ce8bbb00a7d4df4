"""Subscription invoices: what a customer owes for its subscriptions at one billing instant.

Spec §9.3-§9.6 (which transition bills what), §10.3 (boundaries), §11 (subscription fee), §7.16
(spending minimum), §8 (fixed charges), §22 (minimum commitment), §12.2-§12.5 (invoice types,
computation order, drafts), §12.11 (preview).

An invoice is built from *billing items*: one subscription, one reason (`subscription_periodic`,
`_starting`, `_terminating`, `_trial_ended`) and the `billing.periods.Period` it is billed for.
The item becomes the `InvoiceSubscription` row (the double-billing guard: its unique
constraints stop a second run), then fees, in Lago's order (§12.3): subscription fee, charge
fees per filter and group (via the usage engine `metering.usage`) with their spending-minimum
true-ups, fixed charges (monthly windows with `bill_fixed_charges_monthly`), the minimum commitment
true-up. Coupons, taxes and totals are the pure `invoicing.calculation.compute_invoice`. Dates
come from `billing.periods`, never from here. Recurring pay-in-advance charges that are not
invoiceable are renewed at period start as fees without invoice, next to the periodic invoice
(`non_invoiceable_renewals_create`, §7.14).

    item = periodic_item(subscription, billing_date, context)
    invoice = invoice_create_for_items(context=context, items=[item], billing_date=..., now=...)

Coupons are only consumed when an invoice is finalized: a draft (grace period, §12.5) carries its
fees and taxes on the gross amounts, and `lifecycle.invoice_finalize` recomputes everything with
the coupons (`invoice_recompute(..., finalizing=True)`).

Every fee keeps the boundaries it was computed for in `properties` (`from_datetime`,
`to_datetime`, `charges_from_datetime`, `charges_to_datetime`, `timestamp`, ISO UTC), as Lago
does: the commitment true-up attributes fees to a plan period with them, and the in-advance
guard (a period's subscription fee is billed once) reads them.

The package, by sub-domain:
- `context`: `BillingContext` (the history and catalog one computation reads once), billing keys;
- `items`: `BillingItem` and the items of each transition (periodic, starting, termination,
  trial end, an existing row), consolidation;
- `fees`: `FeeDraft` and the fee builder (spec §12.3 steps 1-4), non-invoiceable renewals;
- `coupons`: coupon selection and consumption (spec §15.3);
- `persist`: `compute_fees` / `compute_drafts` (coupons, prepaid credits, taxes, totals), the
  invoice header, persisting the result;
- `create`: invoice creation for items and transitions, in-advance fee invoices, recomputation;
- `preview`: `invoice_preview` (spec §12.11).
Applied-tax rows are built by `invoicing.services.applied_taxes` (shared with one-off invoices).
"""

from invoicing.services.generation.context import (
    ONCE_REASONS,
    SUBSCRIPTION_REASONS,
    BillingContext,
    Key,
    Reason,
    billed_keys,
    has_advance_fixed_charges,
    subscriptions_for_billing,
)
from invoicing.services.generation.coupons import coupon_to_apply
from invoicing.services.generation.create import (
    grace_period_days,
    invoice_create_for_in_advance_fee,
    invoice_create_for_items,
    invoice_create_for_plan_change,
    invoice_create_for_start,
    invoice_create_for_termination,
    invoice_create_for_trial_end,
    invoice_recompute,
)
from invoicing.services.generation.fees import (
    FeeDraft,
    non_invoiceable_renewals_create,
)
from invoicing.services.generation.items import (
    BillingItem,
    fixed_charges_cycle,
    group_for_invoices,
    is_periodic_billing_day,
    item_for_row,
    item_key,
    next_periodic_billing_day,
    periodic_item,
    starting_item,
    termination_item,
    trial_end_item,
)
from invoicing.services.generation.persist import (
    AMOUNT_FIELDS,
    ComputedFees,
    compute_drafts,
    compute_fees,
)
from invoicing.services.generation.preview import (
    InvoicePreview,
    invoice_preview,
)

__all__ = [
    "AMOUNT_FIELDS",
    "ONCE_REASONS",
    "SUBSCRIPTION_REASONS",
    "BillingContext",
    "BillingItem",
    "ComputedFees",
    "FeeDraft",
    "InvoicePreview",
    "Key",
    "Reason",
    "billed_keys",
    "compute_drafts",
    "compute_fees",
    "coupon_to_apply",
    "fixed_charges_cycle",
    "grace_period_days",
    "group_for_invoices",
    "has_advance_fixed_charges",
    "invoice_create_for_in_advance_fee",
    "invoice_create_for_items",
    "invoice_create_for_plan_change",
    "invoice_create_for_start",
    "invoice_create_for_termination",
    "invoice_create_for_trial_end",
    "invoice_preview",
    "invoice_recompute",
    "is_periodic_billing_day",
    "item_for_row",
    "item_key",
    "next_periodic_billing_day",
    "non_invoiceable_renewals_create",
    "periodic_item",
    "starting_item",
    "subscriptions_for_billing",
    "termination_item",
    "trial_end_item",
]
