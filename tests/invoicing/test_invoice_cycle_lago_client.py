"""A full monthly cycle through the official lago-python-client against a live server: catalog,
customer and subscription through the API, events sent as they happen, the clock moved with
time-machine, the hourly billing task run, the invoice read back through the API (spec §27)."""

from datetime import UTC, datetime

import pytest
import time_machine
from lago_python_client.models.billable_metric import BillableMetric
from lago_python_client.models.charge import Charge, Charges
from lago_python_client.models.customer import Customer
from lago_python_client.models.event import Event
from lago_python_client.models.plan import Plan
from lago_python_client.models.subscription import Subscription
from lago_python_client.models.tax import Tax

from invoicing.tasks import bill_customers_task, finalize_due_drafts_task

pytestmark = pytest.mark.django_db(transaction=True)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture(autouse=True)
def _no_pdf(settings):
    settings.INVOICE_PDF_ON_FINALIZE = False


def test_monthly_cycle_through_the_client(lago, organization):
    with time_machine.travel(at("2024-03-05T10:00:00"), tick=False):
        lago.taxes.create(Tax(name="VAT", code="vat20", rate=20.0))
        metric = lago.billable_metrics.create(
            BillableMetric(name="API calls", code="api_calls", aggregation_type="count_agg")
        )
        lago.plans.create(
            Plan(
                name="Startup",
                code="startup",
                interval="monthly",
                amount_cents=3100,
                amount_currency="EUR",
                pay_in_advance=False,
                tax_codes=["vat20"],
                charges=Charges(
                    __root__=[
                        Charge(
                            billable_metric_id=metric.lago_id,
                            charge_model="standard",
                            properties={"amount": "0.50"},
                        )
                    ]
                ),
            )
        )
        lago.customers.create(
            Customer(external_id="cust_1", name="Cust", currency="EUR", timezone="UTC")
        )
        lago.subscriptions.create(
            Subscription(external_customer_id="cust_1", plan_code="startup", external_id="sub_1")
        )
    for index, day in enumerate(("2024-03-10", "2024-03-20", "2024-03-31")):
        with time_machine.travel(at(f"{day}T12:00:00"), tick=False):
            lago.events.create(
                Event(
                    transaction_id=f"tx_{index}",
                    external_subscription_id="sub_1",
                    code="api_calls",
                    properties={},
                )
            )

    with time_machine.travel(at("2024-03-31T23:10:00"), tick=False):
        assert bill_customers_task() == 0  # not yet the 1st in the customer's timezone
    with time_machine.travel(at("2024-04-01T00:10:00"), tick=False):
        assert bill_customers_task() == 1
        finalize_due_drafts_task()
    with time_machine.travel(at("2024-04-01T01:10:00"), tick=False):
        assert bill_customers_task() == 0  # billed once

    listing = lago.invoices.find_all({"external_customer_id": "cust_1"})
    [invoice] = listing["invoices"]
    assert (invoice.status, invoice.invoice_type) == ("finalized", "subscription")
    assert invoice.issuing_date == "2024-04-01"
    # Mar 5..31 = 27 days of 31 x 31.00 = 27.00; 3 calls x 0.50 = 1.50; VAT 20 % = 5.70
    assert invoice.fees_amount_cents == 2850
    assert invoice.taxes_amount_cents == 570
    assert invoice.total_amount_cents == 3420
    assert invoice.number.endswith("-001")

    detail = lago.invoices.find(invoice.lago_id)
    amounts = sorted((fee.item.type, fee.amount_cents) for fee in detail.fees.__root__)
    assert amounts == [("charge", 150), ("subscription", 2700)]
