"""`/customers/{external_customer_id}/past_usage`: usage of invoiced periods, read
back from the charge fees of finalized invoices."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from billing.api.pagination import LagoPagination, positive_int
from billing.api.parameters import EXTERNAL_CUSTOMER_ID, EXTERNAL_SUBSCRIPTION_ID
from billing.api.views import LagoAPIView
from billing.errors import Invalid
from customers.selectors import customer_get
from invoicing.selectors import customer_past_usage


class PastUsageView(LagoAPIView):
    """Usage of invoiced periods, newest first."""

    # the usage endpoints share one permission and one rate-limit bucket (§1.4)
    permission_resource = "customer_usage"
    rate_limit_bucket = "usage"
    root_key_plural = "usage_periods"

    @extend_schema(
        parameters=[
            EXTERNAL_CUSTOMER_ID,
            EXTERNAL_SUBSCRIPTION_ID,
            OpenApiParameter("periods_count", OpenApiTypes.INT),
            OpenApiParameter("billable_metric_code", OpenApiTypes.STR),
            OpenApiParameter("page", OpenApiTypes.INT),
            OpenApiParameter("per_page", OpenApiTypes.INT),
        ],
        responses=OpenApiResponse(
            OpenApiTypes.OBJECT, description="`{usage_periods: [...], meta: {...}}`"
        ),
    )
    def get(self, request: Request, external_customer_id: str) -> Response:
        customer = customer_get(organization=self.organization, external_id=external_customer_id)
        params = request.query_params
        external_subscription_id = params.get("external_subscription_id")
        if not external_subscription_id:
            raise Invalid({"external_subscription_id": ["value_is_mandatory"]})
        periods = customer_past_usage(
            customer=customer,
            external_subscription_id=external_subscription_id,
            periods_count=(
                positive_int(params.get("periods_count"), "periods_count", 0)
                if params.get("periods_count")
                else None
            ),
            billable_metric_code=params.get("billable_metric_code") or None,
        )
        paginator = LagoPagination()
        page = paginator.paginate_queryset(periods, request, view=self)
        return paginator.get_paginated_response(page)
