"""The Celery application.

Workers start with `celery -A config worker`; beat with `celery -A config beat`.
Settings come from Django's settings (the CELERY_ namespace).
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")

app = Celery("precis")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
