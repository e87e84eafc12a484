"""Settings, read from the environment.

Two ways to run (see docs/architecture.md):

* the embedded default — SQLite under ``var/``, a Celery broker on the local
  filesystem, console backends for SMS and payments; needs nothing but Python;
* production (``MCOMS_PROFILE=production``) — every secret and address must come
  from the environment, and the process refuses to start without them.
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("MCOMS_VAR_DIR", BASE_DIR / "var"))


def env(name: str, default: str | None = None) -> str | None:
    """``name`` from the environment, or from the file named by ``<name>_FILE``.

    The file form is for Docker and systemd secrets (``/run/secrets/...``,
    ``$CREDENTIALS_DIRECTORY/...``): the value never sits in the environment or
    in a compose file. A trailing newline is dropped. Setting both is refused, and
    so is a file that cannot be read: a secret silently missing would start the
    site without it.
    """
    value = os.environ.get(name)
    path = os.environ.get(f"{name}_FILE")
    if path:
        if value not in (None, ""):
            raise ImproperlyConfigured(f"Set {name} or {name}_FILE, not both")
        try:
            value = Path(path).read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE={path} cannot be read: {exc}") from exc
    return default if value in (None, "") else value


def env_bool(name: str, default: bool) -> bool:
    value = env(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [part.strip() for part in (env(name, default) or "").split(",") if part.strip()]


PROFILE = env("MCOMS_PROFILE", "development")
PRODUCTION = PROFILE == "production"
if PROFILE not in {"development", "production"}:
    raise ImproperlyConfigured(
        f"MCOMS_PROFILE must be 'development' or 'production', not {PROFILE!r}"
    )

DEBUG = env_bool("DEBUG", not PRODUCTION)

_REQUIRED_IN_PRODUCTION = ("SECRET_KEY", "DATABASE_URL", "CELERY_BROKER_URL", "ALLOWED_HOSTS")
if PRODUCTION:
    missing = [name for name in _REQUIRED_IN_PRODUCTION if not env(name)]
    if missing:
        raise ImproperlyConfigured(
            "The production profile needs these environment variables: " + ", ".join(missing)
        )
    if DEBUG:
        raise ImproperlyConfigured("DEBUG must be off in the production profile")

SECRET_KEY = env("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off")
    SECRET_KEY = "development-only-secret-key-never-used-in-production-0123456789"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "" if PRODUCTION else "127.0.0.1,localhost,testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "template_partials",
    "django_celery_beat",
    "mcoms.core",
    "mcoms.security",
    "notifications",
    "customers",
    "metering",
    "metering.steering",
    "metering.plant",
    "billing",
    "billing.prepaid",
    "billing.payments",
    "billing.collections",
    "fieldops",
    "notifications.selfservice",
    "mcoms.dashboard",
    "mcoms.ops",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "mcoms.security.middleware.TwoFactorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "mcoms.security.middleware.SecurityHeadersMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "mcoms.core.middleware.AuditContextMiddleware",
]

ROOT_URLCONF = "mcoms.urls"
WSGI_APPLICATION = "mcoms.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "mcoms.core.context_processors.navigation",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------
VAR_DIR.mkdir(parents=True, exist_ok=True)
DATABASE_URL = env("DATABASE_URL", f"sqlite:///{VAR_DIR / 'mcoms.sqlite3'}")
# Persistent connections are checked before reuse, so a request after a database restart
# opens a new connection instead of failing on the one the restart cut.
DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL, conn_max_age=0 if DEBUG else 60, conn_health_checks=True
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web, worker, beat and the demo edge agent write at once: WAL lets readers
    # go on while one writes, and the busy timeout queues writers instead of
    # failing with "database is locked".
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "core.User"
AUTHENTICATION_BACKENDS = [
    "mcoms.core.backends.RoleBackend",
    # Customers: phone number and USSD PIN, or a one-time SMS code (the portal's sign-in).
    "notifications.selfservice.portal_auth.PortalBackend",
]
# Django's hashers, and the one of USSD PINs (notifications/selfservice/hashers.py).
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.BCryptSHA256PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
    "notifications.selfservice.hashers.PinScryptHasher",
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en"
TIME_ZONE = "Africa/Kampala"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "mcoms" / "static"]
MEDIA_ROOT = VAR_DIR / "media"
MEDIA_URL = "media/"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}

# --- Email (password reset, staff messages) -------------------------------------
EMAIL_BACKEND = env(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend"
    if PRODUCTION
    else "django.core.mail.backends.console.EmailBackend",
)
EMAIL_HOST = env("EMAIL_HOST", "localhost")
EMAIL_PORT = int(env("EMAIL_PORT", "25"))
EMAIL_HOST_USER = env("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", "mcoms@localhost")

# --- Celery -----------------------------------------------------------------------
_BROKER_DIR = VAR_DIR / "broker"
CELERY_BROKER_URL = env("CELERY_BROKER_URL", "filesystem://localhost/")
# Redis as broker (production): see docs/fault-drills.md.
BROKER_REDIS_OPTIONS = {
    # A task whose worker died unacknowledged comes back after this many seconds.
    # Keep it longer than the longest task and than any countdown/ETA (a waiting ETA
    # task past it is delivered twice); shorter means a lost billing run resumes sooner.
    "visibility_timeout": int(env("BROKER_VISIBILITY_TIMEOUT", "3600")),
    # Bounded waits: with Redis down or hung, a publish gives up within seconds
    # (the outbox keeps the task, mcoms/core/outbox.py) instead of hanging a request.
    "socket_connect_timeout": float(env("BROKER_CONNECT_TIMEOUT", "3")),
    "socket_timeout": float(env("BROKER_SOCKET_TIMEOUT", "10")),
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.5,
    "interval_max": 1,
}
CELERY_BROKER_TRANSPORT_OPTIONS: dict = {}
if CELERY_BROKER_URL.startswith("filesystem://"):
    for sub in ("queue", "processed", "control"):
        (_BROKER_DIR / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_BROKER_DIR / "queue"),
        "data_folder_out": str(_BROKER_DIR / "queue"),
        "processed_folder": str(_BROKER_DIR / "processed"),
        "control_folder": str(_BROKER_DIR / "control"),
        "store_processed": False,
        "polling_interval": 0.5,
    }
elif CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    CELERY_BROKER_TRANSPORT_OPTIONS = BROKER_REDIS_OPTIONS
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A pool process killed mid-task (out of memory): its message goes back to the queue
# instead of being acknowledged as failed. mcoms.core.taskbase stops a task after it has
# lost TASK_WORKER_LOST_LIMIT workers, so one that kills its worker is not run forever.
CELERY_TASK_REJECT_ON_WORKER_LOST = True
TASK_WORKER_LOST_LIMIT = int(env("TASK_WORKER_LOST_LIMIT", "2"))
# A worker whose broker went away keeps trying to reconnect, however long it takes.
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
# The outbox sweep publishes tasks left in the outbox for longer than this (seconds):
# the broker was down when they were asked for, or the process died before publishing.
OUTBOX_SWEEP_AFTER_SECONDS = int(env("OUTBOX_SWEEP_AFTER_SECONDS", "60"))
# Task modules other than <app>.tasks, which autodiscovery finds by itself.
CELERY_IMPORTS = (
    "metering.watch_tasks",
    "metering.partition_tasks",
    "metering.anomaly_tasks",
    "billing.charge_tasks",
    "billing.supply_tasks",
    "notifications.broadcasts",
)
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = "UTC"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# --- Outside systems: backends chosen by setting ------------------------------------
SMS_BACKEND = env("SMS_BACKEND", "notifications.backends.console.ConsoleSMSBackend")
EMAIL_MESSAGE_BACKEND = env(
    "EMAIL_MESSAGE_BACKEND", "notifications.backends.email.DjangoEmailBackend"
)
PAYMENT_BACKEND = env("PAYMENT_BACKEND", "console")
if PAYMENT_BACKEND not in {"console", "live"}:
    raise ImproperlyConfigured(
        f"PAYMENT_BACKEND must be 'console' or 'live', not {PAYMENT_BACKEND!r}"
    )
if PRODUCTION and PAYMENT_BACKEND == "console":
    # The console provider marks every request paid without any money moving.
    raise ImproperlyConfigured(
        "The production profile needs PAYMENT_BACKEND=live: the console backend marks "
        "every payment request paid without money moving"
    )

# --- REST API -------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.BasicAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "mcoms.core.api.Pagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "mcoms.core.api.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "MCOMS API",
    "DESCRIPTION": "Mini-grid customer and operations management: REST API.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI from our own static files, not a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- Security (docs/security.md) ----------------------------------------------------------------
# Headers on every answer, in both profiles (the browser tests run under the same policy).
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# Scripts only from our own static files (htmx included: no inline scripts or handlers);
# inline style attributes are allowed (templates and SVG charts use them).
SECURITY_CONTENT_SECURITY_POLICY = env(
    "SECURITY_CONTENT_SECURITY_POLICY",
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; "
    "worker-src 'self'; manifest-src 'self'; object-src 'none'; base-uri 'self'; "
    "frame-ancestors 'none'",
)
# The field app takes photos (camera) and records where a visit happened (geolocation),
# on our own origin only; nothing else is asked of the browser.
SECURITY_PERMISSIONS_POLICY = env(
    "SECURITY_PERMISSIONS_POLICY",
    "camera=(self), geolocation=(self), microphone=(), payment=(), usb=(), serial=(), "
    "bluetooth=(), midi=(), magnetometer=(), gyroscope=(), accelerometer=(), "
    "display-capture=(), interest-cohort=()",
)
if PRODUCTION:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = int(env("SECURE_HSTS_SECONDS", "31536000"))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True

# Proxies in front of gunicorn that append to X-Forwarded-For (a TLS proxy: 1). The client's
# address, which the per-address limits count, is read that many hops from the right;
# 0 trusts no header and uses the socket's address.
MCOMS_PROXY_COUNT = int(env("MCOMS_PROXY_COUNT", "0"))
# Two-factor sign-in (TOTP) for admins, billing officers and superusers: with this on, such a
# user without an authenticator is sent to enrolment before any page, and HTTP Basic auth on
# the API is refused for them. Whoever has enrolled is always asked for a code.
MCOMS_REQUIRE_2FA = env_bool("MCOMS_REQUIRE_2FA", PRODUCTION)
# Staff sign-in: this many failures for one username within the window lock it for
# LOCK_MINUTES; this many failures from one address (any usernames) lock the address.
LOGIN_FAILURE_WINDOW_MINUTES = int(env("LOGIN_FAILURE_WINDOW_MINUTES", "15"))
LOGIN_FAILURES_PER_USERNAME = int(env("LOGIN_FAILURES_PER_USERNAME", "5"))
LOGIN_FAILURES_PER_ADDRESS = int(env("LOGIN_FAILURES_PER_ADDRESS", "20"))
LOGIN_LOCK_MINUTES = int(env("LOGIN_LOCK_MINUTES", "15"))
# Customer portal: wrong PINs and codes from one address (any phone numbers) within the
# window lock the address's sign-in; codes by SMS asked from one address per hour.
PORTAL_FAILURES_PER_ADDRESS = int(env("PORTAL_FAILURES_PER_ADDRESS", "20"))
PORTAL_CODES_PER_ADDRESS_PER_HOUR = int(env("PORTAL_CODES_PER_ADDRESS_PER_HOUR", "10"))
# USSD: one-time PINs sent by SMS to one account per day (each send costs an SMS).
USSD_ONE_TIME_PINS_PER_DAY = int(env("USSD_ONE_TIME_PINS_PER_DAY", "5"))
# REST API throttles (DRF rates: "<n>/<second|minute|hour|day>"): per signed-in person, per
# edge gateway (a gateway sends a batch every few minutes and heartbeats; a backlog after
# days offline goes up to 50 batches at a time), per address for anonymous requests.
API_THROTTLE_USER = env("API_THROTTLE_USER", "1200/minute")
API_THROTTLE_GATEWAY = env("API_THROTTLE_GATEWAY", "600/minute")
API_THROTTLE_ANON = env("API_THROTTLE_ANON", "60/minute")
REST_FRAMEWORK["DEFAULT_THROTTLE_CLASSES"] = [
    "mcoms.security.throttles.PersonThrottle",
    "mcoms.security.throttles.GatewayThrottle",
    "mcoms.security.throttles.AnonymousThrottle",
]
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] = {
    "user": API_THROTTLE_USER,
    "gateway": API_THROTTLE_GATEWAY,
    "anon": API_THROTTLE_ANON,
}
REST_FRAMEWORK["DEFAULT_AUTHENTICATION_CLASSES"] = [
    "rest_framework.authentication.SessionAuthentication",
    # Basic auth, counted by the staff sign-in lockout; refused to 2FA users when required.
    "mcoms.security.api.LimitedBasicAuthentication",
]
SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"] = [
    "drf_spectacular.hooks.postprocess_schema_enums",
    "mcoms.security.api.document_throttling",
]

# The cache holds the API throttles' counts: it must be shared by every web process.
# Redis when CACHE_URL (or REDIS_URL) is set, as in production; otherwise files under the
# var folder, which every process on the machine shares and which need no server.
CACHE_URL = env("CACHE_URL") or env("REDIS_URL")
if CACHE_URL:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }

# Every setting that holds a secret: each is read from the environment or from the file
# named by <NAME>_FILE, never from the repository (tests/core/test_secrets.py).
SECRET_SETTINGS = (
    "SECRET_KEY",
    "DATABASE_URL",
    "CELERY_BROKER_URL",
    "CACHE_URL",
    "EMAIL_HOST_PASSWORD",
    "AFRICASTALKING_API_KEY",
    "TWILIO_AUTH_TOKEN",
    "NOTIFICATIONS_CALLBACK_SECRET",
    "PAYMENT_CALLBACK_SECRET",
    "MTN_MOMO_SUBSCRIPTION_KEY",
    "MTN_MOMO_API_KEY",
    "AIRTEL_CLIENT_SECRET",
    "PESAPAL_CONSUMER_SECRET",
    "CALIN_PASSWORD",
    "CALIN_POS_PASSWORD",
    "CALIN_POS_VEND_PASSWORD",
    "METRICS_TOKEN",
)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# --- Domain defaults ---------------------------------------------------------------------
MCOMS_DEFAULT_COUNTRY = env("MCOMS_DEFAULT_COUNTRY", "UG")
MCOMS_ACCEPTED_PHONE_REGIONS = ("UG", "KE", "NG")

# --- SMS providers and their delivery reports (notifications) -------------------------------
# SMS_BACKEND (above) picks the default provider; a site may have its own
# (notifications.models.SiteSMSBackend). The base URLs are settings so tests
# can point them at local fake servers.
AFRICASTALKING_USERNAME = env("AFRICASTALKING_USERNAME", "sandbox")
AFRICASTALKING_BASE_URL = env(
    "AFRICASTALKING_BASE_URL",
    "https://api.sandbox.africastalking.com"
    if AFRICASTALKING_USERNAME == "sandbox"
    else "https://api.africastalking.com",
)
AFRICASTALKING_API_KEY = env("AFRICASTALKING_API_KEY", "")
AFRICASTALKING_SENDER_ID = env("AFRICASTALKING_SENDER_ID", "")
TWILIO_BASE_URL = env("TWILIO_BASE_URL", "https://api.twilio.com")
TWILIO_ACCOUNT_SID = env("TWILIO_ACCOUNT_SID", "")
TWILIO_AUTH_TOKEN = env("TWILIO_AUTH_TOKEN", "")
TWILIO_FROM_NUMBER = env("TWILIO_FROM_NUMBER", "")
SMS_PROVIDER_TIMEOUT = float(env("SMS_PROVIDER_TIMEOUT", "10"))
# A message the provider could not take is retried (1 min doubling, at most 30 min)
# for this long after its first failure, then failed for staff to send again.
SMS_RETRY_HOURS = float(env("SMS_RETRY_HOURS", "24"))
# A secret path segment for the providers' callbacks (Africa's Talking signs
# nothing): /notifications/dlr/<secret>/africastalking/. Empty: no segment.
NOTIFICATIONS_CALLBACK_SECRET = env("NOTIFICATIONS_CALLBACK_SECRET", "")
# The public https://host this site is reached at: Twilio is told to send status
# callbacks there, and its signatures are checked against that URL.
NOTIFICATIONS_PUBLIC_URL = env("NOTIFICATIONS_PUBLIC_URL", "")
# The password hasher of customers' USSD PINs (an algorithm of PASSWORD_HASHERS).
USSD_PIN_HASHER = env("USSD_PIN_HASHER", "scrypt_pin")

# --- Payment providers (billing.payments) ---------------------------------------------------
# PAYMENT_BACKEND (above): "console" completes every request locally (development, demo);
# "live" speaks to the providers below. Base URLs are settings so tests point them at
# local fake servers. See docs/payments.md.
PAYMENT_PROVIDER_TIMEOUT = float(env("PAYMENT_PROVIDER_TIMEOUT", "15"))
# Pending requests are polled every few minutes and expire after this many minutes.
PAYMENT_REQUEST_EXPIRY_MINUTES = int(env("PAYMENT_REQUEST_EXPIRY_MINUTES", "30"))
# A secret path segment for the providers' callbacks: /payments/callback/<secret>/mtn/.
PAYMENT_CALLBACK_SECRET = env("PAYMENT_CALLBACK_SECRET", "")
# The public https://host the providers reach us at (callback and return URLs).
PAYMENT_PUBLIC_URL = env("PAYMENT_PUBLIC_URL", "http://127.0.0.1:8000")
# Mobile-money network by the national number's first digits (Uganda); others: the default.
PAYMENT_MTN_PREFIXES = env_list("PAYMENT_MTN_PREFIXES", "77,78,76,39")
PAYMENT_AIRTEL_PREFIXES = env_list("PAYMENT_AIRTEL_PREFIXES", "70,75,74,20")
PAYMENT_DEFAULT_PROVIDER = env("PAYMENT_DEFAULT_PROVIDER", "mtn")
# Fees charged to the customer on top of what reaches their account, shown before they pay
# and on the receipt: "provider:flat:percent" items, e.g. "pesapal:0:3.5". None by default.
PAYMENT_CUSTOMER_FEES = env_list("PAYMENT_CUSTOMER_FEES", "")
MTN_MOMO_BASE_URL = env("MTN_MOMO_BASE_URL", "https://sandbox.momodeveloper.mtn.com")
MTN_MOMO_TARGET_ENVIRONMENT = env("MTN_MOMO_TARGET_ENVIRONMENT", "sandbox")
MTN_MOMO_SUBSCRIPTION_KEY = env("MTN_MOMO_SUBSCRIPTION_KEY", "")
MTN_MOMO_API_USER = env("MTN_MOMO_API_USER", "")
MTN_MOMO_API_KEY = env("MTN_MOMO_API_KEY", "")
AIRTEL_BASE_URL = env("AIRTEL_BASE_URL", "https://openapiuat.airtel.africa")
AIRTEL_CLIENT_ID = env("AIRTEL_CLIENT_ID", "")
AIRTEL_CLIENT_SECRET = env("AIRTEL_CLIENT_SECRET", "")
AIRTEL_COUNTRY = env("AIRTEL_COUNTRY", "UG")
PESAPAL_BASE_URL = env("PESAPAL_BASE_URL", "https://cybqa.pesapal.com/pesapalv3/api")
PESAPAL_CONSUMER_KEY = env("PESAPAL_CONSUMER_KEY", "")
PESAPAL_CONSUMER_SECRET = env("PESAPAL_CONSUMER_SECRET", "")
# The IPN id Pesapal gave for our notification URL; empty: registered on first use.
PESAPAL_IPN_ID = env("PESAPAL_IPN_ID", "")

# --- Calin AMI (metering.steering) ------------------------------------------------------------
# The head-end of the Calin smart meters: relay commands, remote reads, daily kWh, prepaid
# tokens. The base URL is a setting so tests and the demo point it at a local fake server.
CALIN_BASE_URL = env("CALIN_BASE_URL", "https://ami.calinhost.com/api")
CALIN_COMPANY = env("CALIN_COMPANY", "")
CALIN_USER = env("CALIN_USER", "")
CALIN_PASSWORD = env("CALIN_PASSWORD", "")
# The POS (vending) user and its second, vending password.
CALIN_POS_USER = env("CALIN_POS_USER", "")
CALIN_POS_PASSWORD = env("CALIN_POS_PASSWORD", "")
CALIN_POS_VEND_PASSWORD = env("CALIN_POS_VEND_PASSWORD", "")
# Not in Calin's public contract (UNVERIFIED): where the POS purchase history is asked for.
CALIN_POS_HISTORY_PATH = env("CALIN_POS_HISTORY_PATH", "/POS_PurchaseHistory")
CALIN_TIMEOUT = float(env("CALIN_TIMEOUT", "20"))
# Task-and-poll: the first poll after this many seconds, give up after this many.
CALIN_FIRST_POLL_SECONDS = int(env("CALIN_FIRST_POLL_SECONDS", "15"))
CALIN_POLL_SECONDS = int(env("CALIN_POLL_SECONDS", "30"))
CALIN_GIVE_UP_SECONDS = int(env("CALIN_GIVE_UP_SECONDS", "900"))
CALIN_MAX_ATTEMPTS = int(env("CALIN_MAX_ATTEMPTS", "4"))
# A command the head-end has not taken this long after it was due to be sent (Calin
# unreachable): a disconnection expires unsent, a reconnection is escalated to staff
# and keeps trying.
CALIN_SEND_EXPIRES_SECONDS = int(env("CALIN_SEND_EXPIRES_SECONDS", str(4 * 3600)))

# --- Billing runs (docs/billing.md) -----------------------------------------------------------
# Accounts invoiced in one transaction when a run is posted (a lost worker or database loses
# at most one chunk, rolled back). Small values only for the fault drills.
BILLING_POST_CHUNK = int(env("BILLING_POST_CHUNK", "1000"))

# --- Operations (mcoms.ops; docs/operations.md) ---------------------------------------------
# Raw readings older than this many months go to compressed files (one per site and month)
# and their partitions are dropped; rollups, bills and the ledger stay. 0 keeps everything.
READINGS_RETENTION_MONTHS = int(env("READINGS_RETENTION_MONTHS", "24"))
# Where those files and their checksum manifest are written (keep it backed up).
READINGS_ARCHIVE_DIR = Path(env("READINGS_ARCHIVE_DIR", str(VAR_DIR / "archive" / "readings")))
# Prometheus scrapes /metrics with "Authorization: Bearer <METRICS_TOKEN>"; empty: only a
# signed-in admin may read it.
METRICS_TOKEN = env("METRICS_TOKEN", "")
# A failing operations check is told to admins again after this many hours while it lasts.
OPS_ALERT_REPEAT_HOURS = int(env("OPS_ALERT_REPEAT_HOURS", "6"))
