"""Query filters of GET /invoices and GET /fees, named as Lago's params (spec §12, §13)."""

from __future__ import annotations

import re

import django_filters as filters
from django.db.models import CharField, Exists, OuterRef, Q, QuerySet
from django.db.models.functions import Cast

from billing.api.filters import LagoFilterSet, ListFilter
from billing.errors import NotFound
from billing.models import BillingEntity
from billing.money import CURRENCIES
from invoicing.models import Fee, Invoice, InvoiceMetadata
from invoicing.selectors import VISIBLE_STATUSES

_METADATA_PARAM = re.compile(r"^metadata\[(?P<key>[^\]]+)\]$")
_CURRENCY_CHOICES = [(code, code) for code in sorted(CURRENCIES)]


class InvoiceFilter(LagoFilterSet):
    """`GET /invoices` (Lago's `InvoicesQuery`)."""

    external_customer_id = filters.CharFilter(method="filter_external_customer_id")
    customer_external_id = filters.CharFilter(method="filter_external_customer_id")
    amount_from = filters.NumberFilter(field_name="total_amount_cents", lookup_expr="gte")
    amount_to = filters.NumberFilter(field_name="total_amount_cents", lookup_expr="lte")
    issuing_date_from = filters.DateFilter(field_name="issuing_date", lookup_expr="gte")
    issuing_date_to = filters.DateFilter(field_name="issuing_date", lookup_expr="lte")
    statuses = filters.MultipleChoiceFilter(
        field_name="status", choices=[(s, s) for s in VISIBLE_STATUSES]
    )
    status = filters.MultipleChoiceFilter(choices=[(s, s) for s in VISIBLE_STATUSES])
    payment_statuses = filters.MultipleChoiceFilter(
        field_name="payment_status", choices=Invoice.PaymentStatus.choices
    )
    payment_status = filters.MultipleChoiceFilter(choices=Invoice.PaymentStatus.choices)
    payment_overdue = filters.BooleanFilter()
    payment_dispute_lost = filters.BooleanFilter(method="filter_payment_dispute_lost")
    self_billed = filters.BooleanFilter()
    currency = filters.ChoiceFilter(choices=_CURRENCY_CHOICES)
    invoice_type = filters.MultipleChoiceFilter(choices=Invoice.InvoiceType.choices)
    billing_entity_codes = ListFilter(method="filter_billing_entity_codes")
    search_term = filters.CharFilter(method="filter_search_term")

    class Meta:
        model = Invoice
        fields: tuple[str, ...] = ()

    def filter_external_customer_id(self, qs: QuerySet, name: str, value: str) -> QuerySet:
        if not value:
            return qs
        return qs.filter(customer__external_id=value)

    def filter_payment_dispute_lost(self, qs: QuerySet, name: str, value: bool | None) -> QuerySet:
        if value is None:
            return qs
        return qs.filter(payment_dispute_lost_at__isnull=not value)

    def filter_billing_entity_codes(self, qs: QuerySet, name: str, value: list[str]) -> QuerySet:
        if not value:
            return qs
        codes = set(value)
        entities = BillingEntity.objects.for_organization(self.request.auth.organization).filter(
            code__in=codes
        )
        if entities.count() != len(codes):
            raise NotFound("billing_entity")  # Lago: an unknown code is a 404
        return qs.filter(billing_entity__in=entities)

    def filter_search_term(self, qs: QuerySet, name: str, value: str) -> QuerySet:
        if not value:
            return qs
        # Lago's `InvoicesQuery`: number, lago_id, or the customer's names, external id, e-mail
        condition = Q(number__icontains=value) | Q(_lago_id_text__icontains=value)
        for field in ("name", "firstname", "lastname", "external_id", "email"):
            condition |= Q(**{f"customer__{field}__icontains": value})
        return qs.annotate(_lago_id_text=Cast("id", output_field=CharField())).filter(condition)

    def filter_queryset(self, queryset: QuerySet) -> QuerySet:
        queryset = super().filter_queryset(queryset)
        # `metadata[key]=value`: invoices holding every given pair; an empty value: without the key
        for param in self.data:
            match = _METADATA_PARAM.match(param)
            if match is None:
                continue
            pairs = InvoiceMetadata.objects.filter(invoice=OuterRef("pk"), key=match.group("key"))
            value = self.data.get(param)
            if value:
                queryset = queryset.filter(Exists(pairs.filter(value=value)))
            else:
                queryset = queryset.exclude(Exists(pairs))
        return queryset


class FeeFilter(LagoFilterSet):
    """`GET /fees` (Lago's `FeesQuery`)."""

    external_customer_id = filters.CharFilter(field_name="customer__external_id")
    external_subscription_id = filters.CharFilter(field_name="subscription__external_id")
    event_transaction_id = filters.CharFilter(field_name="pay_in_advance_event_transaction_id")
    currency = filters.ChoiceFilter(field_name="amount_currency", choices=_CURRENCY_CHOICES)
    fee_type = filters.ChoiceFilter(choices=Fee.FeeType.choices)
    billable_metric_code = filters.CharFilter(field_name="charge__billable_metric__code")
    payment_status = filters.ChoiceFilter(choices=Fee.PaymentStatus.choices)
    created_at_from = filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_at_to = filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lte")
    succeeded_at_from = filters.IsoDateTimeFilter(field_name="succeeded_at", lookup_expr="gte")
    succeeded_at_to = filters.IsoDateTimeFilter(field_name="succeeded_at", lookup_expr="lte")
    failed_at_from = filters.IsoDateTimeFilter(field_name="failed_at", lookup_expr="gte")
    failed_at_to = filters.IsoDateTimeFilter(field_name="failed_at", lookup_expr="lte")
    refunded_at_from = filters.IsoDateTimeFilter(field_name="refunded_at", lookup_expr="gte")
    refunded_at_to = filters.IsoDateTimeFilter(field_name="refunded_at", lookup_expr="lte")

    class Meta:
        model = Fee
        fields: tuple[str, ...] = ()
