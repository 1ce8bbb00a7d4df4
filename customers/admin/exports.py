"""Columns of the exports of the customer and subscription lists: django-import-export
resources read by `billing.admin_export` (days as ISO dates, instants in UTC)."""

from __future__ import annotations

from billing.admin_export import ListResource, text_column, value_column


class CustomerResource(ListResource):
    """One row per customer, as in the customer list."""

    external_id = text_column("external_id")
    lago_id = value_column("lago_id", lambda customer: str(customer.pk))
    name = text_column("name")
    legal_name = text_column("legal_name")
    email = text_column("email")
    country = text_column("country")
    currency = text_column("currency")
    account_type = text_column("account_type")
    customer_type = text_column("customer_type")
    billing_entity = text_column("billing_entity__code", "billing_entity")
    timezone = text_column("timezone")
    created_at = value_column("created_at", lambda customer: customer.created_at)
    deleted_at = value_column("deleted_at", lambda customer: customer.deleted_at)

    class Meta:
        name = "Customers"


class SubscriptionResource(ListResource):
    """One row per subscription, as in the subscription list."""

    external_id = text_column("external_id")
    lago_id = value_column("lago_id", lambda subscription: str(subscription.pk))
    customer_external_id = text_column("customer__external_id", "customer_external_id")
    plan_code = text_column("plan__code", "plan_code")
    name = text_column("name")
    status = text_column("status")
    billing_time = text_column("billing_time")
    subscription_at = value_column("subscription_at", lambda sub: sub.subscription_at)
    started_at = value_column("started_at", lambda sub: sub.started_at)
    ending_at = value_column("ending_at", lambda sub: sub.ending_at)
    terminated_at = value_column("terminated_at", lambda sub: sub.terminated_at)
    canceled_at = value_column("canceled_at", lambda sub: sub.canceled_at)

    class Meta:
        name = "Subscriptions"
