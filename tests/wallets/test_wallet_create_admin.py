"""Admin "New wallet": a wallet of one customer, its first top-up and an optional recurring
rule, saved by the service of POST /wallets; refusals next to their field and nothing written."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model

from billing.roles import ensure_role_groups
from billing.services import membership_set
from tests.customers.factories import CustomerFactory
from wallets.models import RecurringTransactionRule, Wallet, WalletTransaction

pytestmark = pytest.mark.django_db

ADD = "/admin/wallets/wallet/add/"


@pytest.fixture(autouse=True)
def role_groups(db):
    ensure_role_groups()


def login(client, organization, role):
    user = get_user_model().objects.create_user(role, f"{role}@example.com", "pw-123456")
    membership_set(organization=organization, user=user, role=role)
    client.force_login(user)
    return client


@pytest.fixture
def finance(client, organization):
    return login(client, organization, "finance")


@pytest.fixture
def customer(organization):
    return CustomerFactory(organization=organization, external_id="globex", name="Globex",
                           currency="EUR")  # fmt: skip


def form_data(**changes):
    data = {
        "name": "Prepaid credits",
        "currency": "EUR",
        "rate_amount": "1.00",
        "paid_credits": "",
        "granted_credits": "100",
        "expiration_date": "",
        "rule_trigger": "",
        "rule_interval": "",
        "rule_threshold_credits": "",
        "rule_paid_credits": "",
        "rule_granted_credits": "",
        "_save": "1",
    }
    data.update(changes)
    return data


def url(customer):
    return f"{ADD}?customer={customer.pk}"


def test_creating_makes_the_wallet_and_grants_its_credits(finance, customer):
    response = finance.post(url(customer), form_data())
    wallet = Wallet.objects.get(customer=customer)
    assert response.status_code == 302
    assert response["Location"] == f"/admin/wallets/wallet/{wallet.pk}/change/"
    assert (wallet.name, wallet.currency, wallet.rate_amount) == (
        "Prepaid credits", "EUR", Decimal(1),
    )  # fmt: skip
    assert wallet.balance_cents == 10_000
    granted = WalletTransaction.objects.get(wallet=wallet)
    assert granted.transaction_status == WalletTransaction.TransactionStatus.GRANTED
    assert granted.credit_amount == Decimal(100)


def test_the_wallet_matches_the_one_the_api_creates(finance, customer, api, organization):
    fields = {"rate_amount": "0.50", "paid_credits": "40", "granted_credits": "10",
              "expiration_date": "2099-01-01", "rule_trigger": "interval",
              "rule_interval": "monthly", "rule_paid_credits": "20"}  # fmt: skip
    finance.post(url(customer), form_data(**fields))
    CustomerFactory(organization=organization, external_id="twin", currency="EUR")
    answer = api.post(
        "/api/v1/wallets",
        {"wallet": {
            "external_customer_id": "twin", "name": "Prepaid credits", "currency": "EUR",
            "rate_amount": "0.50", "paid_credits": "40", "granted_credits": "10",
            "expiration_at": "2099-01-01T00:00:00Z",
            "recurring_transaction_rules": [{"trigger": "interval", "interval": "monthly",
                                             "method": "fixed", "paid_credits": "20",
                                             "granted_credits": "0"}],
        }},
        format="json",
    )  # fmt: skip
    assert answer.status_code == 200, answer.json()

    def shape(external_id):
        wallet = Wallet.objects.get(customer__external_id=external_id)
        rule = RecurringTransactionRule.objects.get(wallet=wallet)
        transactions = sorted(
            (t.transaction_status, t.status, t.credit_amount, t.amount_cents)
            for t in WalletTransaction.objects.filter(wallet=wallet)
        )
        return (wallet.rate_amount, wallet.balance_cents, wallet.expiration_at,
                (rule.trigger, rule.interval, rule.method, rule.paid_credits,
                 rule.granted_credits), transactions)  # fmt: skip

    ours = shape("globex")
    assert ours == shape("twin")
    assert ours[1] == 500  # the 10 granted credits at 0.50; the 40 paid wait for their invoice
    assert ours[3] == ("interval", "monthly", "fixed", Decimal(20), Decimal(0))


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        pytest.param({"rate_amount": "0"}, "rate_amount", "greater than or equal", id="rate-0"),
        pytest.param({"granted_credits": "-5"}, "granted_credits", "greater than or equal",
                     id="negative-credits"),
        pytest.param({"expiration_date": "2001-01-01"}, "expiration_date", "invalid date",
                     id="expired"),
        pytest.param({"rule_trigger": "interval", "rule_paid_credits": "5"}, "rule_interval",
                     "how often", id="interval-missing"),
        pytest.param({"rule_trigger": "threshold", "rule_paid_credits": "5"},
                     "rule_threshold_credits", "triggers", id="threshold-missing"),
        pytest.param({"rule_trigger": "interval", "rule_interval": "monthly"},
                     "rule_paid_credits", "paid or granted", id="rule-without-credits"),
    ],
)  # fmt: skip
def test_invalid_input_is_refused_next_to_its_field(finance, customer, changes, field, message):
    response = finance.post(url(customer), form_data(**changes))
    assert response.status_code == 200
    assert message in " ".join(response.context["form"].errors[field]).lower()
    assert not Wallet.objects.exists()
    assert not WalletTransaction.objects.exists()


def test_the_wallet_limit_is_refused_on_the_form(finance, customer, organization):
    organization.max_wallets = 1
    organization.save()
    finance.post(url(customer), form_data())
    response = finance.post(url(customer), form_data(name="Second"))
    errors = " ".join(response.context["form"].non_field_errors())
    assert "already has as many active wallets as allowed" in errors
    assert Wallet.objects.count() == 1


def test_another_organizations_customer_is_neither_offered_nor_given_a_wallet(
    finance, customer, other_organization
):
    stranger = CustomerFactory(organization=other_organization, name="Stranger Ltd")
    assert "Stranger Ltd" not in finance.get(ADD).content.decode()
    response = finance.post(url(stranger), form_data())
    assert "pick_form" in response.context
    assert not Wallet.objects.exists()


@pytest.mark.parametrize("role", ["admin", "manager", "finance"])
def test_every_role_may_create_a_wallet(client, organization, customer, role):
    staff = login(client, organization, role)
    assert staff.post(url(customer), form_data()).status_code == 302
    assert Wallet.objects.filter(customer=customer).exists()
    page = staff.get(f"/admin/customers/customer/{customer.pk}/change/").content.decode()
    assert "New wallet" in page


def test_a_member_of_another_organization_only_may_not(client, other_organization, customer):
    staff = login(client, other_organization, "finance")
    response = staff.post(url(customer), form_data())
    assert "pick_form" in response.context  # this customer is not one of theirs
    assert not Wallet.objects.exists()
