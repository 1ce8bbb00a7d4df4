"""Customer admin: scoped list, the 360 page, and its buttons calling the services."""

import pytest
from django.contrib.auth import get_user_model

from billing.actors import SYSTEM
from billing.roles import ensure_role_groups
from billing.services import membership_set
from customers.models import AppliedCoupon, Customer, Subscription
from customers.services.customers import customer_create
from tests.billing.factories import BillingEntityFactory
from tests.customers.factories import SubscriptionFactory
from tests.plans.factories import CouponFactory, PlanFactory, TaxFactory

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/customers/customer/"


def change_url(customer):
    return f"{CHANGELIST}{customer.pk}/change/"


@pytest.fixture
def acme_customer(organization):
    TaxFactory(organization=organization, code="vat_fr", name="TVA", rate="20")
    return customer_create(
        organization=organization,
        values={
            "external_id": "acme",
            "name": "Acme Corp",
            "email": "billing@acme.example",
            "country": "FR",
            "currency": "EUR",
            "legal_name": "Acme Corporation SAS",
            "metadata": [{"key": "crm_id", "value": "42"}],
            "tax_codes": ["vat_fr"],
        },
        actor=SYSTEM,
    )


@pytest.fixture
def globex_customer(other_organization):
    return customer_create(
        organization=other_organization,
        values={"external_id": "globex", "name": "Globex Inc"},
        actor=SYSTEM,
    )


@pytest.fixture(autouse=True)
def _role_groups_know_customer_permissions():
    # billing's post_migrate hook fills the role groups before the customers app's permissions
    # exist (it runs for sender=billing); refresh them as a later migrate would.
    ensure_role_groups()


def _staff(organization, username, role):
    user = get_user_model().objects.create_user(username, f"{username}@example.com", "pw-123456")
    membership_set(organization=organization, user=user, role=role)
    return user


@pytest.fixture
def finance_user(organization):
    return _staff(organization, "fin", "finance")  # customers: view only


@pytest.fixture
def manager(organization):
    return _staff(organization, "manager", "manager")  # customers: every right


def test_superuser_sees_every_organizations_customers(admin_client, acme_customer,
                                                       globex_customer):  # fmt: skip
    page = admin_client.get(CHANGELIST).content.decode()
    assert "Acme Corp" in page
    assert "Globex Inc" in page


def test_staff_sees_only_their_organizations_customers(client, finance_user, acme_customer,
                                                       globex_customer):  # fmt: skip
    client.force_login(finance_user)
    page = client.get(CHANGELIST).content.decode()
    assert "Acme Corp" in page
    assert "Globex Inc" not in page
    assert client.get(change_url(globex_customer)).status_code == 302  # not visible


def test_changelist_leaves_out_the_billing_entity_when_there_is_one(
    client, finance_user, acme_customer
):
    client.force_login(finance_user)

    response = client.get(CHANGELIST)

    assert "billing_entity" not in response.context["cl"].list_display


def test_changelist_shows_the_billing_entity_when_there_are_several(
    client, finance_user, organization, acme_customer
):
    BillingEntityFactory(organization=organization, code="second")
    client.force_login(finance_user)

    response = client.get(CHANGELIST)

    assert "billing_entity" in response.context["cl"].list_display


@pytest.mark.parametrize(
    "query", ["q=corporation", "q=billing%40acme", "q=acme", "country=FR", "currency=EUR"]
)
def test_changelist_search_and_filters_find_the_customer(admin_client, acme_customer, query):
    response = admin_client.get(f"{CHANGELIST}?{query}")
    assert response.status_code == 200
    assert "Acme Corp" in response.content.decode()


def test_changelist_hides_deleted_customers_unless_asked(admin_client, acme_customer):
    admin_client.post(CHANGELIST, {"action": "soft_delete", "_selected_action": [acme_customer.pk]})
    assert "Acme Corp" not in admin_client.get(CHANGELIST).content.decode()
    assert "Acme Corp" in admin_client.get(f"{CHANGELIST}?lifecycle=deleted").content.decode()


def test_360_page_renders_panels_for_a_superuser(admin_client, organization, acme_customer):
    plan = PlanFactory(organization=organization, name="Pro plan", amount_cents=4900)
    SubscriptionFactory(organization=organization, customer=acme_customer, plan=plan,
                        external_id="sub_pro")  # fmt: skip
    coupon = CouponFactory(organization=organization, name="Welcome", amount_cents=1500)
    AppliedCoupon.objects.create(organization=organization, customer=acme_customer,
                                 coupon=coupon, amount_cents=1500, amount_currency="EUR",
                                 frequency="once")  # fmt: skip
    response = admin_client.get(change_url(acme_customer))
    assert response.status_code == 200
    page = response.content.decode()
    for expected in ("Summary", "Invoicing settings in effect", "Subscriptions", "sub_pro",
                     "Pro plan", "€49.00", "Applied coupons", "Welcome", "€15.00",
                     "Apply a coupon", "Terminate", "Taxes", "TVA", "crm_id"):  # fmt: skip
        assert expected in page, expected


def test_360_page_renders_read_only_for_an_org_scoped_finance_member(
    client, finance_user, acme_customer
):
    client.force_login(finance_user)
    response = client.get(change_url(acme_customer))
    assert response.status_code == 200
    page = response.content.decode()
    assert "Applied coupons" in page
    assert "Apply a coupon" not in page  # view right only
    assert 'name="_save"' not in page


