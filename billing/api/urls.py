"""Routes of the kernel's own API: the activity log and the API log."""

from django.urls import path

from billing.api.audit import ActivityLogViewSet, ApiLogViewSet

urlpatterns = [
    path("activity_logs", ActivityLogViewSet.as_view({"get": "list"}), name="activity-log-list"),
    path(
        "activity_logs/<str:activity_id>",
        ActivityLogViewSet.as_view({"get": "retrieve"}),
        name="activity-log-detail",
    ),
    path("api_logs", ApiLogViewSet.as_view({"get": "list"}), name="api-log-list"),
    path(
        "api_logs/<str:request_id>",
        ApiLogViewSet.as_view({"get": "retrieve"}),
        name="api-log-detail",
    ),
]
