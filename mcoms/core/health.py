"""Health of what the platform cannot work without: the database and the broker."""

from __future__ import annotations

from django.db import connection

from mcoms.celery import app


def database_ok() -> dict:
    """Run one trivial query."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any driver error means "down"
        return {"ok": False, "error": str(exc)[:200]}
    return {"ok": True, "vendor": connection.vendor}


def broker_ok(timeout: float = 2.0) -> dict:
    """Open (and close) a connection to the Celery broker."""
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, timeout=timeout)
            transport = conn.transport_cls
    except Exception as exc:  # kombu raises many kinds; all mean "down"
        return {"ok": False, "error": str(exc)[:200]}
    return {"ok": True, "transport": str(transport)}
