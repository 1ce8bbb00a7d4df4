"""Query filters of GET /credit_notes, named as Lago's params (`CreditNotesQuery`)."""

from __future__ import annotations

import django_filters as filters
from django.db.models import CharField, Q, QuerySet
from django.db.models.functions import Cast

from billing.api.filters import LagoFilterSet, ListFilter
from billing.errors import NotFound
from billing.models import BillingEntity
from billing.money import CURRENCIES
from invoicing.models import CreditNote

_CURRENCY_CHOICES = [(code, code) for code in sorted(CURRENCIES)]


class CreditNoteFilter(LagoFilterSet):
    """`GET /credit_notes` and `GET /customers/{id}/credit_notes`."""

    external_customer_id = filters.CharFilter(field_name="customer__external_id")
    issuing_date_from = filters.DateFilter(field_name="issuing_date", lookup_expr="gte")
    issuing_date_to = filters.DateFilter(field_name="issuing_date", lookup_expr="lte")
    amount_from = filters.NumberFilter(field_name="total_amount_cents", lookup_expr="gte")
    amount_to = filters.NumberFilter(field_name="total_amount_cents", lookup_expr="lte")
    currency = filters.ChoiceFilter(choices=_CURRENCY_CHOICES)
    reason = filters.MultipleChoiceFilter(choices=CreditNote.Reason.choices)
    credit_status = filters.MultipleChoiceFilter(choices=CreditNote.CreditStatus.choices)
    refund_status = filters.MultipleChoiceFilter(choices=CreditNote.RefundStatus.choices)
    invoice_number = filters.CharFilter(field_name="invoice__number")
    self_billed = filters.BooleanFilter(field_name="invoice__self_billed")
    billing_entity_codes = ListFilter(method="filter_billing_entity_codes")
    search_term = filters.CharFilter(method="filter_search_term")

    class Meta:
        model = CreditNote
        fields: tuple[str, ...] = ()

    def filter_billing_entity_codes(self, qs: QuerySet, name: str, value: list[str]) -> QuerySet:
        if not value:
            return qs
        codes = set(value)
        entities = BillingEntity.objects.for_organization(self.request.auth.organization).filter(
            code__in=codes
        )
        if entities.count() != len(codes):
            raise NotFound("billing_entity")  # Lago: an unknown code is a 404
        return qs.filter(invoice__billing_entity__in=entities)

    def filter_search_term(self, qs: QuerySet, name: str, value: str) -> QuerySet:
        if not value:
            return qs
        # Lago: the number, the lago_id, or the customer's names, external id, e-mail
        condition = Q(number__icontains=value) | Q(_lago_id_text__icontains=value)
        for field in ("name", "firstname", "lastname", "external_id", "email"):
            condition |= Q(**{f"customer__{field}__icontains": value})
        return qs.annotate(_lago_id_text=Cast("id", output_field=CharField())).filter(condition)
