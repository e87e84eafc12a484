"""Running the platform for real: backups, retention, monitoring (top layer: reads every app)."""

from django.apps import AppConfig


class OpsConfig(AppConfig):
    name = "mcoms.ops"
    label = "ops"
    verbose_name = "Operations"

    def ready(self) -> None:
        # Task failures are counted from a table (web and workers are separate processes):
        # each worker writes one row when a task fails. Instrumentation, not business logic.
        from celery.signals import task_failure

        task_failure.connect(_task_failed, weak=False, dispatch_uid="mcoms.ops.task_failure")


def _task_failed(sender=None, task_id=None, exception=None, **kwargs) -> None:
    from mcoms.ops.watch import record_task_failure

    name = getattr(sender, "name", None) or str(sender)
    record_task_failure(task=name, task_id=task_id or "", exception=exception)
