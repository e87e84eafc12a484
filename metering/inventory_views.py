"""Pages for importing and exporting the operator's meter spreadsheet.

An upload is kept on disk under a random token (with its original name and the
uploader's id) until it is confirmed, so the preview and the confirmation read
exactly the same bytes; only the uploader may see or confirm it.
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
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone

from mcoms.core.permissions import require
from mcoms.core.roles import Cap
from metering import inventory
from metering.selectors import meters_visible_to

MAX_UPLOAD_BYTES = 5 * 1024 * 1024
KEEP_UPLOADS_SECONDS = 24 * 3600
TOKEN = re.compile(r"^[A-Za-z0-9_-]{20,64}$")
CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


class UploadForm(forms.Form):
    """The one file field of the import page."""

    file = forms.FileField(
        label="Meter spreadsheet",
        help_text="CSV or Excel (.xlsx), up to 5 MB, with the columns of the meter inventory "
        "sheet. Nothing is saved until you confirm the preview.",
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,.xlsx"}),
    )


def _upload_dir() -> Path:
    path = Path(settings.VAR_DIR) / "imports"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _forget_stale_uploads(folder: Path) -> None:
    # Previews that were never confirmed should not pile up on the server.
    cutoff = time.time() - KEEP_UPLOADS_SECONDS
    for path in folder.iterdir():
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
        except OSError:
            continue


def _load_upload(request: HttpRequest, token: str) -> tuple[bytes, dict, Path]:
    if not TOKEN.match(token):
        raise Http404
    folder = _upload_dir()
    data_path, meta_path = folder / token, folder / f"{token}.json"
    try:
        meta = json.loads(meta_path.read_text())
        data = data_path.read_bytes()
    except (OSError, ValueError) as exc:
        raise Http404 from exc
    # Someone else's upload is answered as if it did not exist.
    if meta.get("user_id") != request.user.pk:
        raise Http404
    return data, meta, data_path


@login_required
def import_upload(request: HttpRequest) -> HttpResponse:
    """Upload a sheet; it is read once here so an unreadable file is refused at once."""
    require(request.user, Cap.METERS_IMPORT)
    form = UploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        if upload.size > MAX_UPLOAD_BYTES:
            form.add_error("file", "The file is larger than 5 MB; split it into smaller sheets.")
        else:
            data = upload.read()
            try:
                inventory.read_table(data, upload.name)
            except inventory.ImportFileError as exc:
                form.add_error("file", str(exc))
            else:
                folder = _upload_dir()
                _forget_stale_uploads(folder)
                token = secrets.token_urlsafe(24)
                (folder / token).write_bytes(data)
                meta = {
                    "filename": Path(upload.name).name,
                    "user_id": request.user.pk,
                    "uploaded_at": timezone.now().isoformat(),
                }
                (folder / f"{token}.json").write_text(json.dumps(meta))
                return redirect("metering:import_preview", token=token)
    return render(request, "metering/import_upload.html", {"form": form})


@login_required
def import_preview(request: HttpRequest, token: str) -> HttpResponse:
    """GET: what the upload would do, row by row. POST: apply it and show the result."""
    require(request.user, Cap.METERS_IMPORT)
    data, meta, data_path = _load_upload(request, token)
    filename = meta.get("filename", "upload")
    if request.method == "POST":
        try:
            result = inventory.apply_file(data, filename, request.user)
        except inventory.ImportFileError as exc:
            return render(
                request,
                "metering/import_preview.html",
                {"error": str(exc), "filename": filename, "token": token},
            )
        data_path.unlink(missing_ok=True)
        data_path.with_name(f"{token}.json").unlink(missing_ok=True)
        return render(
            request, "metering/import_result.html", {"result": result, "filename": filename}
        )
    try:
        preview = inventory.preview_file(data, filename, request.user)
    except inventory.ImportFileError as exc:
        preview, error = None, str(exc)
    else:
        error = ""
    context = {
        "preview": preview,
        "error": error,
        "filename": filename,
        "token": token,
        "actionable": preview is not None
        and any(row.action in (inventory.CREATE, inventory.UPDATE) for row in preview.rows),
    }
    return render(request, "metering/import_preview.html", context)


@login_required
def export(request: HttpRequest, fmt: str) -> HttpResponse:
    """The meters the person may see, as the operator's sheet; ``?site=<id>`` narrows it."""
    if fmt not in CONTENT_TYPES:
        raise Http404
    require(request.user, Cap.METERS_VIEW)
    meters = meters_visible_to(request.user)
    site = request.GET.get("site", "")
    if site.isdigit():
        meters = meters.filter(site_id=int(site))
    body = inventory.export_table(meters, fmt)
    response = HttpResponse(body, content_type=CONTENT_TYPES[fmt])
    stamp = timezone.localdate().isoformat()
    response["Content-Disposition"] = f'attachment; filename="meters-{stamp}.{fmt}"'
    return response
