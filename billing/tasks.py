"""Housekeeping tasks of the core (thin wrappers; the schedule lives in django-celery-beat)."""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from billing.models import ApiRequestLog, IdempotencyRecord

API_LOG_RETENTION = timedelta(days=30)


@shared_task
def purge_idempotency_records_task() -> int:
    """Idempotency keys are honoured for 24 h; older records are dropped."""
    cutoff = timezone.now() - timedelta(hours=24)
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=cutoff).delete()
    return deleted


@shared_task
def purge_api_request_logs_task() -> int:
    """The API request log keeps 30 days."""
    deleted, _ = ApiRequestLog.objects.filter(
        created_at__lt=timezone.now() - API_LOG_RETENTION
    ).delete()
    return deleted
