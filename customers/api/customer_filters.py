"""Query filters of GET /customers and GET /applied_coupons, named as Lago's params (§3, §15)."""

from __future__ import annotations

import re

import django_filters as filters
from django.db.models import Exists, OuterRef, Q, QuerySet

from billing.api.filters import LagoFilterSet, ListFilter
from billing.errors import NotFound
from billing.models import BillingEntity
from billing.money import CURRENCIES
from customers.models import AppliedCoupon, Customer, CustomerMetadata
from customers.services.customers import COUNTRY_CODES

_METADATA_PARAM = re.compile(r"^metadata\[(?P<key>[^\]]+)\]$")


def _choices(values: object) -> list[tuple[str, str]]:
    return [(value, value) for value in sorted(values)]


class CustomerFilter(LagoFilterSet):
    account_type = filters.MultipleChoiceFilter(choices=Customer.AccountType.choices)
    billing_entity_codes = ListFilter(method="filter_billing_entity_codes")
    search_term = filters.CharFilter(method="filter_search_term")
    countries = filters.MultipleChoiceFilter(field_name="country", choices=_choices(COUNTRY_CODES))
    states = ListFilter(field_name="state")
    zipcodes = ListFilter(field_name="zipcode")
    currencies = filters.MultipleChoiceFilter(field_name="currency", choices=_choices(CURRENCIES))
    has_tax_identification_number = filters.BooleanFilter(method="filter_has_tax_id")
    customer_type = filters.ChoiceFilter(choices=Customer.CustomerType.choices)
    has_customer_type = filters.BooleanFilter(method="filter_has_customer_type")
    external_id = filters.CharFilter()

    class Meta:
        model = Customer
        fields: tuple[str, ...] = ()

    def filter_billing_entity_codes(self, qs: QuerySet, name: str, value: list[str]) -> QuerySet:
        if not value:
            return qs
        codes = set(value)
        entities = BillingEntity.objects.for_organization(self.request.auth.organization).filter(
            code__in=codes
        )
        if entities.count() != len(codes):
            raise NotFound("billing_entity")  # as Lago: an unknown code is a 404
        return qs.filter(billing_entity__in=entities)

    def filter_search_term(self, qs: QuerySet, name: str, value: str) -> QuerySet:
        if not value:
            return qs
        fields = ("name", "firstname", "lastname", "legal_name", "external_id", "email")
        condition = Q()
        for field in fields:
            condition |= Q(**{f"{field}__icontains": value})
        return qs.filter(condition)

    def filter_has_tax_id(self, qs: QuerySet, name: str, value: bool | None) -> QuerySet:
        if value is None:
            return qs
        return (
            qs.exclude(tax_identification_number="")
            if value
            else qs.filter(tax_identification_number="")
        )

    def filter_has_customer_type(self, qs: QuerySet, name: str, value: bool | None) -> QuerySet:
        if value is None:
            return qs
        return qs.filter(customer_type__isnull=not value)

    def filter_queryset(self, queryset: QuerySet) -> QuerySet:
        queryset = super().filter_queryset(queryset)
        # `metadata[key]=value`: customers holding that pair; an empty value: without that key.
        for param in self.data:
            match = _METADATA_PARAM.match(param)
            if match is None:
                continue
            pairs = CustomerMetadata.objects.filter(customer=OuterRef("pk"), key=match.group("key"))
            value = self.data.get(param)
            if value:
                queryset = queryset.filter(Exists(pairs.filter(value=value)))
            else:
                queryset = queryset.exclude(Exists(pairs))
        return queryset


class CustomerAppliedCouponFilter(LagoFilterSet):
    """Filters of one customer's applied coupons."""

    status = filters.ChoiceFilter(choices=AppliedCoupon.Status.choices)
    coupon_code = ListFilter(field_name="coupon__code")

    class Meta:
        model = AppliedCoupon
        fields: tuple[str, ...] = ()


class AppliedCouponFilter(CustomerAppliedCouponFilter):
    """Filters of GET /applied_coupons (spec §15)."""

    external_customer_id = filters.CharFilter(method="filter_external_customer_id")

    def filter_external_customer_id(self, qs: QuerySet, name: str, value: str) -> QuerySet:
        if not value:
            return qs
        # the alive customer: a deleted one may have left the same external_id behind (§3.1)
        return qs.filter(customer__external_id=value, customer__deleted_at__isnull=True)
