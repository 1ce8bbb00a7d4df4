"""Event routes (spec §5): first of the API's routes (billing/urls.py), as ingestion is the
hottest path: a request resolves without trying every other app's patterns."""

from django.urls import path

from metering.api.views import EventViewSet

urlpatterns = [
    path("events", EventViewSet.as_view({"get": "list", "post": "create"}), name="event-list"),
    path("events/batch", EventViewSet.as_view({"post": "batch"}), name="event-batch"),
    path(
        "events/estimate_fees",
        EventViewSet.as_view({"post": "estimate_fees"}),
        name="event-estimate-fees",
    ),
    path(
        "events/estimate_instant_fees",
        EventViewSet.as_view({"post": "estimate_instant_fees"}),
        name="event-estimate-instant-fees",
    ),
    path(
        "events/batch_estimate_instant_fees",
        EventViewSet.as_view({"post": "batch_estimate_instant_fees"}),
        name="event-batch-estimate-instant-fees",
    ),
    path(
        "events/<str:transaction_id>",
        EventViewSet.as_view({"get": "retrieve"}),
        name="event-detail",
    ),
]
