"""Pages for importing and exporting the operator's meter spreadsheet."""

from django.http import Http404


def import_upload(request, *args, **kwargs):
    raise Http404


import_preview = export = import_upload
