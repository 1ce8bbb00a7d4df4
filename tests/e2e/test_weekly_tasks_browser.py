"""The weekly tasks without the API, on the demo data at 1280 px: a manager subscribes a customer
with a price override; finance issues a one-off invoice after previewing it and creates a
wallet with a recurring top-up. Screenshots go to $SCREENSHOT_DIR."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.management import call_command

from customers.models import Customer, Subscription
from invoicing.models import Invoice
from plans.models import AddOn, Charge, Plan
from tests.e2e.conftest import SCREENSHOTS, admin_login
from wallets.models import RecurringTransactionRule, Wallet

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WIDTH = 1280


@pytest.fixture
def demo(db):
    call_command("seed_demo", "--quiet")


@pytest.fixture
def desk(browser):
    context = browser.new_context(viewport={"width": WIDTH, "height": 900})
    page = context.new_page()
    yield page
    context.close()


def shoot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def fits(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth") <= WIDTH


def open_customer(page, base: str, external_id: str) -> None:
    customer = Customer.objects.get(external_id=external_id)
    page.goto(f"{base}/admin/customers/customer/{customer.pk}/change/")
    page.wait_for_selector("#customer-360")


def plan_id(code: str) -> str:
    return str(Plan.objects.get(code=code, parent__isnull=True).pk)


def add_on_id(code: str) -> str:
    return str(AddOn.objects.get(code=code).pk)


def test_a_manager_subscribes_a_customer_with_a_cheaper_api_price(live_server, demo, desk):
    page, base = desk, live_server.url
    admin_login(page, base, "manager", "manager")
    open_customer(page, base, "demo_marie_dupont")
    page.click("text=Subscribe to a plan")
    page.wait_for_selector("#subscribe-form")
    page.select_option("select[name=plan]", value=plan_id("enterprise_yearly"))
    page.wait_for_selector("text=Charge prices")  # the plan's prices, loaded on choosing it
    page.fill("input[name=name]", "Marie — Enterprise")
    api_price = page.get_by_label("API calls: price per unit")
    assert api_price.input_value() == "0.0005"
    api_price.fill("0.0004")
    assert fits(page)
    shoot(page, "tasks-subscribe-form")
    page.click("input[name=_save]")
    page.wait_for_selector("text=subscribed to Enterprise (yearly)")
    shoot(page, "tasks-subscribe-done")

    subscription = Subscription.objects.get(name="Marie — Enterprise")
    assert subscription.status == Subscription.Status.ACTIVE
    assert subscription.plan.parent.code == "enterprise_yearly"
    prices = {
        c.billable_metric.code: c.properties["amount"]
        for c in Charge.objects.filter(plan=subscription.plan).select_related("billable_metric")
    }
    assert prices == {"api_calls": "0.0004", "compute_seconds": "0.02"}


def test_finance_previews_then_issues_a_one_off_invoice(live_server, demo, desk):
    page, base = desk, live_server.url
    admin_login(page, base, "finance", "finance")
    open_customer(page, base, "demo_bergmann_de")
    one_offs = set(Invoice.objects.filter(invoice_type="one_off").values_list("pk", flat=True))
    page.click("text=One-off invoice")
    page.wait_for_selector("#one-off-invoice-form")
    page.select_option("select[name=line-0-add_on]", value=add_on_id("onboarding"))
    page.fill("input[name=line-0-units]", "2")
    page.fill("input[name=line-0-description]", "Two onboarding days, Stuttgart")
    page.select_option("select[name=line-1-add_on]", value=add_on_id("premium_support"))
    page.click("input[name=_preview]")
    page.wait_for_selector("#one-off-invoice-preview")
    preview = page.inner_text("#one-off-invoice-preview")
    assert "€3,199.00" in preview  # 2 x 1,500.00 + 199.00
    assert fits(page)
    shoot(page, "tasks-one-off-preview")
    assert Invoice.objects.filter(invoice_type="one_off").count() == len(one_offs)

    page.click("input[name=_save]")
    page.wait_for_selector("text=issued to Bergmann Maschinenbau")
    shoot(page, "tasks-one-off-done")
    invoice = Invoice.objects.exclude(pk__in=one_offs).get(invoice_type="one_off")
    assert invoice.status == Invoice.Status.FINALIZED
    assert invoice.fees_amount_cents == 319_900


def test_finance_creates_a_wallet_with_a_monthly_top_up(live_server, demo, desk):
    page, base = desk, live_server.url
    admin_login(page, base, "finance", "finance")
    page.goto(f"{base}/admin/wallets/wallet/")
    page.click('a[href="/admin/wallets/wallet/add/"]')
    page.wait_for_selector("select[name=customer]")
    marie = Customer.objects.get(external_id="demo_marie_dupont")
    page.select_option("select[name=customer]", label="Marie Dupont (demo_marie_dupont)")
    assert page.input_value("select[name=customer]") == str(marie.pk)
    page.click("input[type=submit]")
    page.wait_for_selector("#new-wallet-form")
    page.fill("input[name=name]", "Prepaid API credits")
    page.fill("input[name=granted_credits]", "50")
    page.check("input[name=rule_trigger][value=interval]")
    page.select_option("select[name=rule_interval]", "monthly")
    page.fill("input[name=rule_granted_credits]", "10")
    assert fits(page)
    shoot(page, "tasks-wallet-form")
    page.click("input[name=_save]")
    page.wait_for_selector("text=Wallet Prepaid API credits created")
    shoot(page, "tasks-wallet-done")

    wallet = Wallet.objects.get(name="Prepaid API credits")
    assert wallet.customer.external_id == "demo_marie_dupont"
    assert wallet.balance_cents == 5_000
    rule = RecurringTransactionRule.objects.get(wallet=wallet)
    assert (rule.interval, rule.granted_credits) == ("monthly", Decimal(10))


def test_a_refused_subscription_shows_the_error_next_to_the_field(live_server, demo, desk):
    page, base = desk, live_server.url
    admin_login(page, base, "manager", "manager")
    before = Subscription.objects.count()
    open_customer(page, base, "demo_marie_dupont")
    page.click("text=Subscribe to a plan")
    page.select_option("select[name=plan]", value=plan_id("starter"))
    page.wait_for_selector("text=Charge prices")
    page.fill("input[name=amount]", "-5")
    page.click("input[name=_save]")
    error = page.locator(".field-amount .errorlist")
    assert "greater than or equal to 0" in error.inner_text()
    shoot(page, "tasks-subscribe-error")
    assert Subscription.objects.count() == before
