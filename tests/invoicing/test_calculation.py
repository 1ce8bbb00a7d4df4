"""Invoice math of spec §7.16, §12, §14.2, §15.3, §22 and §2.3, checked against spec/vectors.md
(vector ids in the test ids)."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from invoicing.calculation import (
    Allocation,
    CouponToApply,
    FeeLine,
    TaxRate,
    apply_coupons,
    apply_progressive_billing_credit,
    apply_taxes,
    balances_allocator,
    cap_progressive_billing_credit,
    commitment_true_up_cents,
    compute_invoice,
    coupon_amount_cents,
    coupon_application_order,
    credit_note_number,
    customer_slug,
    draft_number,
    effective_net_payment_term,
    expected_finalization_date,
    invoice_totals,
    is_empty_invoice,
    is_payment_overdue_by_date,
    issuing_date,
    payment_due_date,
    per_customer_number,
    per_entity_number,
    spending_minimum_true_up_cents,
    zero_amount_decision,
)

D = Decimal
T0 = datetime(2023, 1, 1, tzinfo=UTC)


def at(day: int) -> datetime:
    return datetime(2023, 1, day, tzinfo=UTC)


def tax(code: str, rate: str) -> TaxRate:
    return TaxRate(code=code, name=code, rate=D(rate))


def fixed_once(key: str, amount: int, *, day: int = 1, remaining: int | None = None, **kw):
    return CouponToApply(
        key=key,
        coupon_type="fixed_amount",
        frequency="once",
        applied_at=at(day),
        amount_cents=amount,
        currency=kw.pop("currency", "EUR"),
        remaining_cents=remaining,
        **kw,
    )


def percentage(key: str, rate: str, *, frequency: str = "once", day: int = 1, **kw):
    return CouponToApply(
        key=key,
        coupon_type="percentage",
        frequency=frequency,
        applied_at=at(day),
        percentage_rate=D(rate),
        **kw,
    )


def shares(fees: list[FeeLine]) -> dict[str, Decimal]:
    return {fee.key: fee.precise_coupons_amount_cents for fee in fees}


# --------------------------------------------------------------------------------------------
# V79: tax hierarchy + coupon before tax + true-up (whole invoice)

BANKING, SALES_FR, SALES = (
    tax("banking_rates", "10"),
    tax("sales_tax_fr", "0"),
    tax("sales_tax", "20"),
)


def v79_fees() -> list[FeeLine]:
    return [
        FeeLine("subscription", "subscription", 10_000, taxes=(BANKING,), plan_code="plan"),
        FeeLine(
            "fx", "charge", 5_000, taxes=(SALES_FR,), charge_metric_code="fx", plan_code="plan"
        ),
        FeeLine(
            "cards", "charge", 3_000, taxes=(SALES,), charge_metric_code="cards", plan_code="plan"
        ),
        FeeLine(
            "cards_true_up",
            "charge",
            spending_minimum_true_up_cents(5_000, 3_000, 31, 31),
            taxes=(SALES,),
            charge_metric_code="cards",
            plan_code="plan",
        ),
    ]


@pytest.fixture
def v79():
    fees = v79_fees()
    result = compute_invoice(fees, [fixed_once("coupon", 1_000)], currency="EUR")
    return fees, result


def test_v79_cards_true_up_tops_the_spending_minimum_up(v79):
    fees, _ = v79
    assert fees[3].amount_cents == 2_000


def test_v79_coupon_is_shared_pro_rata_of_the_fees(v79):
    fees, result = v79
    assert shares(fees) == {"subscription": 500, "fx": 250, "cards": 150, "cards_true_up": 100}
    (credit,) = result.coupon_credits
    assert credit.amount_cents == 1_000
    assert credit.terminated is True
    assert credit.remaining_cents == 0


def test_v79_each_fee_is_taxed_on_its_amount_after_coupon(v79):
    fees, _ = v79
    assert [fee.taxes_amount_cents for fee in fees] == [950, 0, 570, 380]
    assert [fee.taxes_rate for fee in fees] == [10, 0, 20, 20]
    assert [[t.amount_cents for t in fee.applied_taxes] for fee in fees] == [
        [950],
        [0],
        [570],
        [380],
    ]
    assert [fee.total_amount_cents for fee in fees] == [10_950, 5_000, 3_570, 2_380]


def test_v79_invoice_applied_taxes_sum_the_taxed_fees(v79):
    _, result = v79
    assert [
        (t.tax.code, t.amount_cents, t.fees_amount_cents) for t in result.taxes.applied_taxes
    ] == [("banking_rates", 950, 9_500), ("sales_tax_fr", 0, 4_750), ("sales_tax", 950, 4_750)]
    assert result.taxes.taxes_rate == D("10.00000")


def test_v79_invoice_totals(v79):
    _, result = v79
    totals = result.totals
    assert (
        totals.fees_amount_cents,
        totals.coupons_amount_cents,
        totals.sub_total_excluding_taxes_amount_cents,
        totals.taxes_amount_cents,
        totals.sub_total_including_taxes_amount_cents,
        totals.total_amount_cents,
        totals.payment_status,
    ) == (20_000, 1_000, 19_000, 1_900, 20_900, 20_900, "pending")


# --------------------------------------------------------------------------------------------
# V80: coupons larger than the invoice


def test_v80_second_once_coupon_takes_what_is_left_and_carries_the_rest_over():
    fees = [FeeLine("subscription", "subscription", 10_000, taxes=(tax("vat", "10"),))]
    coupons = [fixed_once("first", 1_000, day=1), fixed_once("second", 11_000, day=2)]

    result = compute_invoice(fees, coupons, currency="EUR")

    first, second = result.coupon_credits
    assert (first.amount_cents, first.terminated) == (1_000, True)
    assert (second.amount_cents, second.remaining_cents, second.terminated) == (9_000, 2_000, False)
    assert fees[0].precise_coupons_amount_cents == 10_000
    assert fees[0].taxes_amount_cents == 0
    assert result.totals.taxes_amount_cents == 0
    assert result.totals.total_amount_cents == 0
    assert result.totals.payment_status == "succeeded"


def test_v80_two_coupons_cover_two_subscriptions_exactly():
    vat = tax("vat", "10")
    fees = [
        FeeLine("sub1", "subscription", 10_000, taxes=(vat,)),
        FeeLine("sub2", "subscription", 5_000, taxes=(vat,)),
    ]
    coupons = [fixed_once("first", 10_000, day=1), fixed_once("second", 10_000, day=2)]

    result = compute_invoice(fees, coupons, currency="EUR")

    assert shares(fees) == {"sub1": 10_000, "sub2": 5_000}
    assert [c.amount_cents for c in result.coupon_credits] == [10_000, 5_000]
    assert result.coupon_credits[1].remaining_cents == 5_000
    assert [fee.taxes_amount_cents for fee in fees] == [0, 0]
    assert result.totals.total_amount_cents == 0


# --------------------------------------------------------------------------------------------
# V82: percentage and recurring coupon amounts


@pytest.mark.parametrize(
    ("coupon", "base", "expected_cents"),
    [
        pytest.param(percentage("c", "15"), 12_345, 1_852, id="V82-percentage-rounds-half-up"),
        pytest.param(percentage("c", "100"), 12_345, 12_345, id="V82-percentage-100-is-base"),
        pytest.param(percentage("c", "150"), 12_345, 12_345, id="V82-percentage-over-100-is-base"),
        pytest.param(
            CouponToApply(
                "c", "fixed_amount", "recurring", T0, 5_000, "EUR", frequency_duration_remaining=3
            ),
            3_000,
            3_000,
            id="V82-recurring-fixed-capped-at-base",
        ),
        pytest.param(
            CouponToApply("c", "fixed_amount", "forever", T0, 5_000, "EUR"),
            3_000,
            3_000,
            id="V82-forever-fixed-capped-at-base",
        ),
        pytest.param(fixed_once("c", 5_000), 3_000, 3_000, id="V82-once-first-invoice"),
        pytest.param(
            fixed_once("c", 5_000, remaining=2_000), 4_000, 2_000, id="V82-once-second-invoice"
        ),
        pytest.param(
            fixed_once("c", 5_000), D("2999.5"), 2_999, id="cap-at-a-fractional-base-stays-within"
        ),
    ],
)
def test_coupon_amount(coupon, base, expected_cents):
    assert coupon_amount_cents(coupon, base) == expected_cents


def test_v82_recurring_coupon_loses_the_unused_part_and_counts_one_period_down():
    coupon = CouponToApply(
        "c", "fixed_amount", "recurring", T0, 5_000, "EUR", frequency_duration_remaining=3
    )

    (credit,) = apply_coupons([FeeLine("f", "subscription", 3_000)], [coupon], currency="EUR")

    assert credit.amount_cents == 3_000
    assert credit.frequency_duration_remaining == 2
    assert credit.terminated is False
    assert credit.remaining_cents is None


def test_v82_recurring_coupon_terminates_after_its_last_period():
    coupon = CouponToApply(
        "c", "fixed_amount", "recurring", T0, 5_000, "EUR", frequency_duration_remaining=1
    )

    (credit,) = apply_coupons([FeeLine("f", "subscription", 3_000)], [coupon], currency="EUR")

    assert (credit.frequency_duration_remaining, credit.terminated) == (0, True)


def test_v82_forever_coupon_never_terminates():
    coupon = CouponToApply("c", "fixed_amount", "forever", T0, 5_000, "EUR")

    (credit,) = apply_coupons([FeeLine("f", "subscription", 3_000)], [coupon], currency="EUR")

    assert (credit.amount_cents, credit.terminated) == (3_000, False)


def test_v82_once_fixed_coupon_carries_over_then_terminates():
    first_invoice = apply_coupons(
        [FeeLine("f", "subscription", 3_000)], [fixed_once("c", 5_000)], currency="EUR"
    )
    assert (first_invoice[0].amount_cents, first_invoice[0].remaining_cents) == (3_000, 2_000)
    assert first_invoice[0].terminated is False

    second_invoice = apply_coupons(
        [FeeLine("f", "subscription", 4_000)],
        [fixed_once("c", 5_000, remaining=first_invoice[0].remaining_cents)],
        currency="EUR",
    )
    assert (second_invoice[0].amount_cents, second_invoice[0].terminated) == (2_000, True)


def test_v82_once_percentage_coupon_terminates_after_first_use():
    (credit,) = apply_coupons(
        [FeeLine("f", "subscription", 12_345)], [percentage("c", "15")], currency="EUR"
    )

    assert (credit.amount_cents, credit.terminated) == (1_852, True)


# --------------------------------------------------------------------------------------------
# V83 and the §12.3 worked example: totals order


def recording(amount: int, seen: list[int]):
    def allocate(remaining: int) -> Allocation:
        seen.append(remaining)
        return Allocation(min(amount, remaining))

    return allocate


def test_v83_taxes_come_after_coupons_and_credits_after_taxes():
    vat = tax("vat", "10")
    fees = [
        FeeLine("subscription", "subscription", 5_000, taxes=(vat,)),
        FeeLine("usage", "charge", 2_000, taxes=(vat,), charge_metric_code="api"),
    ]
    seen_by_credit_notes: list[int] = []
    seen_by_wallets: list[int] = []

    totals = compute_invoice(
        fees,
        [fixed_once("coupon", 1_000)],
        currency="EUR",
        credit_note_allocator=recording(2_000, seen_by_credit_notes),
        prepaid_credit_allocator=recording(3_000, seen_by_wallets),
    ).totals

    assert totals.sub_total_excluding_taxes_amount_cents == 6_000
    assert totals.taxes_amount_cents == 600
    assert totals.sub_total_including_taxes_amount_cents == 6_600
    assert seen_by_credit_notes == [6_600]
    assert totals.credit_notes_amount_cents == 2_000
    assert seen_by_wallets == [4_600]
    assert totals.prepaid_credit_amount_cents == 3_000
    assert totals.total_amount_cents == 1_600


def test_worked_example_of_spec_12_3_fee_by_fee():
    vat = tax("vat", "10")
    fees = [
        FeeLine("subscription", "subscription", 5_000, taxes=(vat,)),
        FeeLine("usage", "charge", 2_000, taxes=(vat,), charge_metric_code="api"),
    ]

    result = compute_invoice(
        fees,
        [fixed_once("coupon", 1_000)],
        currency="EUR",
        credit_note_allocator=balances_allocator([("credit-note-1", 2_000)]),
        prepaid_credit_allocator=balances_allocator([("wallet", 3_000)]),
    )

    assert shares(fees) == {"subscription": D("714.28571"), "usage": D("285.71429")}
    assert [fee.taxes_amount_cents for fee in fees] == [429, 171]
    assert result.totals.credit_note_details == (("credit-note-1", 2_000),)
    assert result.totals.prepaid_credit_details == (("wallet", 3_000),)
    assert result.totals.total_amount_cents == 1_600
    assert result.totals.payment_status == "pending"


def test_credits_never_take_the_total_below_zero():
    fees = [FeeLine("f", "subscription", 1_000)]

    totals = compute_invoice(
        fees,
        currency="EUR",
        credit_note_allocator=balances_allocator([("cn1", 600), ("cn2", 600)]),
        prepaid_credit_allocator=balances_allocator([("wallet", 5_000)]),
    ).totals

    assert totals.credit_note_details == (("cn1", 600), ("cn2", 400))
    assert totals.prepaid_credit_amount_cents == 0
    assert totals.total_amount_cents == 0
    assert totals.payment_status == "succeeded"


def test_prepaid_allocator_reports_granted_and_purchased_split():
    fees = [FeeLine("f", "subscription", 1_000)]

    totals = compute_invoice(
        fees,
        currency="EUR",
        prepaid_credit_allocator=lambda remaining: Allocation(
            700, granted_amount_cents=200, purchased_amount_cents=500
        ),
    ).totals

    assert (
        totals.prepaid_credit_amount_cents,
        totals.prepaid_granted_credit_amount_cents,
        totals.prepaid_purchased_credit_amount_cents,
        totals.total_amount_cents,
    ) == (700, 200, 500, 300)


def test_an_allocator_consuming_more_than_the_total_is_refused():
    fees = [FeeLine("f", "subscription", 1_000)]
    taxes = apply_taxes(fees)

    with pytest.raises(ValueError, match="credit note allocator"):
        invoice_totals(fees, [], taxes, credit_note_allocator=lambda remaining: Allocation(1_001))


# --------------------------------------------------------------------------------------------
# Coupons: order, eligibility, base (spec §15.3)


def test_coupons_apply_metric_limited_then_plan_limited_then_unlimited_by_date():
    coupons = [
        percentage("unlimited-old", "10", day=1),
        percentage("plan-new", "10", day=5, limited_plan_codes={"gold"}),
        percentage("metric", "10", day=9, limited_metric_codes={"api"}),
        percentage("plan-old", "10", day=2, limited_plan_codes={"gold"}),
        percentage("unlimited-new", "10", day=3),
    ]

    assert [c.key for c in coupon_application_order(coupons)] == [
        "metric",
        "plan-old",
        "plan-new",
        "unlimited-old",
        "unlimited-new",
    ]


def test_metric_limited_coupon_covers_only_charge_fees_of_its_metrics():
    fees = [
        FeeLine("subscription", "subscription", 10_000, plan_code="gold"),
        FeeLine("api", "charge", 3_000, charge_metric_code="api", plan_code="gold"),
        FeeLine("api_true_up", "charge", 1_000, charge_metric_code="api", plan_code="gold"),
        FeeLine("storage", "charge", 6_000, charge_metric_code="storage", plan_code="gold"),
    ]

    (credit,) = apply_coupons(
        fees, [percentage("c", "50", limited_metric_codes={"api"})], currency="EUR"
    )

    assert credit.amount_cents == 2_000
    assert shares(fees) == {"subscription": 0, "api": 1_500, "api_true_up": 500, "storage": 0}


def test_plan_limited_coupon_base_is_what_its_fees_still_owe():
    fees = [
        FeeLine("gold", "subscription", 6_000, plan_code="gold"),
        FeeLine("gold_api", "charge", 4_000, charge_metric_code="api", plan_code="gold"),
        FeeLine("silver", "subscription", 5_000, plan_code="silver"),
    ]
    coupons = [
        fixed_once("metric", 1_000, limited_metric_codes={"api"}),
        percentage("plan", "100", limited_plan_codes={"gold"}, day=2),
    ]

    metric_credit, plan_credit = apply_coupons(fees, coupons, currency="EUR")

    assert metric_credit.amount_cents == 1_000
    assert plan_credit.amount_cents == 9_000  # 6,000 + 4,000 - 1,000 already discounted
    assert shares(fees) == {"gold": 6_000, "gold_api": 4_000, "silver": 0}


def test_limited_coupon_without_eligible_fee_gives_nothing_and_stays_untouched():
    fees = [FeeLine("f", "subscription", 1_000, plan_code="gold")]

    credits = apply_coupons(
        fees, [percentage("c", "10", limited_plan_codes={"silver"})], currency="EUR"
    )

    assert credits == []


def test_unlimited_coupon_base_is_the_sub_total_after_progressive_credit_and_coupons():
    fees = [
        FeeLine("subscription", "subscription", 3_100),
        FeeLine("usage", "charge", 40_000, charge_metric_code="api"),
    ]
    apply_progressive_billing_credit(fees, {"usage": 20_000})

    first, second = apply_coupons(
        fees,
        [fixed_once("first", 3_100), percentage("half", "50", day=2)],
        currency="EUR",
        progressive_billing_credit_cents=20_000,
    )

    assert first.amount_cents == 3_100
    assert second.amount_cents == 10_000  # 50 % of 43,100 - 20,000 - 3,100
    assert sum(shares(fees).values()) == 20_000 + 3_100 + 10_000


def test_fixed_coupon_in_another_currency_is_skipped_but_percentage_is_not():
    fees = [FeeLine("f", "subscription", 1_000)]
    coupons = [fixed_once("usd", 500, currency="USD"), percentage("pct", "10", day=2)]

    credits = apply_coupons(fees, coupons, currency="EUR")

    assert [c.coupon_key for c in credits] == ["pct"]


def test_coupon_already_applied_to_the_invoice_is_skipped():
    fees = [FeeLine("f", "subscription", 1_000)]

    credits = apply_coupons(fees, [fixed_once("c", 500, already_applied=True)], currency="EUR")

    assert credits == []


def test_coupons_stop_once_the_sub_total_reaches_zero():
    fees = [FeeLine("f", "subscription", 1_000)]
    coupons = [fixed_once("all", 1_000), percentage("late", "10", day=2)]

    credits = apply_coupons(fees, coupons, currency="EUR")

    assert [c.coupon_key for c in credits] == ["all"]


def test_no_coupon_applies_to_an_empty_invoice():
    credits = apply_coupons(
        [FeeLine("f", "subscription", 0)], [percentage("c", "10")], currency="EUR"
    )

    assert credits == []


def test_a_coupon_limited_to_both_plans_and_metrics_is_refused():
    with pytest.raises(ValueError, match="not both"):
        percentage("c", "10", limited_plan_codes={"gold"}, limited_metric_codes={"api"})


# --------------------------------------------------------------------------------------------
# Taxes (spec §14.2, §12.4)


def test_invoice_tax_is_rounded_once_not_summed_from_rounded_fee_taxes():
    vat = tax("vat", "10")
    fees = [FeeLine(f"f{i}", "add_on", 5, taxes=(vat,)) for i in range(10)]

    taxes = apply_taxes(fees)

    assert [fee.taxes_amount_cents for fee in fees] == [1] * 10  # 0.5 each, half up
    assert taxes.taxes_amount_cents == 5  # round(10 x 0.5)


def test_fee_taxes_stack_on_the_same_base():
    fee = FeeLine("f", "subscription", 1_001, taxes=(tax("a", "5.5"), tax("b", "10")))

    taxes = apply_taxes([fee])

    # 55.055 -> 55 and 100.1 -> 100 separately, 155.155 -> 155 for the fee and the invoice
    assert [t.amount_cents for t in fee.applied_taxes] == [55, 100]
    assert fee.taxes_precise_amount_cents == D("155.155")
    assert (fee.taxes_amount_cents, fee.taxes_rate) == (155, D("15.5"))
    assert taxes.taxes_amount_cents == 155


def test_v75_invoice_taxes_rate_weights_each_tax_by_its_fees():
    be_tax, plan_tax_a, plan_tax_b = tax("be", "10"), tax("plan_a", "10"), tax("plan_b", "10")
    fees = [
        FeeLine("plan1", "subscription", 17_900, taxes=(be_tax,), plan_code="plan1"),
        FeeLine("plan2", "subscription", 39_900, taxes=(plan_tax_a, plan_tax_b), plan_code="plan2"),
    ]
    forever = CouponToApply(
        "c", "fixed_amount", "forever", T0, 25_000, "EUR", limited_plan_codes={"plan2"}
    )

    totals = compute_invoice(fees, [forever], currency="EUR").totals

    assert (totals.fees_amount_cents, totals.coupons_amount_cents) == (57_800, 25_000)
    assert totals.taxes_amount_cents == 4_770
    assert totals.total_amount_cents == 37_570
    assert totals.taxes_rate == D("14.54268")


def test_taxes_rate_is_weighted_by_fee_count_when_nothing_is_left_to_pay():
    fees = [
        FeeLine("a", "subscription", 1_000, taxes=(tax("vat", "20"),)),
        FeeLine("b", "add_on", 1_000),
    ]

    result = compute_invoice(fees, [percentage("c", "100")], currency="EUR")

    assert result.totals.taxes_amount_cents == 0
    assert result.totals.taxes_rate == D("10.00000")  # 20 x 1/2 fees


# --------------------------------------------------------------------------------------------
# Progressive billing credit (spec §21.3; V92)


def test_v92_period_invoice_credits_what_progressive_billing_already_invoiced():
    fees = [
        FeeLine("subscription", "subscription", 3_100),
        FeeLine("usage", "charge", 40_000, charge_metric_code="sum"),
    ]
    credit, excess = cap_progressive_billing_credit(20_000, 40_000)
    apply_progressive_billing_credit(fees, {"usage": credit})

    totals = compute_invoice(fees, currency="EUR", progressive_billing_credit_cents=credit).totals

    assert excess == 0
    assert totals.fees_amount_cents == 43_100
    assert totals.progressive_billing_credit_amount_cents == 20_000
    assert totals.total_amount_cents == 23_100


def test_progressive_credit_above_the_charge_fees_returns_the_excess():
    assert cap_progressive_billing_credit(5_000, 3_000) == (3_000, 2_000)


# --------------------------------------------------------------------------------------------
# True-ups: spending minimum (§7.16) and minimum commitment (§22)


@pytest.mark.parametrize(
    ("min_amount", "used", "days_billed", "duration", "expected_cents"),
    [
        pytest.param(5_000, 3_000, 31, 31, 2_000, id="V79-cards-full-month"),
        pytest.param(10_000, 7_000, 25, 28, 1_929, id="V78-terminated-after-25-of-28-days"),
        pytest.param(5_000, 5_000, 31, 31, 0, id="minimum-reached"),
        pytest.param(5_000, 6_000, 31, 31, 0, id="minimum-exceeded"),
        pytest.param(0, 0, 31, 31, 0, id="no-minimum"),
    ],
)
def test_spending_minimum_true_up(min_amount, used, days_billed, duration, expected_cents):
    assert spending_minimum_true_up_cents(min_amount, used, days_billed, duration) == expected_cents


@pytest.mark.parametrize(
    ("commitment", "fees_total", "days_covered", "days_in_period", "expected_cents"),
    [
        pytest.param(1_000_000, 690 + 1_000 + 1_000 + 1_000, 2, 29, 65_276, id="V90-february"),
        pytest.param(1_000_000, 10_000 + 1_000, 31, 31, 989_000, id="V90-march"),
        pytest.param(
            1_000_000, 690 + 1_500 + 3_000 + 2_500, 2, 29, 61_276, id="V91-closing-february"
        ),
        pytest.param(1_000_000, 10_000 + 1_500, 31, 31, 988_500, id="V91-closing-march"),
        pytest.param(1_000, 2_000, 31, 31, 0, id="commitment-met"),
    ],
)
def test_commitment_true_up(commitment, fees_total, days_covered, days_in_period, expected_cents):
    assert (
        commitment_true_up_cents(commitment, fees_total, days_covered, days_in_period)
        == expected_cents
    )


# --------------------------------------------------------------------------------------------
# Dates (spec §12.5, §12.7)

NOV_1 = date(2024, 11, 1)


@pytest.mark.parametrize(
    ("anchor", "adjustment", "grace", "expected"),
    [
        pytest.param(
            "next_period_start", "align_with_finalization_date", 0, date(2024, 11, 1),
            id="V96-next-start-align-no-grace",
        ),
        pytest.param(
            "next_period_start", "align_with_finalization_date", 2, date(2024, 11, 3),
            id="V96-next-start-align-grace-2",
        ),
        pytest.param(
            "next_period_start", "keep_anchor", 2, date(2024, 11, 1),
            id="V96-next-start-keep-anchor",
        ),
        pytest.param(
            "current_period_end", "align_with_finalization_date", 2, date(2024, 11, 3),
            id="V96-period-end-align-grace-2",
        ),
        pytest.param(
            "current_period_end", "align_with_finalization_date", 0, date(2024, 10, 31),
            id="V96-period-end-align-no-grace",
        ),
        pytest.param(
            "current_period_end", "keep_anchor", 2, date(2024, 10, 31),
            id="V96-period-end-keep-anchor",
        ),
    ],
)  # fmt: skip
def test_issuing_date_of_recurring_invoice(anchor, adjustment, grace, expected):
    assert issuing_date(NOV_1, grace, anchor, adjustment, recurring=True) == expected


def test_issuing_date_of_non_recurring_invoice_ignores_the_anchor():
    assert issuing_date(NOV_1, 2, "current_period_end", "keep_anchor", recurring=False) == date(
        2024, 11, 3
    )


def test_issuing_date_refuses_an_unknown_anchor():
    with pytest.raises(ValueError, match="period_middle"):
        issuing_date(NOV_1, 0, "period_middle", "keep_anchor", recurring=True)


@pytest.mark.parametrize(
    ("customer_term", "entity_term", "expected"),
    [
        pytest.param(None, 30, date(2024, 12, 1), id="V97-entity-term-30"),
        pytest.param(0, 30, NOV_1, id="V97-customer-term-0-is-issuing-date"),
        pytest.param(15, 30, date(2024, 11, 16), id="customer-term-overrides-entity"),
        pytest.param(None, None, NOV_1, id="no-term"),
    ],
)
def test_payment_due_date(customer_term, entity_term, expected):
    term = effective_net_payment_term(customer_term, entity_term)

    assert payment_due_date(NOV_1, term) == expected


@pytest.mark.parametrize(
    ("now", "overdue"),
    [
        pytest.param(datetime(2025, 1, 2, 23, 59, tzinfo=UTC), False, id="day-before"),
        pytest.param(datetime(2025, 1, 3, 0, 0, 1, tzinfo=UTC), True, id="V97-due-day-after-0h"),
        pytest.param(datetime(2025, 1, 4, 13, 0, tzinfo=UTC), True, id="V97-dunning-next-day"),
    ],
)
def test_payment_overdue_from_midnight_utc_of_the_due_date(now, overdue):
    assert is_payment_overdue_by_date(date(2025, 1, 3), now) is overdue


def test_expected_finalization_date_is_billing_date_plus_grace():
    assert expected_finalization_date(NOV_1, 3) == date(2024, 11, 4)


# --------------------------------------------------------------------------------------------
# Zero-amount invoices (spec §12.6)


@pytest.mark.parametrize(
    ("fees_amount", "customer_setting", "entity_finalize", "expected"),
    [
        pytest.param(0, "inherit", False, "close", id="V99-inherit-entity-skip-closes"),
        pytest.param(0, "finalize", False, "finalize", id="V99-customer-finalize"),
        pytest.param(1_000, "inherit", False, "finalize", id="V99-discounted-to-zero-not-empty"),
        pytest.param(0, "inherit", True, "finalize", id="inherit-entity-finalize"),
        pytest.param(0, "skip", True, "close", id="customer-skip-overrides-entity"),
    ],
)
def test_zero_amount_decision(fees_amount, customer_setting, entity_finalize, expected):
    assert zero_amount_decision(fees_amount, customer_setting, entity_finalize) == expected


def test_v99_invoice_discounted_to_zero_is_finalized_and_paid():
    fees = [FeeLine("f", "subscription", 1_000)]

    totals = compute_invoice(fees, [fixed_once("c", 1_000)], currency="EUR").totals

    assert is_empty_invoice(totals.fees_amount_cents) is False
    assert (totals.total_amount_cents, totals.payment_status) == (0, "succeeded")


# --------------------------------------------------------------------------------------------
# Numbering (spec §2.3)


def test_draft_invoices_carry_a_placeholder_number():
    assert draft_number("LAG-1234") == "LAG-1234-DRAFT"


def test_per_customer_number():
    assert per_customer_number("LAG-1234", 1, 2) == "LAG-1234-001-002"


def test_per_entity_number_keeps_counting_past_the_month():
    assert per_entity_number("LAG-1234", "202411", 10) == "LAG-1234-202411-010"
    assert per_entity_number("LAG-1234", "202412", 1_234) == "LAG-1234-202412-1234"


def test_per_entity_number_refuses_a_malformed_month():
    with pytest.raises(ValueError, match="six digits"):
        per_entity_number("LAG-1234", "2024-11", 1)


def test_customer_slug():
    assert customer_slug("LAG", 7) == "LAG-007"


def test_credit_note_number():
    assert credit_note_number("LAG-1234-001-002", 1) == "LAG-1234-001-002-CN001"


def test_limited_coupon_on_already_discounted_fees_is_used_for_nothing_like_lago():
    # spec §15.3: eligible fees exist, so a credit is created (of 0) and a once coupon is spent
    fees = [
        FeeLine("api", "charge", 1_000, charge_metric_code="api"),
        FeeLine("subscription", "subscription", 1_000),
    ]
    coupons = [
        fixed_once("metric", 1_000, limited_metric_codes={"api"}),
        percentage("metric-pct", "10", day=2, limited_metric_codes={"api"}),
    ]

    first, second = apply_coupons(fees, coupons, currency="EUR")

    assert first.amount_cents == 1_000
    assert (second.amount_cents, second.terminated) == (0, True)
