"""Every provider callback answers only on its secret path when a secret is set.

The callbacks are found in the URL map (views exempt from CSRF that are not REST API
views), so a callback added later without a secret form fails here.
"""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

SECRET = "s3cret-path-segment-for-tests"
SETTING_BY_PREFIX = {
    "notifications/": "NOTIFICATIONS_CALLBACK_SECRET",
    "ussd/": "NOTIFICATIONS_CALLBACK_SECRET",
    "sms/": "NOTIFICATIONS_CALLBACK_SECRET",
    "payments/": "PAYMENT_CALLBACK_SECRET",
}
FILL = {"method": "mtn"}


def _walk(patterns, prefix=""):
    for entry in patterns:
        if isinstance(entry, URLResolver):
            yield from _walk(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern), entry.callback


def callback_routes() -> dict[str, tuple[str, str]]:
    """{plain route: (secret route, setting)} for every provider callback."""
    routes = [
        (route, view)
        for route, view in _walk(get_resolver().url_patterns)
        if getattr(view, "csrf_exempt", False) and not hasattr(view, "cls")
    ]
    plain = [r for r, _ in routes if "<str:secret>" not in r]
    found = {}
    for route in plain:
        setting = next(v for p, v in SETTING_BY_PREFIX.items() if route.startswith(p))
        # The secret form puts <str:secret> before the last segment.
        parts = route.rstrip("/").split("/")
        secret_route = "/".join([*parts[:-1], "<str:secret>", parts[-1]]) + "/"
        found[route] = (secret_route, setting)
    return found, {r for r, _ in routes if "<str:secret>" in r}


def url(route: str, secret: str | None = None) -> str:
    path = route.replace("<str:secret>", secret or "")
    for name, value in FILL.items():
        path = path.replace(f"<str:{name}>", value)
    return "/" + path


def test_the_callbacks_are_all_found_and_each_has_a_secret_form():
    plain, secret_forms = callback_routes()
    assert set(plain) >= {
        "notifications/dlr/africastalking/",
        "notifications/dlr/twilio/",
        "ussd/africastalking/",
        "sms/africastalking/",
        "sms/twilio/",
        "payments/callback/<str:method>/",
    }
    assert {secret for secret, _ in plain.values()} == secret_forms


PLAIN, _ = callback_routes()


def answer(client: Client, path: str) -> tuple[int, bytes]:
    response = client.post(path)
    return response.status_code, response.content


@pytest.mark.parametrize("route", sorted(PLAIN))
def test_with_a_secret_only_the_secret_path_answers(route, settings, db):
    """The secret path gives exactly the view's own answer (to an empty post), every other
    path the site's plain 404."""
    secret_route, setting = PLAIN[route]
    client = Client()
    setattr(settings, setting, "")
    own = answer(client, url(route))
    not_found = answer(client, url(secret_route, "anything"))
    assert not_found[0] == 404 and own != not_found
    setattr(settings, setting, SECRET)
    assert answer(client, url(route)) == not_found
    assert answer(client, url(secret_route, "wrong-" + SECRET)) == not_found
    assert answer(client, url(secret_route, SECRET)) == own
