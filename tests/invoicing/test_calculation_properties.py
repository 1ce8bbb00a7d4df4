"""Properties the invoice math keeps whatever the fees, coupons, taxes and credits (hypothesis)."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from invoicing.calculation import (
    CouponToApply,
    FeeLine,
    TaxRate,
    apply_coupons,
    apply_progressive_billing_credit,
    balances_allocator,
    compute_invoice,
)

D = Decimal
T0 = datetime(2024, 1, 1, tzinfo=UTC)
# each coupon moves each fee's share by at most half a unit of the 5th decimal
SHARE_QUANTUM = D("0.00001")

TAXES = [
    TaxRate("vat20", "VAT", D(20)),
    TaxRate("vat5_5", "reduced VAT", D("5.5")),
    TaxRate("zero", "exempt", D(0)),
    TaxRate("ny", "NY sales tax", D("8.875")),
]
FEE_TYPES = ["subscription", "charge", "fixed_charge", "commitment", "add_on"]


@st.composite
def fee_lines(draw: st.DrawFn) -> list[FeeLine]:
    count = draw(st.integers(min_value=1, max_value=8))
    fees = []
    for index in range(count):
        fee_type = draw(st.sampled_from(FEE_TYPES))
        fees.append(
            FeeLine(
                key=f"fee{index}",
                fee_type=fee_type,
                amount_cents=draw(st.integers(min_value=0, max_value=10_000_000)),
                taxes=tuple(draw(st.lists(st.sampled_from(TAXES), unique=True, max_size=3))),
                charge_metric_code=draw(st.sampled_from(["api", "storage"]))
                if fee_type == "charge"
                else None,
                plan_code=None
                if fee_type == "add_on"
                else draw(st.sampled_from(["gold", "silver"])),
            )
        )
    return fees


@st.composite
def coupons(draw: st.DrawFn) -> list[CouponToApply]:
    result = []
    for index in range(draw(st.integers(min_value=0, max_value=4))):
        coupon_type = draw(st.sampled_from(["fixed_amount", "percentage"]))
        frequency = draw(st.sampled_from(["once", "recurring", "forever"]))
        limitation = draw(st.sampled_from(["none", "plan", "metric"]))
        amount = draw(st.integers(min_value=0, max_value=20_000_000))
        result.append(
            CouponToApply(
                key=f"coupon{index}",
                coupon_type=coupon_type,
                frequency=frequency,
                applied_at=T0 + timedelta(days=draw(st.integers(min_value=0, max_value=30))),
                amount_cents=amount if coupon_type == "fixed_amount" else None,
                currency=draw(st.sampled_from(["EUR", "EUR", "USD"]))
                if coupon_type == "fixed_amount"
                else None,
                percentage_rate=draw(st.decimals(min_value=0, max_value=120, places=3))
                if coupon_type == "percentage"
                else None,
                remaining_cents=draw(st.integers(min_value=0, max_value=amount))
                if frequency == "once"
                else None,
                frequency_duration_remaining=draw(st.integers(min_value=1, max_value=12))
                if frequency == "recurring"
                else None,
                limited_plan_codes={draw(st.sampled_from(["gold", "silver"]))}
                if limitation == "plan"
                else frozenset(),
                limited_metric_codes={draw(st.sampled_from(["api", "storage"]))}
                if limitation == "metric"
                else frozenset(),
            )
        )
    return result


@st.composite
def progressive_credits(draw: st.DrawFn, fees: list[FeeLine]) -> dict[str, int]:
    """What progressive invoices already billed, per charge fee (never above the fee)."""
    return {
        fee.key: draw(st.integers(min_value=0, max_value=fee.amount_cents))
        for fee in fees
        if fee.fee_type == "charge" and draw(st.booleans())
    }


balances = st.lists(st.integers(min_value=0, max_value=30_000_000), max_size=3)


@st.composite
def invoices(draw: st.DrawFn):
    fees = draw(fee_lines())
    progressive = draw(progressive_credits(fees))
    apply_progressive_billing_credit(fees, progressive)
    progressive_total = sum(progressive.values())
    credit_notes = [(f"cn{i}", b) for i, b in enumerate(draw(balances))]
    wallets = [(f"wallet{i}", b) for i, b in enumerate(draw(balances))]
    result = compute_invoice(
        fees,
        draw(coupons()),
        currency="EUR",
        progressive_billing_credit_cents=progressive_total,
        credit_note_allocator=balances_allocator(credit_notes),
        prepaid_credit_allocator=balances_allocator(wallets),
    )
    return fees, progressive_total, result


@given(fee_lines(), coupons())
def test_coupon_shares_stay_within_each_fee(fees, applied_coupons):
    apply_coupons(fees, applied_coupons, currency="EUR")

    for fee in fees:
        assert 0 <= fee.precise_coupons_amount_cents <= fee.amount_cents


@given(invoices())
def test_coupon_shares_add_up_to_the_credits(invoice):
    fees, progressive_total, result = invoice
    credited = progressive_total + sum(c.amount_cents for c in result.coupon_credits)
    tolerance = SHARE_QUANTUM * len(fees) * (len(result.coupon_credits) + 1)

    assert abs(sum(fee.precise_coupons_amount_cents for fee in fees) - credited) <= tolerance
    for credit in result.coupon_credits:
        assert abs(sum(credit.fee_shares.values()) - credit.amount_cents) <= tolerance


@given(invoices())
def test_coupons_never_take_more_than_the_fees(invoice):
    _, progressive_total, result = invoice
    totals = result.totals

    assert 0 <= totals.coupons_amount_cents <= totals.fees_amount_cents - progressive_total
    assert totals.sub_total_excluding_taxes_amount_cents == (
        totals.fees_amount_cents - progressive_total - totals.coupons_amount_cents
    )
    for credit in result.coupon_credits:
        assert credit.amount_cents >= 0
        if credit.remaining_cents is not None:
            assert credit.remaining_cents >= 0


@given(invoices())
def test_total_is_never_negative_and_a_zero_total_is_paid(invoice):
    _, _, result = invoice
    totals = result.totals

    assert totals.total_amount_cents >= 0
    assert totals.total_amount_cents == (
        totals.sub_total_including_taxes_amount_cents
        - totals.credit_notes_amount_cents
        - totals.prepaid_credit_amount_cents
    )
    assert (totals.payment_status == "succeeded") is (totals.total_amount_cents == 0)


@given(invoices())
def test_invoice_tax_is_within_a_cent_per_tax_of_its_applied_taxes(invoice):
    _, _, result = invoice
    taxes = result.taxes
    applied_sum = sum(t.amount_cents for t in taxes.applied_taxes)

    assert abs(taxes.taxes_amount_cents - applied_sum) <= len(taxes.applied_taxes)


@given(invoices())
def test_invoice_tax_is_within_half_a_cent_per_fee_of_the_fee_taxes(invoice):
    # spec §12.4: the invoice rounds once, each fee rounds on its own
    fees, _, result = invoice
    fee_sum = sum(fee.taxes_amount_cents for fee in fees)

    assert 2 * abs(result.taxes.taxes_amount_cents - fee_sum) <= len(fees) + 1
    assert result.taxes.taxes_amount_cents >= 0
