"""Housekeeping tasks of the core (thin wrappers; the schedule lives in django-celery-beat)."""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from billing.models import IdempotencyRecord
from billing.services import audit_logs_purge


@shared_task
def purge_idempotency_records_task() -> int:
    """Idempotency keys are honoured for 24 h; older records are dropped."""
    cutoff = timezone.now() - timedelta(hours=24)
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=cutoff).delete()
    return deleted


@shared_task
def purge_audit_logs_task() -> int:
    """The activity log and the API log keep their organization's retention days."""
    activities, api_calls = audit_logs_purge(now=timezone.now())
    return activities + api_calls
