"""Analytics routes (`/analytics/...`), as Lago names them."""

from django.urls import path

from invoicing.api import analytics_views as views

urlpatterns = [
    path("analytics/gross_revenue", views.GrossRevenueView.as_view(),
         name="analytics-gross-revenue"),
    path("analytics/mrr", views.MrrView.as_view(), name="analytics-mrr"),
    path("analytics/invoiced_usage", views.InvoicedUsageView.as_view(),
         name="analytics-invoiced-usage"),
    path("analytics/invoice_collection", views.InvoiceCollectionView.as_view(),
         name="analytics-invoice-collection"),
    path("analytics/overdue_balance", views.OverdueBalanceView.as_view(),
         name="analytics-overdue-balance"),
    path("analytics/usage", views.UsageView.as_view(), name="analytics-usage"),
]  # fmt: skip