def test_360_page_of_a_deleted_customer_is_read_only(admin_client, acme_customer):
    admin_client.post(CHANGELIST, {"action": "soft_delete", "_selected_action": [acme_customer.pk]})
    response = admin_client.get(change_url(acme_customer))
    assert response.status_code == 200
    assert "Deleted" in response.content.decode()
    assert 'name="_save"' not in response.content.decode()


def test_add_page_renders(admin_client):
    assert admin_client.get(f"{CHANGELIST}add/").status_code == 200


def _form_data(customer, **overrides):
    data = {
        "billing_entity": customer.billing_entity_id,
        "name": customer.name,
        "email": customer.email,
        "country": customer.country,
        "currency": customer.currency,
        "account_type": customer.account_type,
        "finalize_zero_amount_invoice": customer.finalize_zero_amount_invoice,
        "taxes": [t.pk for t in customer.taxes.all()],
        "metadata-TOTAL_FORMS": "1",
        "metadata-INITIAL_FORMS": "1",
        "metadata-MIN_NUM_FORMS": "0",
        "metadata-MAX_NUM_FORMS": "5",
        "metadata-0-id": str(customer.metadata.get().pk),
        "metadata-0-customer": str(customer.pk),
        "metadata-0-key": "crm_id",
        "metadata-0-value": "42",
    }
    data.update(overrides)
    return data


def test_saving_the_profile_goes_through_the_service(client, manager, acme_customer):
    client.force_login(manager)
    response = client.post(
        change_url(acme_customer),
        _form_data(acme_customer, name="Acme Renamed", **{"metadata-0-value": "43"}),
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    acme_customer.refresh_from_db()
    assert acme_customer.name == "Acme Renamed"
    assert acme_customer.metadata.get().value == "43"


def test_profile_form_refuses_a_frozen_currency_change(client, manager, organization,
                                                      acme_customer):  # fmt: skip
    SubscriptionFactory(organization=organization, customer=acme_customer)
    client.force_login(manager)
    response = client.post(change_url(acme_customer), _form_data(acme_customer, currency="USD"))
    assert response.status_code == 200  # the form again, with the error
    assert "currency" in response.context["adminform"].form.errors
    acme_customer.refresh_from_db()
    assert acme_customer.currency == "EUR"


def test_adding_a_customer_numbers_it(client, manager, organization):
    client.force_login(manager)
    response = client.post(
        f"{CHANGELIST}add/",
        {
            "organization": organization.pk,
            "external_id": "new_one",
            "name": "New One",
            "account_type": "customer",
            "finalize_zero_amount_invoice": "inherit",
            "metadata-TOTAL_FORMS": "0",
            "metadata-INITIAL_FORMS": "0",
            "metadata-MIN_NUM_FORMS": "0",
            "metadata-MAX_NUM_FORMS": "5",
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    customer = Customer.objects.get(external_id="new_one")
    assert customer.sequential_id == 1
    assert customer.billing_entity.is_default


def test_apply_coupon_form_applies_through_the_service(client, manager, organization,
                                                       acme_customer):  # fmt: skip
    coupon = CouponFactory(organization=organization, code="ten", amount_cents=1000)
    client.force_login(manager)
    url = f"{CHANGELIST}{acme_customer.pk}/apply-coupon/"
    assert client.get(url).status_code == 200
    response = client.post(url, {"coupon": coupon.pk, "amount": "12.50"})
    assert response.status_code == 302
    applied = acme_customer.applied_coupons.get()
    assert (applied.amount_cents, applied.amount_currency) == (1250, "EUR")


def test_apply_coupon_form_shows_a_refusal(client, manager, organization, acme_customer):
    coupon = CouponFactory(organization=organization, code="usd", amount_currency="USD")
    client.force_login(manager)
    response = client.post(f"{CHANGELIST}{acme_customer.pk}/apply-coupon/", {"coupon": coupon.pk})
    assert response.status_code == 200
    assert "currency differs" in response.content.decode()
    assert not AppliedCoupon.objects.exists()


def test_finance_member_cannot_apply_a_coupon(client, finance_user, organization, acme_customer):
    coupon = CouponFactory(organization=organization, code="ten")
    client.force_login(finance_user)
    response = client.post(f"{CHANGELIST}{acme_customer.pk}/apply-coupon/", {"coupon": coupon.pk})
    assert response.status_code == 403
    assert not AppliedCoupon.objects.exists()


def test_terminate_button_terminates_the_applied_coupon(client, manager, organization,
                                                        acme_customer):  # fmt: skip
    coupon = CouponFactory(organization=organization, code="ten")
    applied = AppliedCoupon.objects.create(organization=organization, customer=acme_customer,
                                           coupon=coupon, amount_cents=1000,
                                           amount_currency="EUR", frequency="once")  # fmt: skip
    client.force_login(manager)
    url = f"{CHANGELIST}{acme_customer.pk}/applied-coupons/{applied.pk}/terminate/"
    assert client.post(url).status_code == 302
    applied.refresh_from_db()
    assert applied.status == "terminated"


def test_soft_delete_action_ends_subscriptions(client, manager, organization, acme_customer):
    subscription = SubscriptionFactory(organization=organization, customer=acme_customer)
    client.force_login(manager)
    client.post(CHANGELIST, {"action": "soft_delete", "_selected_action": [acme_customer.pk]})
    acme_customer.refresh_from_db()
    subscription.refresh_from_db()
    assert acme_customer.deleted_at is not None
    assert subscription.status == Subscription.Status.TERMINATED
