"""WSGI entry point (gunicorn mcoms.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mcoms.settings")
application = get_wsgi_application()
