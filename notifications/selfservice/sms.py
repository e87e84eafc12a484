"""Commands customers send by SMS: balance, usage, last bill, help.

The first known word of the message is the command, in any of the three
languages (see ``COMMANDS``; case and punctuation do not matter). A Swahili or
Luganda word is answered in that language; an English word in the customer's
own language. The reply goes out as an SMS through the messaging core.

Balance, usage and bills need no PIN by SMS: the reply goes only to the number
that asked, which must be one on the account, so the SIM in the customer's hand
is the factor. A number on no account gets help text and never account data.
Each provider message is handled once, however often the provider repeats it.
"""

from __future__ import annotations

import datetime as dt
import logging
import re

from django.db import IntegrityError, transaction

from customers.models import Customer
from mcoms.core import clock
from notifications.selfservice import account, messages
from notifications.selfservice.models import InboundSms
from notifications.selfservice.ussd import customers_for, normalised

log = logging.getLogger(__name__)

BALANCE, USAGE, BILL, HELP = "balance", "usage", "bill", "help"

# word → (command, language it is a word of; "" for English, answered in the customer's)
COMMANDS: dict[str, tuple[str, str]] = {
    "BAL": (BALANCE, ""),
    "BALANCE": (BALANCE, ""),
    "USE": (USAGE, ""),
    "USAGE": (USAGE, ""),
    "BILL": (BILL, ""),
    "HELP": (HELP, ""),
    "SALIO": (BALANCE, "sw"),
    "MATUMIZI": (USAGE, "sw"),
    "BILI": (BILL, "sw"),
    "MSAADA": (HELP, "sw"),
    "BBALANSI": (BALANCE, "lg"),
    "BALANSI": (BALANCE, "lg"),
    "ENKOZESA": (USAGE, "lg"),
    "BBIIRU": (BILL, "lg"),
    "BIIRU": (BILL, "lg"),
    "OBUYAMBI": (HELP, "lg"),
    "YAMBA": (HELP, "lg"),
}
MAX_ACCOUNTS = 5
_WORD = re.compile(r"[A-Za-z]+")


def parse(text: str) -> tuple[str, str]:
    """``(command, language)`` of a message; help in English when no command is found.

    The command is the first of the message's first three words that is one, so a
    keyword a shared short code needs in front ("MCOMS BAL") does not get in the way.
    """
    for word in _WORD.findall(text or "")[:3]:
        found = COMMANDS.get(word.upper())
        if found:
            return found
    return HELP, ""


def handle(
    *,
    provider: str,
    provider_id: str,
    sender: str,
    to: str = "",
    text: str = "",
    now: dt.datetime | None = None,
) -> InboundSms | None:
    """Answer one inbound SMS; returns its record, or None if it was handled before."""
    at = clock.resolve(now)
    phone = normalised(sender)
    command, language = parse(text)
    customers = customers_for(phone)[:MAX_ACCOUNTS]
    try:
        with transaction.atomic():
            inbound = InboundSms.objects.create(
                provider=provider,
                provider_id=provider_id[:100],
                sender=phone,
                to=to[:32],
                text=text[:1000],
                command=command,
                language=language,
                customers=len(customers),
                received_at=at,
            )
            reply(phone, customers, command, language, at)
    except IntegrityError:
        log.info("%s message %s already answered", provider, provider_id)
        return None
    return inbound


def reply(phone: str, customers: list[Customer], command: str, language: str, now) -> None:
    """Send the answer to ``command``: one SMS per account on the number, or help."""
    if not customers:
        messages.send(None, messages.HELP_UNKNOWN, {}, to=phone, language=language or "en")
        return
    if command == HELP:
        first = customers[0]
        messages.send(first, messages.HELP, {}, to=phone, language=language or first.language)
        return
    for customer in customers:
        lang = language or customer.language
        if command == BALANCE:
            key, sentence = messages.BALANCE, account.balance_text(customer, lang)
        elif command == BILL:
            key, sentence = messages.BILL, account.last_bill_text(customer, lang)
        else:
            key, sentence = messages.USAGE, account.usage_sms_text(customer, lang, now)
        context = {"reply": sentence, "account": customer.account_number}
        messages.send(customer, key, context, to=phone, language=lang, now=now)
