"""The SMS self-service sends: its template keys, their default wording, and sending.

The wording lives in message templates like every other event's, so staff can
edit it (Messages → templates). :func:`install_templates` adds the defaults
that are missing; :func:`send` installs them on first need, so a deployment
that never ran it still answers. Every one of these is essential: a reply the
customer asked for, a PIN, or a security warning goes despite opt-out and
quiet hours.

The command replies pass the finished sentence (``reply``, in the customer's
language, see :mod:`notifications.selfservice.account`) and the account number,
so a template can wrap or reword around them.
"""

from __future__ import annotations

import datetime as dt

from django.db import transaction

from customers.models import Customer
from notifications import services as messaging
from notifications.models import Channel, MessageTemplate

PIN_LOCKED = "selfservice_pin_locked"
ONE_TIME_PIN = "selfservice_one_time_pin"
BALANCE = "selfservice_balance"
BILL = "selfservice_bill"
USAGE = "selfservice_usage"
PAYMENT_FAILED = "selfservice_payment_failed"
HELP = "selfservice_help"
HELP_UNKNOWN = "selfservice_help_unknown"

DEFAULTS: dict[str, dict[str, str]] = {
    PIN_LOCKED: {
        "en": "{{ name }}, a wrong USSD PIN was entered 3 times on your account. USSD is "
        "locked until {{ time }}. If it was not you, call your agent.",
        "sw": "{{ name }}, PIN ya USSD isiyo sahihi imewekwa mara 3 kwenye akaunti yako. "
        "USSD imefungwa hadi {{ time }}. Kama si wewe, mpigie wakala wako.",
        "lg": "{{ name }}, PIN ya USSD enkyamu eyingiziddwa emirundi 3 ku akawunti yo. USSD "
        "esibiddwa okutuusa {{ time }}. Bw'oba si ggwe, kubira omukozi wo.",
    },
    ONE_TIME_PIN: {
        "en": "Your one-time USSD PIN is {{ pin }}. Enter it in the menu, then choose your "
        "own PIN. Never share it.",
        "sw": "PIN yako ya mara moja ya USSD ni {{ pin }}. Iweke kwenye menyu, kisha chagua "
        "PIN yako. Usimpe mtu.",
        "lg": "PIN yo ey'omulundi gumu eya USSD ye {{ pin }}. Giyingize mu menyu, olwo "
        "olonde PIN yo. Togiwa muntu.",
    },
    PAYMENT_FAILED: {
        "en": "{{ name }}, your mobile money payment of {{ currency }} {{ amount }} could not "
        "start. Please try again later or pay at the site office.",
        "sw": "{{ name }}, malipo yako ya {{ currency }} {{ amount }} kwa pesa ya simu "
        "hayakuweza kuanza. Jaribu tena baadaye au lipa ofisini.",
        "lg": "{{ name }}, okusasula kwo okwa {{ currency }} {{ amount }} ku mobile money "
        "tekusobodde kutandika. Ddamu oluvannyuma oba sasulira ku ofiisi.",
    },
    BALANCE: {lang: "{{ reply }}" for lang in ("en", "sw", "lg")},
    BILL: {lang: "{{ reply }}" for lang in ("en", "sw", "lg")},
    USAGE: {lang: "{{ reply }}" for lang in ("en", "sw", "lg")},
    HELP: {
        "en": "Send BAL for your balance, USE for your usage, BILL for your last bill. "
        "Dial the USSD menu to pay or report a fault.",
        "sw": "Tuma SALIO kupata salio, MATUMIZI kwa matumizi, BILI kwa bili ya mwisho. "
        "Piga menyu ya USSD kulipa au kuripoti hitilafu.",
        "lg": "Weereza BBALANSI okumanya bbalansi, ENKOZESA ku nkozesa, BBIIRU ku bbiiru "
        "esembayo. Kozesa menyu ya USSD okusasula oba okuloopa obuzibu.",
    },
    HELP_UNKNOWN: {
        "en": "This number has no account with us. To ask for a connection, dial our USSD "
        "menu and choose Register interest, or visit the site office.",
        "sw": "Nambari hii haina akaunti kwetu. Kuomba kuunganishwa, piga menyu yetu ya USSD "
        "uchague Omba kuunganishwa, au tembelea ofisi.",
        "lg": "Ennamba eno terina akawunti gye tuli. Okusaba okuyungibwa, kozesa menyu ya "
        "USSD olonde Saba okuyungibwa, oba kyalira ofiisi.",
    },
}


@transaction.atomic
def install_templates() -> list[str]:
    """Create the self-service SMS templates that are missing; returns the ones created."""
    created = []
    for key, by_language in DEFAULTS.items():
        for language, body in by_language.items():
            _, new = MessageTemplate.objects.get_or_create(
                key=key,
                language=language,
                channel=Channel.SMS,
                defaults={"body": body, "essential": True},
            )
            if new:
                created.append(f"{key} ({language})")
    return created


def send(
    customer: Customer | None,
    key: str,
    context: dict,
    *,
    to: str | None = None,
    language: str | None = None,
    now: dt.datetime | None = None,
):
    """Queue the ``key`` SMS to ``to`` (default: the customer's phone) in their language."""
    kwargs = {
        "to": to or customer.phone,
        "template": key,
        "context": context,
        "language": language or (customer.language if customer else "en"),
        "about": f"customers.customer:{customer.pk}" if customer else "",
        "site_id": customer.site_id if customer else None,
        "now": now,
    }
    try:
        return messaging.send_message(**kwargs)
    except messaging.TemplateMissing:
        install_templates()
        return messaging.send_message(**kwargs)
