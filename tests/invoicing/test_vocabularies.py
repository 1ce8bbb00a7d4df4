"""Each vocabulary is defined once: the pure layers and the models share the same enum."""

from __future__ import annotations

import pytest

from billing import periods
from billing.models import BillingEntity
from customers import choices as customer_choices
from customers.models import Customer, Subscription
from invoicing import calculation
from invoicing.models import Fee, Invoice
from metering import store
from plans import choices as plan_choices
from plans.models import BillableMetric, Charge, Coupon, FixedCharge, Plan


@pytest.mark.parametrize(
    ("model", "field", "vocabulary"),
    [
        pytest.param(BillableMetric, "aggregation_type", plan_choices.AggregationType, id="agg"),
        pytest.param(
            BillableMetric, "rounding_function", plan_choices.RoundingFunction, id="round"
        ),
        pytest.param(Charge, "charge_model", plan_choices.ChargeModel, id="charge-model"),
        pytest.param(FixedCharge, "charge_model", plan_choices.FixedChargeModel, id="fixed-model"),
        pytest.param(Coupon, "coupon_type", plan_choices.CouponType, id="coupon-type"),
        pytest.param(Coupon, "frequency", plan_choices.CouponFrequency, id="coupon-frequency"),
        pytest.param(Plan, "interval", periods.Interval, id="interval"),
        pytest.param(Subscription, "billing_time", periods.BillingTime, id="billing-time"),
        pytest.param(
            BillingEntity,
            "subscription_invoice_issuing_date_anchor",
            periods.IssuingDateAnchor,
            id="issuing-anchor",
        ),
        pytest.param(
            BillingEntity,
            "subscription_invoice_issuing_date_adjustment",
            periods.IssuingDateAdjustment,
            id="issuing-adjustment",
        ),
        pytest.param(
            Customer,
            "finalize_zero_amount_invoice",
            customer_choices.ZeroAmountInvoice,
            id="zero-amount",
        ),
        pytest.param(Fee, "fee_type", calculation.FeeType, id="fee-type"),
        pytest.param(Invoice, "payment_status", calculation.PaymentStatus, id="payment-status"),
    ],
)
def test_model_field_takes_its_choices_from_the_pure_vocabulary(model, field, vocabulary):
    assert model._meta.get_field(field).choices == vocabulary.choices


def test_the_event_store_aggregates_with_the_catalog_vocabulary():
    assert store.AggregationType is plan_choices.AggregationType


def test_invoice_math_applies_coupons_with_the_catalog_vocabulary():
    assert calculation.CouponType is plan_choices.CouponType
    assert calculation.CouponFrequency is plan_choices.CouponFrequency


def test_a_member_equals_its_stored_value():
    assert plan_choices.AggregationType.SUM == "sum_agg"
    assert f"{plan_choices.ChargeModel.GRADUATED}" == "graduated"
