"""Operations' own tables: thresholds, the state of each alert, task failures, SMS credit.

Everything the monitoring shows is derived from the other apps' tables when the page
or ``/metrics`` is asked (several processes serve and work: no in-process counters),
except what no table holds yet:

- ``TaskFailure``: one row per Celery task that failed in a worker (the
  ``task_failure`` signal, see ``mcoms.ops.apps``), pruned after 30 days;
- ``ProviderBalance``: the SMS provider's credit, fetched by a periodic task (a
  scrape of ``/metrics`` never calls a provider);
- ``Threshold``: the limits an admin set on the operations page (defaults in
  ``mcoms.ops.figures.THRESHOLDS``);
- ``OpsAlert``: whether each check is firing, since when, and when staff were last
  told, so a lasting problem is announced once (and again every few hours), not
  every five minutes.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Threshold(models.Model):
    key = models.SlugField(max_length=64, unique=True)
    value = models.DecimalField(max_digits=14, decimal_places=2)
    updated_at = models.DateTimeField()
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["key"]

    def __str__(self) -> str:
        return f"{self.key} = {self.value}"


class OpsAlert(models.Model):
    key = models.SlugField(max_length=64, unique=True)
    firing = models.BooleanField(default=False)
    since = models.DateTimeField(null=True, blank=True)
    value = models.CharField(max_length=100, blank=True)
    message = models.CharField(max_length=300, blank=True)
    notified_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["key"]

    def __str__(self) -> str:
        return f"{self.key} ({'firing' if self.firing else 'ok'})"


class TaskFailure(models.Model):
    task = models.CharField(max_length=200, db_index=True)
    task_id = models.CharField(max_length=64, blank=True)
    exception = models.CharField(max_length=300, blank=True)
    at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-at"]

    def __str__(self) -> str:
        return f"{self.task} failed at {self.at:%Y-%m-%d %H:%M}"


class ProviderBalance(models.Model):
    provider = models.CharField(max_length=40, unique=True)
    amount = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    checked_at = models.DateTimeField()
    error = models.CharField(max_length=300, blank=True, help_text="Why the last check failed")

    def __str__(self) -> str:
        return f"{self.provider}: {self.currency} {self.amount}"
