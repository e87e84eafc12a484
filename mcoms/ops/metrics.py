"""``/metrics``: the operations figures in Prometheus' text exposition format (0.0.4).

Protected: a scraper sends ``Authorization: Bearer <METRICS_TOKEN>``; a signed-in
admin may look in a browser. Without a token set, only the admin's session works.
Every figure comes from :func:`mcoms.ops.figures.collect` (the database and the
broker), so any web process answers the same.
"""

from __future__ import annotations

import hmac
import math

from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from mcoms.core.roles import Role
from mcoms.ops import figures

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(int(value)) if float(value).is_integer() and abs(value) < 2**53 else repr(value)


def render(report: figures.Report) -> str:
    lines = []
    for metric in report.metrics:
        lines.append(f"# HELP {metric.name} {metric.help.replace(chr(10), ' ')}")
        lines.append(f"# TYPE {metric.name} {metric.type}")
        for labels, value in metric.samples:
            text = ",".join(f'{k}="{_escape_label(str(v))}"' for k, v in labels.items())
            lines.append(
                f"{metric.name}{{{text}}} {_number(value)}"
                if text
                else f"{metric.name} {_number(value)}"
            )
    return "\n".join(lines) + "\n"


def is_admin(user) -> bool:
    return bool(user.is_authenticated and user.is_active and user.role == Role.ADMIN)


def authorised(request: HttpRequest) -> bool:
    token = figures.configured_token()
    header = request.headers.get("Authorization", "")
    if token and header.startswith("Bearer "):
        return hmac.compare_digest(header[7:].strip().encode(), token.encode())
    return is_admin(request.user)


@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    if not authorised(request):
        response = HttpResponse(
            "metrics need a bearer token or an admin's session\n",
            status=401,
            content_type="text/plain",
        )
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(render(figures.collect()), content_type=CONTENT_TYPE)
