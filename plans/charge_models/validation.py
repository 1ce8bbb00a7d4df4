"""Validation of a charge's model, properties and settings (spec §7.2 compatibility matrix,
§7.3 properties), and Lago's `error_details` of the result."""

from __future__ import annotations

import functools
from collections.abc import Callable
from decimal import Decimal

from billing.money import parse_decimal
from plans.choices import AggregationType, ChargeModel

# spec §7.2: the only aggregations a pay-in-advance charge accepts.
PAY_IN_ADVANCE_AGGREGATIONS = frozenset(
    {AggregationType.COUNT, AggregationType.SUM, AggregationType.UNIQUE_COUNT}
)
# Validation fields that belong to the charge itself; every other field is a property field,
# which Lago reports under `properties` on the wire (see `wire_error_details`).
CHARGE_LEVEL_FIELDS = frozenset(
    {
        "billable_metric",  # spec §7.2: `billable_metric: invalid_value`, not under properties
        "charge_model",
        "pay_in_advance",
        "invoiceable",
        "regroup_paid_fees",
        "min_amount_cents",
        "prorated",
    }
)


def _add(errors: dict[str, list[str]], field_name: str, code: str) -> None:
    codes = errors.setdefault(field_name, [])
    if code not in codes:
        codes.append(code)


def _valid_amount(value: object) -> bool:
    """Lago's decimal amount rule: a string holding a finite, non-negative decimal."""
    if not isinstance(value, str):  # numbers are refused: a JSON float may already be inexact
        return False
    try:
        return parse_decimal(value) >= 0
    except ValueError:
        return False


