"""Celery application. Without CELERY_BROKER_URL, tasks run eagerly in-process."""

import os

from celery import Celery
from celery.signals import setup_logging, task_postrun, task_prerun

from billing.logs import bind_task_id, keep_django_logging, unbind_task_id

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "billing.settings")

app = Celery("billing")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Every line logged inside a task carries its id; worker and beat log through settings.LOGGING.
task_prerun.connect(bind_task_id, weak=False, dispatch_uid="billing_bind_task_id")
task_postrun.connect(unbind_task_id, weak=False, dispatch_uid="billing_unbind_task_id")
setup_logging.connect(keep_django_logging, weak=False, dispatch_uid="billing_keep_logging")
