"""Pages for importing a gateway's logger history (CSV files or a .zip of them).

The upload is imported at once; the result is kept on disk under a random token and
shown on its own page, so reloading the result never imports twice. Only the person
who uploaded sees the result.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from pathlib import Path

from django import forms
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from mcoms.core import clock
from mcoms.core.roles import Cap
from mcoms.core.selectors import can_on_site, sites_visible_to
from metering import history_import as history
from metering.models import Gateway

MAX_UPLOAD_BYTES = 20 * 1024 * 1024
MAX_UNPACKED_BYTES = 100 * 1024 * 1024
KEEP_RESULTS_SECONDS = 7 * 24 * 3600
TOKEN = re.compile(r"^[A-Za-z0-9_-]{20,64}$")


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """A file field that takes several files at once."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("widget", MultipleFileInput(attrs={"accept": ".csv,.zip"}))
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        one = super().clean
        if isinstance(data, list | tuple):
            return [one(item, initial) for item in data]
        return [one(data, initial)]


class HistoryUploadForm(forms.Form):
    """The files of one history import."""

    files = MultipleFileField(
        label="Logger files",
        help_text="The logger's daily CSV files, or a .zip of its data/ folder; up to 20 MB "
        "in all. Larger histories: use the import_history command.",
    )

    def clean_files(self):
        files = self.cleaned_data["files"]
        if sum(f.size for f in files) > MAX_UPLOAD_BYTES:
            raise forms.ValidationError("The files are larger than 20 MB in all; split them.")
        for f in files:
            if not f.name.lower().endswith((".csv", ".zip")):
                raise forms.ValidationError(f"{f.name}: only .csv files or a .zip can be imported.")
        return files


def _gateway_for(request: HttpRequest, pk: int) -> Gateway:
    """The gateway if it is on one of the person's sites (else 404) and they may edit meters
    there (else 403)."""
    gateways = Gateway.objects.filter(site__in=sites_visible_to(request.user))
    gateway = get_object_or_404(gateways.select_related("site"), pk=pk)
    if not can_on_site(request.user, Cap.METERS_EDIT, gateway.site_id):
        raise PermissionDenied
    return gateway


def _results_dir() -> Path:
    path = Path(settings.VAR_DIR) / "history_imports"
    path.mkdir(parents=True, exist_ok=True)
    cutoff = time.time() - KEEP_RESULTS_SECONDS
    for old in path.glob("*.json"):
        try:
            if old.stat().st_mtime < cutoff:
                old.unlink()
        except OSError:
            continue
    return path


@login_required
def history_import(request: HttpRequest, pk: int) -> HttpResponse:
    """Upload logger files for a gateway and import them."""
    gateway = _gateway_for(request, pk)
    form = HistoryUploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        uploads = form.cleaned_data["files"]
        try:
            sources = []
            for upload in uploads:
                sources.extend(
                    history.sources_from_upload(
                        Path(upload.name).name, upload.read(), max_bytes=MAX_UNPACKED_BYTES
                    )
                )
        except history.HistoryFileError as exc:
            form.add_error("files", str(exc))
        else:
            summary = history.import_sources(
                gateway=gateway, sources=sources, user=request.user, now=clock.now()
            )
            token = secrets.token_urlsafe(24)
            record = {
                "user_id": request.user.pk,
                "gateway_id": gateway.pk,
                "filenames": [Path(u.name).name for u in uploads],
                "imported_at": clock.now().isoformat(),
                "summary": summary.to_dict(),
            }
            (_results_dir() / f"{token}.json").write_text(json.dumps(record))
            return redirect("metering:history_result", pk=gateway.pk, token=token)
    return render(request, "metering/history/upload.html", {"gateway": gateway, "form": form})


@login_required
def history_result(request: HttpRequest, pk: int, token: str) -> HttpResponse:
    """What one import did: counts, reasons, and the rows that were rejected or flagged."""
    gateway = _gateway_for(request, pk)
    if not TOKEN.match(token):
        raise Http404
    try:
        record = json.loads((_results_dir() / f"{token}.json").read_text())
    except (OSError, ValueError) as exc:
        raise Http404 from exc
    if record.get("user_id") != request.user.pk or record.get("gateway_id") != gateway.pk:
        raise Http404
    context = {
        "gateway": gateway,
        "filenames": record.get("filenames", []),
        "imported_at": record.get("imported_at"),
        "summary": history.Summary.from_dict(record["summary"]),
    }
    return render(request, "metering/history/result.html", context)
