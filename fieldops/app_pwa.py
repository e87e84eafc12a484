"""What makes the field app installable and usable offline: manifest, service worker, icons.

The service worker is served from ``/field/sw.js`` (a view, not a static file) so that its
scope is ``/field/`` and it can name our static files by their hashed URLs. It keeps the
app shell (the field pages' CSS and JS, htmx, the home page, the offline page) and every
field page the agent opened, so forms open without a network; pages are fetched from the
network first and come from the cache only when the network fails. It never touches a
POST: sending forms, and queueing them when the network is gone, is ``fieldapp.js``'s job.

Icons are drawn here (a PNG of a few hundred bytes), so nothing is fetched from elsewhere.
"""

from __future__ import annotations

import functools
import json
import struct
import zlib

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.templatetags.static import static
from django.urls import reverse
from django.views.decorators.cache import cache_control

from fieldops import offline

ICON_SIZES = (192, 512)
THEME = "#0b5cad"
# Bump when the shell changes in a way old caches must not outlive.
SHELL_VERSION = "fieldapp-v1"


def shell_urls() -> list[str]:
    """What the service worker stores at install: enough to open the app with no network."""
    return [
        reverse("fieldops:home"),
        reverse("fieldops:offline"),
        reverse("fieldops:queue"),
        static("mcoms/site.css"),
        static("mcoms/fieldapp.css"),
        static("mcoms/fieldapp.js"),
    ]


@cache_control(no_cache=True)
def service_worker(request: HttpRequest) -> HttpResponse:
    context = {
        "version": SHELL_VERSION,
        "shell": json.dumps(shell_urls()),
        "offline_url": reverse("fieldops:offline"),
        "scope": reverse("fieldops:home"),
    }
    response = render(request, "fieldops/app/sw.js", context, content_type="application/javascript")
    response["Service-Worker-Allowed"] = reverse("fieldops:home")
    return response


@cache_control(max_age=86400)
def manifest(request: HttpRequest) -> JsonResponse:
    home = reverse("fieldops:home")
    data = {
        "name": "MCOMS field app",
        "short_name": "MCOMS Field",
        "start_url": home,
        "scope": home,
        "display": "standalone",
        "background_color": "#ffffff",
        "theme_color": THEME,
        "icons": [
            {
                "src": reverse("fieldops:icon", kwargs={"size": size}),
                "sizes": f"{size}x{size}",
                "type": "image/png",
                "purpose": "any maskable",
            }
            for size in ICON_SIZES
        ],
    }
    return JsonResponse(data, content_type="application/manifest+json")


def _chunk(kind: bytes, data: bytes) -> bytes:
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


@functools.cache
def icon_png(size: int) -> bytes:
    """A square icon: the brand blue with a white lightning-like bar, as a PNG."""
    blue, white = bytes.fromhex(THEME[1:]), b"\xff\xff\xff"
    rows = []
    for y in range(size):
        row = bytearray(b"\x00")  # filter: none
        for x in range(size):
            u, v = x / size, y / size
            # A slanted bolt: two parallelograms meeting in the middle.
            upper = 0.2 <= v < 0.55 and 0.55 - v * 0.5 <= u <= 0.72 - v * 0.5
            lower = 0.45 <= v <= 0.8 and 0.5 - (v - 0.45) * 0.5 <= u <= 0.67 - (v - 0.45) * 0.5
            row += white if upper or lower else blue
        rows.append(bytes(row))
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(b"".join(rows), 9))
        + _chunk(b"IEND", b"")
    )


@cache_control(max_age=604800)
def icon(request: HttpRequest, size: int) -> HttpResponse:
    if size not in ICON_SIZES:
        raise Http404
    return HttpResponse(icon_png(size), content_type="image/png")


@login_required
def offline_page(request: HttpRequest) -> HttpResponse:
    """Shown by the service worker for a page it does not have while the phone is offline."""
    return render(request, "fieldops/app/offline.html")


@login_required
def queue(request: HttpRequest) -> HttpResponse:
    """What waits on this phone (drawn by ``fieldapp.js``) and what the server refused."""
    return render(
        request, "fieldops/app/queue.html", {"refused": offline.needs_attention(request.user)}
    )
