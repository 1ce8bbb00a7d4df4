"""Charge models (spec §7) as pure functions: properties + aggregated units -> amount.

No ORM here. Properties are Lago's wire dicts (decimal strings such as `{"amount": "0.10"}`);
every number is read with `billing.money.parse_decimal`, so a float never enters a computation.
Amounts are `Decimal` in major units and stay unrounded (precise); the one rounding to minor units
happens in `ChargeResult.amount_cents` through `billing.money` (half away from zero, spec §28).

`amount_details` are JSON-ready like Lago's: decimals as strings ("10.0"), counts as integers, range
bounds as given in the properties.

Modules, each depending only on those above it:

- `common`: `ChargeResult`, the wide decimal context, reading properties, wire formatting;
- `standard`: standard and package;
- `graduated`: graduated and graduated percentage (the tier walk);
- `volume`: volume;
- `percentage`: percentage, with free units and per-transaction min/max;
- `dynamic`: dynamic (prices carried by the events);
- `prorated`: prorated units and the prorated graduated tier walk;
- `dispatch`: `compute`, any model by name, with the projection to the end of the period;
- `in_advance`: the fee of one pay-in-advance event and the units it bills;
- `rounding`: billable metric rounding of aggregated units;
- `validation`: a charge's properties and settings checked, Lago's `error_details`.
"""

from plans.charge_models.common import ChargeResult
from plans.charge_models.dispatch import compute
from plans.charge_models.dynamic import dynamic_amount
from plans.charge_models.graduated import graduated_amount, graduated_percentage_amount
from plans.charge_models.in_advance import InAdvanceUnits, in_advance_amount, in_advance_units
from plans.charge_models.percentage import percentage_amount, percentage_transaction_amounts
from plans.charge_models.prorated import prorated_graduated_amount, prorated_units
from plans.charge_models.rounding import apply_rounding
from plans.charge_models.standard import package_amount, standard_amount
from plans.charge_models.validation import (
    CHARGE_LEVEL_FIELDS,
    validate_properties,
    wire_error_details,
)
from plans.charge_models.volume import volume_amount

__all__ = [
    "CHARGE_LEVEL_FIELDS",
    "ChargeResult",
    "InAdvanceUnits",
    "apply_rounding",
    "compute",
    "dynamic_amount",
    "graduated_amount",
    "graduated_percentage_amount",
    "in_advance_amount",
    "in_advance_units",
    "package_amount",
    "percentage_amount",
    "percentage_transaction_amounts",
    "prorated_graduated_amount",
    "prorated_units",
    "standard_amount",
    "validate_properties",
    "volume_amount",
    "wire_error_details",
]
