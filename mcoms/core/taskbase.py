"""The base class of every Celery task: a bound on workers lost to one task.

Tasks are ``acks_late``: a message is acknowledged when its task ends, so a worker that
dies mid-task (SIGKILL, out of memory, a machine lost) leaves it to be delivered again —
by Redis after ``visibility_timeout``, or at once when only the pool process died
(``task_reject_on_worker_lost``). A task that itself kills its worker would then come
back forever. So each start and each end of a task (its id and retry number) is counted
in :class:`~mcoms.core.models.TaskDelivery`; a task that has already lost
``TASK_WORKER_LOST_LIMIT`` workers is not run again: it fails with
:class:`WorkerLostLimit` (recorded as a task failure on the operations page).
"""

from __future__ import annotations

import logging

from celery import Task as CeleryTask

log = logging.getLogger(__name__)


class WorkerLostLimit(RuntimeError):
    """The task's worker died mid-task too often; it is not run again."""


class Task(CeleryTask):
    def __call__(self, *args, **kwargs):
        request = self.request
        if request.called_directly:
            return super().__call__(*args, **kwargs)
        # Celery's tracer has pushed the request already: the body runs under it.
        if request.is_eager or not request.id:
            return self.run(*args, **kwargs)
        _started(self.name, request.id, request.retries or 0)
        try:
            return self.run(*args, **kwargs)
        finally:
            _finished(request.id, request.retries or 0)


def _started(name: str, task_id: str, retries: int) -> None:
    from django.conf import settings
    from django.db import DatabaseError, IntegrityError, transaction
    from django.db.models import F

    from mcoms.core import clock
    from mcoms.core.models import TaskDelivery

    at = clock.now()
    rows = TaskDelivery.objects.filter(task_id=task_id, retries=retries)
    try:
        if not rows.update(started=F("started") + 1, last_at=at):
            try:
                with transaction.atomic():
                    TaskDelivery.objects.create(
                        task_id=task_id, retries=retries, task=name[:200], started=1,
                        first_at=at, last_at=at,
                    )
            except IntegrityError:
                rows.update(started=F("started") + 1, last_at=at)
        started, finished = rows.values_list("started", "finished").get()
    except DatabaseError:
        # The database is away: run the task, whose own errors and retries deal with it.
        log.warning("delivery of %s %s not counted", name, task_id, exc_info=True)
        return
    lost = started - finished - 1  # earlier starts that never ended
    if lost >= settings.TASK_WORKER_LOST_LIMIT:
        rows.update(finished=F("finished") + 1)
        raise WorkerLostLimit(
            f"{name} {task_id}: its worker was lost {lost} times mid-task; not run again"
        )


def _finished(task_id: str, retries: int) -> None:
    from django.db import DatabaseError
    from django.db.models import F

    from mcoms.core.models import TaskDelivery

    try:
        TaskDelivery.objects.filter(task_id=task_id, retries=retries).update(
            finished=F("finished") + 1
        )
    except DatabaseError:
        log.warning("end of task %s not counted", task_id, exc_info=True)
