"""Health of what the platform cannot work without: the database and the broker."""

from __future__ import annotations

from django.db import connection as default_connection

from mcoms.celery import app


def database_ok(connection=None) -> dict:
    """Run one trivial query on ``connection`` (the default database unless given)."""
    connection = connection or default_connection
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any driver error means "down"
        return {"ok": False, "error": str(exc)[:200]}
    return {"ok": True, "vendor": connection.vendor}


def broker_ok(url: str | None = None, timeout: float = 2.0) -> dict:
    """Open (and close) a connection to the Celery broker (or the broker at ``url``)."""
    try:
        with app.connection_for_write(url) as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, timeout=timeout)
            transport = conn.transport_cls
    except Exception as exc:  # kombu raises many kinds; all mean "down"
        return {"ok": False, "error": str(exc)[:200]}
    return {"ok": True, "transport": str(transport)}
