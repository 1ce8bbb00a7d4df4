"""`/analytics/...`: monthly finance figures (gross revenue, MRR, invoiced usage, invoice
collection, overdue balance) and usage per time bucket, read by `invoicing.analytics`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from billing.api.query_params import QueryParams
from billing.api.views import LagoAPIView
from billing.errors import NotFound
from billing.models import BillingEntity, Organization
from invoicing import analytics

CURRENCY = OpenApiParameter("currency", OpenApiTypes.STR, description="ISO 4217 code")
MONTHS = OpenApiParameter("months", OpenApiTypes.INT, description="keep the last N months")
BILLING_ENTITY_CODE = OpenApiParameter("billing_entity_code", OpenApiTypes.STR)
CUSTOMER = OpenApiParameter("external_customer_id", OpenApiTypes.STR)


def _billing_entity(organization: Organization, code: str | None) -> BillingEntity | None:
    if not code:
        return None
    entity = BillingEntity.objects.filter(organization=organization, code=code).first()
    if entity is None:
        raise NotFound("billing_entity")
    return entity


def analytics_filters(
    request: Request, organization: Organization, *, customer: bool
) -> analytics.Filters:
    """The query's filters, checked: 422 for a malformed one, 404 for an unknown entity."""
    params = QueryParams(request.query_params)
    return analytics.Filters(
        organization=organization,
        today=timezone.now().date(),
        currency=params.currency(),
        months=params.integer("months", minimum=1, maximum=1200),
        billing_entity=_billing_entity(organization, params.text("billing_entity_code")),
        external_customer_id=params.text("external_customer_id") if customer else None,
    )


def _rows_schema(name: str, root: str, fields: dict) -> OpenApiResponse:
    row = inline_serializer(name=f"{name}Row", fields=fields)
    return OpenApiResponse(
        inline_serializer(name=name, fields={root: serializers.ListField(child=row)})
    )


_MONTH = serializers.DateTimeField(help_text="first instant of the month (UTC)")
_AMOUNT = serializers.IntegerField(allow_null=True)
_CURRENCY_FIELD = serializers.CharField(allow_null=True)


class _MonthlyAnalyticsView(LagoAPIView):
    """One monthly figure: the rows of `reader` under `root_key_plural`."""

    permission_resource = "analytic"
    reader: Callable[[analytics.Filters], list[dict]]
    customer_filter = False

    def get(self, request: Request) -> Response:
        filters = analytics_filters(request, self.organization, customer=self.customer_filter)
        return Response({self.root_key_plural: type(self).reader(filters)})


class GrossRevenueView(_MonthlyAnalyticsView):
    """Invoiced totals per issuing month and currency."""

    root_key_plural = "gross_revenues"
    reader = staticmethod(analytics.gross_revenues)
    customer_filter = True

    @extend_schema(
        operation_id="findAllGrossRevenues",
        parameters=[CURRENCY, MONTHS, BILLING_ENTITY_CODE, CUSTOMER],
        responses=_rows_schema("GrossRevenues", "gross_revenues", {
            "month": _MONTH, "amount_cents": _AMOUNT, "currency": _CURRENCY_FIELD,
            "invoices_count": serializers.IntegerField(),
            "billing_entity_id": serializers.UUIDField(allow_null=True),
        }),
    )  # fmt: skip
    def get(self, request: Request) -> Response:
        return super().get(request)


class MrrView(_MonthlyAnalyticsView):
    """Monthly recurring revenue per month and currency."""

    root_key_plural = "mrrs"
    reader = staticmethod(analytics.mrrs)

    @extend_schema(
        operation_id="findAllMrrs",
        parameters=[CURRENCY, MONTHS, BILLING_ENTITY_CODE],
        responses=_rows_schema("Mrrs", "mrrs", {
            "month": _MONTH, "amount_cents": _AMOUNT, "currency": _CURRENCY_FIELD,
        }),
    )  # fmt: skip
    def get(self, request: Request) -> Response:
        return super().get(request)


class InvoicedUsageView(_MonthlyAnalyticsView):
    """Usage charges invoiced per month, billable metric and currency."""

    root_key_plural = "invoiced_usages"
    reader = staticmethod(analytics.invoiced_usages)

    @extend_schema(
        operation_id="findAllInvoicedUsages",
        parameters=[CURRENCY, MONTHS, BILLING_ENTITY_CODE],
        responses=_rows_schema("InvoicedUsages", "invoiced_usages", {
            "month": _MONTH, "code": serializers.CharField(allow_null=True),
            "currency": _CURRENCY_FIELD, "amount_cents": _AMOUNT,
        }),
    )  # fmt: skip
    def get(self, request: Request) -> Response:
        return super().get(request)


