"""Catalog factories (deterministic sequences)."""

import factory

from plans.models import (
    AddOn,
    BillableMetric,
    Charge,
    Coupon,
    FixedCharge,
    Plan,
    Tax,
)


class TaxFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tax

    name = factory.Sequence(lambda n: f"VAT {n}")
    code = factory.Sequence(lambda n: f"vat_{n}")
    rate = "20.00"


class BillableMetricFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = BillableMetric

    name = factory.Sequence(lambda n: f"Metric {n}")
    code = factory.Sequence(lambda n: f"metric_{n}")
    aggregation_type = "sum_agg"
    field_name = "value"

    class Params:
        count = factory.Trait(aggregation_type="count_agg", field_name=None)


class AddOnFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AddOn

    name = factory.Sequence(lambda n: f"Add-on {n}")
    code = factory.Sequence(lambda n: f"addon_{n}")
    amount_cents = 1000
    amount_currency = "EUR"


class PlanFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Plan

    name = factory.Sequence(lambda n: f"Plan {n}")
    code = factory.Sequence(lambda n: f"plan_{n}")
    interval = "monthly"
    amount_cents = 10000
    amount_currency = "EUR"


class ChargeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Charge

    plan = factory.SubFactory(PlanFactory, organization=factory.SelfAttribute("..organization"))
    billable_metric = factory.SubFactory(
        BillableMetricFactory, organization=factory.SelfAttribute("..organization")
    )
    code = factory.Sequence(lambda n: f"charge_{n}")
    charge_model = "standard"
    properties = factory.LazyFunction(lambda: {"amount": "1"})


class FixedChargeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = FixedCharge

    plan = factory.SubFactory(PlanFactory, organization=factory.SelfAttribute("..organization"))
    add_on = factory.SubFactory(AddOnFactory, organization=factory.SelfAttribute("..organization"))
    code = factory.Sequence(lambda n: f"fixed_{n}")
    charge_model = "standard"
    properties = factory.LazyFunction(lambda: {"amount": "10"})
    units = 1


class CouponFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Coupon

    name = factory.Sequence(lambda n: f"Coupon {n}")
    code = factory.Sequence(lambda n: f"coupon_{n}")
    coupon_type = "fixed_amount"
    amount_cents = 1000
    amount_currency = "EUR"
    frequency = "once"
