"""Catalog Celery tasks: thin wrappers around services (the schedule lives in beat)."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from billing.actors import SYSTEM
from plans.services.coupons import coupon_terminate_expired


@shared_task
def terminate_expired_coupons_task() -> int:
    """spec §27, hourly at :30: time-limited coupons past `expiration_at` are terminated."""
    return len(coupon_terminate_expired(actor=SYSTEM, now=timezone.now()))