def _is_integer(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _bound(value: object) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return None
    try:
        return parse_decimal(value)
    except ValueError:
        return None


def _range_bounds_valid(raw_ranges: list, index: int, previous_to: Decimal | None) -> bool:
    tier = raw_ranges[index]
    from_value = _bound(tier.get("from_value"))
    raw_to = tier.get("to_value")
    to_value = None if raw_to is None else _bound(raw_to)
    if from_value is None or (raw_to is not None and to_value is None):
        return False
    if index == 0:
        chained = from_value == 0
    else:
        # adjacent (decimal) style or integer style, spec §7.3; V23 mixes both in one list
        chained = previous_to is not None and from_value in (previous_to, previous_to + 1)
    if index == len(raw_ranges) - 1:
        return chained and raw_to is None
    return chained and to_value is not None and to_value > from_value


def _validate_ranges(
    errors: dict[str, list[str]], properties: dict, key: str, *, percentage: bool
) -> None:
    raw_ranges = properties.get(key)
    if not isinstance(raw_ranges, list) or not raw_ranges:
        _add(errors, key, f"missing_{key}")
        return
    previous_to: Decimal | None = None
    for index, tier in enumerate(raw_ranges):
        if not isinstance(tier, dict):
            _add(errors, key, f"invalid_{key}")
            previous_to = None
            continue
        if percentage:
            if not _valid_amount(tier.get("rate")):
                _add(errors, "rate", "invalid_rate")
        elif not _valid_amount(tier.get("per_unit_amount")):
            _add(errors, "per_unit_amount", "invalid_amount")
        if not _valid_amount(tier.get("flat_amount")):
            _add(errors, "flat_amount", "invalid_amount")
        if not _range_bounds_valid(raw_ranges, index, previous_to):
            _add(errors, key, f"invalid_{key}")
        to_value = tier.get("to_value")
        previous_to = None if to_value is None else _bound(to_value)


def _validate_standard(errors: dict[str, list[str]], properties: dict) -> None:
    if not _valid_amount(properties.get("amount")):
        _add(errors, "amount", "invalid_amount")


def _validate_package(errors: dict[str, list[str]], properties: dict) -> None:
    if not _valid_amount(properties.get("amount")):
        _add(errors, "amount", "invalid_amount")
    free_units = properties.get("free_units")
    if not (_is_integer(free_units) and free_units >= 0):
        _add(errors, "free_units", "invalid_free_units")
    package_size = properties.get("package_size")
    if not (_is_integer(package_size) and package_size > 0):
        _add(errors, "package_size", "invalid_package_size")


def _validate_percentage(errors: dict[str, list[str]], properties: dict) -> None:
    if not _valid_amount(properties.get("rate")):
        _add(errors, "rate", "invalid_rate")
    fixed_amount = properties.get("fixed_amount")
    if fixed_amount is not None and not _valid_amount(fixed_amount):
        _add(errors, "fixed_amount", "invalid_fixed_amount")
    per_events = properties.get("free_units_per_events")
    if per_events is not None and not (_is_integer(per_events) and per_events > 0):
        _add(errors, "free_units_per_events", "invalid_free_units_per_events")
    per_total = properties.get("free_units_per_total_aggregation")
    if per_total is not None and not _valid_amount(per_total):
        _add(
            errors,
            "free_units_per_total_aggregation",
            "invalid_free_units_per_total_aggregation",
        )
    minimum = properties.get("per_transaction_min_amount")
    maximum = properties.get("per_transaction_max_amount")
    min_ok = minimum in (None, "") or _valid_amount(minimum)
    max_ok = maximum in (None, "") or _valid_amount(maximum)
    if not min_ok:
        _add(errors, "per_transaction_min_amount", "invalid_amount")
    if not max_ok:
        _add(errors, "per_transaction_max_amount", "invalid_amount")
    both_set = minimum not in (None, "") and maximum not in (None, "")
    if min_ok and max_ok and both_set and parse_decimal(minimum) > parse_decimal(maximum):
        _add(
            errors,
            "per_transaction_max_amount",
            "per_transaction_max_lower_than_per_transaction_min",
        )


def _validate_group_keys(errors: dict[str, list[str]], properties: dict) -> None:
    key = "pricing_group_keys" if properties.get("pricing_group_keys") is not None else "grouped_by"
    group_keys = properties.get(key)
    if group_keys is not None and group_keys != []:
        valid = isinstance(group_keys, list) and all(isinstance(k, str) and k for k in group_keys)
        if not valid:
            _add(errors, key, "invalid_type")
    presentation = properties.get("presentation_group_keys")
    if presentation:
        # Lago's own (sentence-like) codes for these two rules
        if not (
            isinstance(presentation, list)
            and all(isinstance(k, dict) and "value" in k for k in presentation)
        ):
            _add(
                errors,
                "presentation_group_keys",
                "presentation_group_keys must be an array of hashes with a 'value' key",
            )
        elif len(presentation) > 2:
            _add(
                errors,
                "presentation_group_keys",
                "presentation_group_keys have a maximum of 2 elements",
            )


_PROPERTY_VALIDATORS: dict[str, Callable[[dict[str, list[str]], dict], None]] = {
    ChargeModel.STANDARD: _validate_standard,
    ChargeModel.PACKAGE: _validate_package,
    ChargeModel.PERCENTAGE: _validate_percentage,
    ChargeModel.GRADUATED: functools.partial(
        _validate_ranges, key="graduated_ranges", percentage=False
    ),
    ChargeModel.VOLUME: functools.partial(_validate_ranges, key="volume_ranges", percentage=False),
    ChargeModel.GRADUATED_PERCENTAGE: functools.partial(
        _validate_ranges, key="graduated_percentage_ranges", percentage=True
    ),
    ChargeModel.DYNAMIC: lambda errors, properties: None,  # no price properties (spec §7.3)
}


def validate_properties(
    charge_model: str,
    properties: dict | None,
    *,
    billable_metric_aggregation: str | None = None,
    billable_metric_recurring: bool = False,
    pay_in_advance: bool = False,
    invoiceable: bool = True,
    regroup_paid_fees: str | None = None,
    prorated: bool = False,
    min_amount_cents: int = 0,
) -> dict[str, list[str]]:
    """Lago's validation errors of a charge, `{field: [code, ...]}`; empty when valid.

    Property fields are named as in the properties (`amount`, `graduated_ranges`,
    `per_unit_amount`, `rate`, ...), compatibility rules (spec §7.2) by the charge field they
    refuse. `wire_error_details` turns the result into Lago's `error_details`. Aggregation rules
    are checked only when `billable_metric_aggregation` is given; `prorated` is valid only on a
    recurring metric, so pass `billable_metric_recurring` with it.
    """
    errors: dict[str, list[str]] = {}
    if charge_model not in ChargeModel.values:
        _add(errors, "charge_model", "value_is_invalid")
        return errors
    if properties is None:
        properties = {}
    if not isinstance(properties, dict):
        _add(errors, "properties", "invalid_value")
    else:
        _PROPERTY_VALIDATORS[charge_model](errors, properties)
        _validate_group_keys(errors, properties)

    aggregation = billable_metric_aggregation
    if charge_model == ChargeModel.PERCENTAGE and aggregation == AggregationType.LATEST:
        _add(errors, "billable_metric", "invalid_value")
    if (
        charge_model == ChargeModel.DYNAMIC
        and aggregation is not None
        and aggregation != AggregationType.SUM
    ):
        _add(errors, "charge_model", "invalid_aggregation_type_or_charge_model")
    if pay_in_advance and (
        charge_model == ChargeModel.VOLUME
        or (aggregation is not None and aggregation not in PAY_IN_ADVANCE_AGGREGATIONS)
    ):
        _add(errors, "pay_in_advance", "invalid_aggregation_type_or_charge_model")
    if not pay_in_advance and not invoiceable:
        _add(errors, "invoiceable", "must_be_true_unless_pay_in_advance")
    if regroup_paid_fees is not None:
        if regroup_paid_fees != "invoice":
            _add(errors, "regroup_paid_fees", "value_is_invalid")
        elif not (pay_in_advance and not invoiceable):
            _add(
                errors,
                "regroup_paid_fees",
                "only_compatible_with_pay_in_advance_and_non_invoiceable",
            )
    if min_amount_cents < 0:
        _add(errors, "min_amount_cents", "value_is_out_of_range")
    elif pay_in_advance and min_amount_cents > 0:
        _add(errors, "min_amount_cents", "not_compatible_with_pay_in_advance")
    if prorated:
        allowed_models = (
            (ChargeModel.STANDARD,)
            if pay_in_advance
            else (ChargeModel.STANDARD, ChargeModel.GRADUATED, ChargeModel.VOLUME)
        )
        if not (
            billable_metric_recurring
            and aggregation != AggregationType.WEIGHTED_SUM  # already time-weighted
            and charge_model in allowed_models
        ):
            _add(errors, "prorated", "invalid_billable_metric_or_charge_model")
    return errors


def wire_error_details(errors: dict[str, list[str]]) -> dict[str, list[str]]:
    """Lago's `error_details` for a charge: property-level codes are reported under `properties`."""
    details: dict[str, list[str]] = {}
    for field_name, codes in errors.items():
        target = field_name if field_name in CHARGE_LEVEL_FIELDS else "properties"
        for code in codes:
            _add(details, target, code)
    return details
