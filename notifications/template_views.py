"""Staff pages for message templates: the list by event and language, edit and preview.

Staff who may see messages (``Cap.MESSAGES_VIEW``) may browse and preview; only
head-office admins may change wording. A template is saved only when it renders
with the catalogue's sample data.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from mcoms.core import audit
from mcoms.core.models import AuditEvent
from mcoms.core.roles import Cap, Role
from notifications import catalog
from notifications.models import Channel, Language, MessageTemplate
from notifications.segments import segment_info


def _may_view(request: HttpRequest) -> None:
    if not request.user.can(Cap.MESSAGES_VIEW):
        raise PermissionDenied


def may_edit(user) -> bool:
    """Only head-office admins change message wording."""
    return user.is_active and user.role == Role.ADMIN


def _event(key: str, language: str, channel: str) -> catalog.Event:
    event = catalog.event(key)
    if event is None or channel not in event.channels or language not in Language.values:
        raise Http404("No such event, language or channel")
    return event


class TemplateForm(forms.Form):
    """The wording of one template, checked against its event's sample data."""

    subject = forms.CharField(
        required=False,
        max_length=200,
        widget=forms.TextInput(attrs={"style": "width: 100%; box-sizing: border-box"}),
    )
    body = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 5, "style": "width: 100%; box-sizing: border-box"})
    )

    def __init__(self, *args, event: catalog.Event, channel: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.event = event
        self.channel = channel
        self.rendered_subject = ""
        self.rendered_body = ""
        if channel != Channel.EMAIL:
            del self.fields["subject"]

    def clean_subject(self) -> str:
        """An email subject must render with the sample data."""
        text = self.cleaned_data.get("subject", "")
        try:
            self.rendered_subject = catalog.check(text, key=self.event.key)
        except catalog.TemplateInvalid as exc:
            raise forms.ValidationError(str(exc)) from exc
        return text

    def clean_body(self) -> str:
        """The body must render with the sample data."""
        text = self.cleaned_data["body"]
        try:
            self.rendered_body = catalog.check(text, key=self.event.key)
        except catalog.TemplateInvalid as exc:
            raise forms.ValidationError(str(exc)) from exc
        return text


def _preview(channel: str, subject: str, body: str) -> dict:
    info = segment_info(body)
    return {
        "subject": subject,
        "body": body,
        "characters": len(body),
        "segments": info.segments if channel == Channel.SMS else None,
        "encoding": "GSM-7" if info.encoding == "gsm7" else "Unicode (UCS-2)",
        "units": info.units,
    }


@login_required
def template_list(request: HttpRequest) -> HttpResponse:
    """Every catalogued event by language and channel, showing missing translations."""
    _may_view(request)
    existing = {(t.key, t.language, t.channel): t for t in MessageTemplate.objects.all()}
    rows = []
    for event in catalog.EVENTS:
        for channel in event.channels:
            cells = [
                {"language": language, "template": existing.get((event.key, language, channel))}
                for language in Language.values
            ]
            rows.append({"event": event, "channel": channel, "cells": cells})
    missing = sum(1 for row in rows for cell in row["cells"] if cell["template"] is None)
    return render(
        request,
        "notifications/template_list.html",
        {
            "rows": rows,
            "languages": Language.choices,
            "missing": missing,
            "can_edit": may_edit(request.user),
        },
    )


@login_required
def template_preview(request: HttpRequest, key: str, language: str, channel: str) -> HttpResponse:
    """One template rendered with the sample data, with its length and SMS segments."""
    _may_view(request)
    event = _event(key, language, channel)
    template = MessageTemplate.objects.filter(key=key, language=language, channel=channel).first()
    preview = error = None
    if template is not None:
        try:
            preview = _preview(
                channel,
                catalog.check(template.subject, key=key),
                catalog.check(template.body, key=key),
            )
        except catalog.TemplateInvalid as exc:
            error = str(exc)
    return render(
        request,
        "notifications/template_preview.html",
        {
            "event": event,
            "language": language,
            "language_name": Language(language).label,
            "channel": channel,
            "template": template,
            "preview": preview,
            "error": error,
            "can_edit": may_edit(request.user),
        },
    )


@login_required
def template_edit(request: HttpRequest, key: str, language: str, channel: str) -> HttpResponse:
    """Change (or add a missing translation of) one template; head-office admins only.

    "Preview" shows the wording with the sample data without saving; "Save" saves
    it when it renders and records the change in the audit trail.
    """
    _may_view(request)
    if not may_edit(request.user):
        raise PermissionDenied
    event = _event(key, language, channel)
    template = MessageTemplate.objects.filter(key=key, language=language, channel=channel).first()
    preview = None
    if request.method == "POST":
        form = TemplateForm(request.POST, event=event, channel=channel)
        if form.is_valid():
            if "preview" in request.POST:
                preview = _preview(channel, form.rendered_subject, form.rendered_body)
            else:
                _save(template, event, language, channel, form.cleaned_data)
                flash.success(request, f"Saved {event.title} ({Language(language).label}).")
                return redirect(
                    reverse("notifications:template-preview", args=[key, language, channel])
                )
    else:
        default_subject, default_body = event.defaults.get(language, {}).get(channel, ("", ""))
        initial = {
            "subject": template.subject if template else default_subject,
            "body": template.body if template else default_body,
        }
        form = TemplateForm(initial=initial, event=event, channel=channel)
    return render(
        request,
        "notifications/template_edit.html",
        {
            "event": event,
            "language": language,
            "language_name": Language(language).label,
            "channel": channel,
            "template": template,
            "form": form,
            "preview": preview,
            "sample": sorted(event.sample.items()),
        },
    )


def _save(
    template: MessageTemplate | None,
    event: catalog.Event,
    language: str,
    channel: str,
    data: dict,
) -> MessageTemplate:
    if template is None:
        template = MessageTemplate.objects.create(
            key=event.key,
            language=language,
            channel=channel,
            subject=data.get("subject", ""),
            body=data["body"],
            essential=event.essential,
        )
        audit.record(AuditEvent.Action.CREATE, template, after=audit.snapshot(template))
        return template
    fields = ["subject", "body"]
    before = audit.snapshot(template, fields)
    template.subject = data.get("subject", "")
    template.body = data["body"]
    template.save()
    audit.record_changes(template, before)
    return template
