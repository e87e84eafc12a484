"""MCOMS: the mini-grid customer and operations management system (project wiring)."""

from mcoms.celery import app as celery_app

__all__ = ["celery_app"]
