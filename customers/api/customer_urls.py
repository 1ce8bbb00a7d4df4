from django.urls import path

from customers.api.customer_views import (
    AppliedCouponViewSet,
    CustomerAppliedCouponViewSet,
    CustomerViewSet,
)

urlpatterns = [
    path(
        "customers",
        CustomerViewSet.as_view({"get": "list", "post": "create"}),
        name="customer-list",
    ),
    path(
        "customers/<str:external_customer_id>",
        CustomerViewSet.as_view({"get": "retrieve", "delete": "destroy"}),
        name="customer-detail",
    ),
    path(
        "customers/<str:external_customer_id>/applied_coupons",
        CustomerAppliedCouponViewSet.as_view({"get": "list"}),
        name="customer-applied-coupon-list",
    ),
    path(
        "customers/<str:external_customer_id>/applied_coupons/<str:applied_coupon_id>",
        CustomerAppliedCouponViewSet.as_view({"delete": "destroy"}),
        name="customer-applied-coupon-detail",
    ),
    path(
        "applied_coupons",
        AppliedCouponViewSet.as_view({"get": "list", "post": "create"}),
        name="applied-coupon-list",
    ),
]
