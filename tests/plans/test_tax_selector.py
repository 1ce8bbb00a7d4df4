"""Which taxes apply to a fee: the first non-empty level of spec §14.1 wins."""

import pytest

from billing.errors import Invalid
from plans.models import BillingEntityTax, MinimumCommitment
from plans.selectors import applicable_taxes
from tests.plans.factories import (
    AddOnFactory,
    ChargeFactory,
    FixedChargeFactory,
    PlanFactory,
    TaxFactory,
)

pytestmark = pytest.mark.django_db

LEVELS = ("tax_codes", "add_on", "charge", "fixed_charge", "commitment", "plan",
          "customer_taxes", "billing_entity")  # fmt: skip


@pytest.fixture
def every_level(organization):
    """Each level of the hierarchy carries its own tax, named after the level."""
    taxes = {level: TaxFactory(organization=organization, code=level) for level in LEVELS}
    plan = PlanFactory(organization=organization)
    plan.taxes.add(taxes["plan"])
    add_on = AddOnFactory(organization=organization)
    add_on.taxes.add(taxes["add_on"])
    charge = ChargeFactory(organization=organization, plan=plan)
    charge.taxes.add(taxes["charge"])
    fixed_charge = FixedChargeFactory(organization=organization, plan=plan)
    fixed_charge.taxes.add(taxes["fixed_charge"])
    commitment = MinimumCommitment.objects.create(
        organization=organization, plan=plan, amount_cents=1000
    )
    commitment.taxes.add(taxes["commitment"])
    entity = organization.default_billing_entity()
    BillingEntityTax.objects.create(
        organization=organization, billing_entity=entity, tax=taxes["billing_entity"]
    )
    return {
        "tax_codes": ["tax_codes"],
        "add_on": add_on,
        "charge": charge,
        "fixed_charge": fixed_charge,
        "commitment": commitment,
        "plan": plan,
        "customer_taxes": [taxes["customer_taxes"]],
        "billing_entity": entity,
    }


@pytest.mark.parametrize(
    "level", [pytest.param(level, id=f"{n}-{level}") for n, level in enumerate(LEVELS, 1)]
)
def test_first_non_empty_level_wins(organization, every_level, level):
    # the levels above `level` are left out; every level below it is given
    below = {name: every_level[name] for name in LEVELS[LEVELS.index(level) :]}
    taxes = applicable_taxes(organization=organization, **below)
    assert [tax.code for tax in taxes] == [level]


@pytest.mark.parametrize(
    "level", [pytest.param(level, id=f"{n}-{level}") for n, level in enumerate(LEVELS, 1)]
)
def test_empty_level_falls_through_to_the_next(organization, every_level, level):
    fallback = LEVELS[LEVELS.index(level) + 1] if level != LEVELS[-1] else None
    given = {name: every_level[name] for name in LEVELS[LEVELS.index(level) + 1 :]}
    empty = {
        "tax_codes": [],
        "add_on": AddOnFactory(organization=organization),
        "charge": ChargeFactory(organization=organization),
        "fixed_charge": FixedChargeFactory(organization=organization),
        "commitment": None,
        "plan": PlanFactory(organization=organization),
        "customer_taxes": [],
        "billing_entity": None,
    }[level]
    taxes = applicable_taxes(organization=organization, **{level: empty}, **given)
    assert [tax.code for tax in taxes] == ([fallback] if fallback else [])


def test_several_taxes_of_one_level_all_apply(organization):
    plan = PlanFactory(organization=organization)
    plan.taxes.add(TaxFactory(organization=organization, code="a"),
                   TaxFactory(organization=organization, code="b"))  # fmt: skip
    assert {t.code for t in applicable_taxes(organization=organization, plan=plan)} == {"a", "b"}


def test_no_level_means_no_tax(organization):
    assert applicable_taxes(organization=organization) == []


def test_unknown_explicit_tax_code_is_refused(organization):
    with pytest.raises(Invalid) as refused:
        applicable_taxes(organization=organization, tax_codes=["nope"])
    assert refused.value.details == {"tax_codes": ["tax_not_found"]}
