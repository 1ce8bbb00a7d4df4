"""OpenAPI parameters several apps' endpoints share (names as Lago's routes and queries)."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter

# `/customers/{external_customer_id}/...`
EXTERNAL_CUSTOMER_ID = OpenApiParameter(
    "external_customer_id", OpenApiTypes.STR, OpenApiParameter.PATH
)
# the subscription a customer's usage is read for (current, projected and past usage)
EXTERNAL_SUBSCRIPTION_ID = OpenApiParameter(
    "external_subscription_id", OpenApiTypes.STR, required=True
)
