"""Messaging's public face for personal data: the messages a person was sent, and erasing them.

Part of the messaging core: it knows addresses (phone numbers, emails) and the ``about``
key of the record a message concerns, never a customer. See docs/personal-data.md.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import transaction
from django.db.models import Q, QuerySet

from mcoms.core import privacy
from notifications.models import Message, OptOut


def _messages(*, addresses: Sequence[str], about: str) -> QuerySet[Message]:
    return Message.objects.filter(Q(about=about) | Q(to__in=list(addresses)))


def recipient_data(*, addresses: Sequence[str], about: str) -> dict[str, list[dict]]:
    """Messages sent to these addresses or about this record, and their opt-outs."""
    return {
        "messages_sent": privacy.rows(_messages(addresses=addresses, about=about)),
        "opt_outs": privacy.rows(OptOut.objects.filter(address__in=list(addresses))),
    }


@transaction.atomic
def forget_recipient(*, addresses: Sequence[str], about: str, label: str) -> int:
    """Erase the text and address of the messages sent to these addresses or about this
    record; keep when, which template, status and cost (the SMS bill). Drop the opt-outs.

    ``addresses`` must hold only numbers no one else still uses. Returns messages changed.
    """
    messages = _messages(addresses=addresses, about=about)
    changed = messages.update(to=label[:254], subject="", body=privacy.REMOVED, error="")
    OptOut.objects.filter(address__in=list(addresses)).delete()
    return changed