class InvoiceCollectionView(_MonthlyAnalyticsView):
    """Finalized invoices per issuing month, payment status and currency."""

    root_key_plural = "invoice_collections"
    reader = staticmethod(analytics.invoice_collections)

    @extend_schema(
        operation_id="findAllInvoiceCollections",
        parameters=[CURRENCY, MONTHS, BILLING_ENTITY_CODE],
        responses=_rows_schema("InvoiceCollections", "invoice_collections", {
            "month": _MONTH, "payment_status": serializers.CharField(allow_null=True),
            "invoices_count": serializers.IntegerField(), "amount_cents": _AMOUNT,
            "currency": _CURRENCY_FIELD,
        }),
    )  # fmt: skip
    def get(self, request: Request) -> Response:
        return super().get(request)


class OverdueBalanceView(_MonthlyAnalyticsView):
    """What overdue invoices still owe, per month of their due date and currency."""

    root_key_plural = "overdue_balances"
    reader = staticmethod(analytics.overdue_balances)
    customer_filter = True

    @extend_schema(
        operation_id="findAllOverdueBalances",
        parameters=[CURRENCY, MONTHS, BILLING_ENTITY_CODE, CUSTOMER],
        responses=_rows_schema("OverdueBalances", "overdue_balances", {
            "month": _MONTH, "amount_cents": _AMOUNT, "currency": _CURRENCY_FIELD,
            "lago_invoice_ids": serializers.ListField(child=serializers.UUIDField()),
            "billing_entity_id": serializers.UUIDField(),
        }),
    )  # fmt: skip
    def get(self, request: Request) -> Response:
        return super().get(request)


class UsageView(LagoAPIView):
    """Usage units and amounts per billable metric and time bucket."""

    permission_resource = "analytic"
    root_key_plural = "usages"

    @extend_schema(
        operation_id="findAllUsages",
        parameters=[
            OpenApiParameter(
                "time_granularity", OpenApiTypes.STR, enum=list(analytics.GRANULARITIES)
            ),
            OpenApiParameter(
                "from_date", OpenApiTypes.DATE,
                description="default: 30 days, 12 weeks or 12 months back (by granularity)",
            ),
            OpenApiParameter("to_date", OpenApiTypes.DATE),
            CURRENCY,
            OpenApiParameter("customer_type", OpenApiTypes.STR, enum=["company", "individual"]),
            CUSTOMER,
            OpenApiParameter("customer_country", OpenApiTypes.STR),
            OpenApiParameter("external_subscription_id", OpenApiTypes.STR),
            OpenApiParameter("plan_code", OpenApiTypes.STR),
            OpenApiParameter("billable_metric_code", OpenApiTypes.STR),
            OpenApiParameter("is_billable_metric_recurring", OpenApiTypes.BOOL),
        ],
        responses=_rows_schema("Usages", "usages", {
            "organization_id": serializers.UUIDField(),
            "start_of_period_dt": serializers.DateField(),
            "end_of_period_dt": serializers.DateField(),
            "amount_currency": serializers.CharField(), "amount_cents": serializers.IntegerField(),
            "billable_metric_code": serializers.CharField(),
            "units": serializers.DecimalField(max_digits=40, decimal_places=15),
            "is_billable_metric_deleted": serializers.BooleanField(),
        }),
    )  # fmt: skip
    def get(self, request: Request) -> Response:
        params = QueryParams(request.query_params)
        granularity = params.choice("time_granularity", analytics.GRANULARITIES, default="daily")
        from_date = params.date("from_date")
        if from_date is None:  # the last 30 days, 12 weeks or 12 months by default
            today = timezone.now().date()
            from_date = {
                "daily": today - timedelta(days=29),
                "weekly": today - timedelta(weeks=11, days=today.weekday()),
                "monthly": analytics.add_months(today.replace(day=1), -11),
            }[granularity]
        filters = analytics.UsageFilters(
            time_granularity=granularity,
            from_date=from_date,
            to_date=params.date("to_date"),
            currency=params.currency(),
            customer_type=params.choice("customer_type", ("company", "individual")),
            external_customer_id=params.text("external_customer_id"),
            customer_country=params.text("customer_country", upper=True),
            external_subscription_id=params.text("external_subscription_id"),
            plan_code=params.text("plan_code"),
            billable_metric_code=params.text("billable_metric_code"),
            is_billable_metric_recurring=params.boolean("is_billable_metric_recurring"),
        )
        return Response({"usages": analytics.usages(self.organization, filters)})
