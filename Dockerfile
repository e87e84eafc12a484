# One image for web (gunicorn), worker and beat (Celery); docker-compose.yml picks the command.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MCOMS_PROFILE=production \
    MCOMS_VAR_DIR=/app/var

WORKDIR /app

# Dependencies first, so code changes do not reinstall them. psycopg[binary] and the
# other dependencies come as wheels: no compiler or system libraries are needed.
COPY pyproject.toml ./
RUN python -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))' > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt

# The code runs from /app (manage.py, gunicorn and celery import it from the working folder).
COPY . .
RUN useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin mcoms \
    && mkdir -p /app/var \
    && chown -R mcoms:mcoms /app/var

USER mcoms
EXPOSE 8000

CMD ["gunicorn", "mcoms.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3", \
     "--access-logfile", "-", "--forwarded-allow-ips", "*"]
