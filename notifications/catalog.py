"""The catalogue of events the platform messages about, with default wording.

Each event names whether it is essential (essential messages ignore opt-out and
quiet hours), the channels it goes out on, the variables its templates may use,
sample data for previews, and default wording in English, Swahili and Luganda.

Default SMS wording keeps to the GSM-7 alphabet (Luganda's "ŋ" is written
"ng'") and, with the sample data, to one 160-character segment where it can.
Staff edit the wording; :func:`install_defaults` only adds what is missing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from django.db import transaction
from django.template import Context, Engine, TemplateSyntaxError
from django.template.base import VariableNode
from django.template.defaulttags import ForNode, WithNode

from notifications.models import Channel, Language, MessageTemplate

SMS = Channel.SMS
EMAIL = Channel.EMAIL
LANGUAGES: tuple[str, ...] = (Language.ENGLISH, Language.SWAHILI, Language.LUGANDA)


@dataclass(frozen=True)
class Event:
    """One event: who hears of it, on which channels, and in which words by default.

    ``defaults`` maps language → channel → (subject, body); subjects are for email.
    """

    key: str
    title: str
    audience: str  # "customer" or "staff"
    essential: bool
    channels: tuple[str, ...]
    variables: tuple[str, ...]
    sample: dict
    defaults: dict[str, dict[str, tuple[str, str]]] = field(repr=False)


_CUSTOMER = {"name": "Amina", "account": "KLA-0042", "currency": "UGX"}

EVENTS: tuple[Event, ...] = (
    Event(
        key="customer_registered",
        title="Registration",
        audience="customer",
        essential=True,
        channels=(SMS,),
        variables=("customer", "account"),
        sample={
            "customer": {"first_name": "Amina", "site": {"name": "Block A"}},
            "account": "KLA-0042",
        },
        defaults={
            "en": {
                SMS: (
                    "",
                    "Welcome to {{ customer.site.name }} power, {{ customer.first_name }}. "
                    "Your account number is {{ account }}.",
                )
            },
            "sw": {
                SMS: (
                    "",
                    "Karibu kwenye umeme wa {{ customer.site.name }}, {{ customer.first_name }}. "
                    "Nambari ya akaunti yako ni {{ account }}.",
                )
            },
            "lg": {
                SMS: (
                    "",
                    "Tukusanyukidde ku masanyalaze ga {{ customer.site.name }}, "
                    "{{ customer.first_name }}. Ennamba ya akawunti yo eri {{ account }}.",
                )
            },
        },
    ),
    Event(
        key="bill_issued",
        title="Bill issued",
        audience="customer",
        essential=True,
        channels=(SMS,),
        variables=("name", "account", "currency", "amount", "period", "due_date"),
        sample={**_CUSTOMER, "amount": "24,500", "period": "Oct 2026", "due_date": "15 Nov"},
        defaults={
            "en": {
                SMS: (
                    "",
                    "{{ name }}, your bill for {{ period }} is {{ currency }} {{ amount }}, "
                    "due {{ due_date }}. Account {{ account }}.",
                )
            },
            "sw": {
                SMS: (
                    "",
                    "{{ name }}, bili yako ya {{ period }} ni {{ currency }} {{ amount }}, "
                    "lipa kabla ya {{ due_date }}. Akaunti {{ account }}.",
                )
            },
            "lg": {
                SMS: (
                    "",
                    "{{ name }}, bbiiru yo eya {{ period }} eri {{ currency }} {{ amount }}, "
                    "sasula nga {{ due_date }} tennatuuka. Akawunti {{ account }}.",
                )
            },
        },
    ),
    Event(
        key="payment_received",
        title="Payment received",
        audience="customer",
        essential=True,
        channels=(SMS,),
        variables=("name", "account", "currency", "amount", "reference", "balance"),
        sample={**_CUSTOMER, "amount": "20,000", "reference": "MP2611ABC", "balance": "4,500"},
        defaults={
            "en": {
                SMS: (
                    "",
                    "Payment received: {{ currency }} {{ amount }} (ref {{ reference }}). "
                    "New balance {{ currency }} {{ balance }}. Thank you, {{ name }}.",
                )
            },
            "sw": {
                SMS: (
                    "",
                    "Malipo yamepokelewa: {{ currency }} {{ amount }} (kumb. {{ reference }}). "
                    "Salio jipya {{ currency }} {{ balance }}. Asante, {{ name }}.",
                )
            },
            "lg": {
                SMS: (
                    "",
                    "Ssente zituuse: {{ currency }} {{ amount }} (ref {{ reference }}). "
                    "Bbalansi empya {{ currency }} {{ balance }}. Webale, {{ name }}.",
                )
            },
        },
    ),
    Event(
        key="due_date_reminder",
        title="Due-date reminder",
        audience="customer",
        essential=False,
        channels=(SMS,),
        variables=("name", "account", "currency", "amount", "due_date"),
        sample={**_CUSTOMER, "amount": "24,500", "due_date": "15 Nov"},
        defaults={
            "en": {
                SMS: (
                    "",
                    "Reminder, {{ name }}: {{ currency }} {{ amount }} is due on {{ due_date }} "
                    "for account {{ account }}.",
                )
            },
            "sw": {
                SMS: (
                    "",
                    "Kumbusho, {{ name }}: {{ currency }} {{ amount }} zinadaiwa tarehe "
                    "{{ due_date }} kwa akaunti {{ account }}.",
                )
            },
            "lg": {
                SMS: (
                    "",
                    "Okujjukiza, {{ name }}: {{ currency }} {{ amount }} zisasulwa nga "
                    "{{ due_date }} ku akawunti {{ account }}.",
                )
            },
        },
    ),
    Event(
        key="disconnection_warning",
        title="Impending disconnection",
        audience="customer",
        essential=True,
        channels=(SMS,),
        variables=("name", "account", "currency", "amount", "date"),
        sample={**_CUSTOMER, "amount": "24,500", "date": "20 Nov"},
        defaults={
            "en": {
                SMS: (
                    "",
                    "{{ name }}, your power will be disconnected on {{ date }} unless "
                    "{{ currency }} {{ amount }} is paid. Account {{ account }}.",
                )
            },
            "sw": {
                SMS: (
                    "",
                    "{{ name }}, umeme wako utakatwa tarehe {{ date }} usipolipa "
                    "{{ currency }} {{ amount }}. Akaunti {{ account }}.",
                )
            },
            "lg": {
                SMS: (
                    "",
                    "{{ name }}, amasanyalaze go gajja kusalibwako nga {{ date }} bw'otosasule "
                    "{{ currency }} {{ amount }}. Akawunti {{ account }}.",
                )
            },
        },
    ),
    Event(
        key="disconnected",
        title="Disconnected",
        audience="customer",
        essential=True,
        channels=(SMS,),
        variables=("name", "account", "currency", "amount"),
        sample={**_CUSTOMER, "amount": "24,500"},
        defaults={
            "en": {
                SMS: (
                    "",
                    "{{ name }}, your power has been disconnected. Pay {{ currency }} {{ amount }} "
                    "to reconnect. Account {{ account }}.",
                )
            },
            "sw": {
                SMS: (
                    "",
                    "{{ name }}, umeme wako umekatwa. Lipa {{ currency }} {{ amount }} ili "
                    "uunganishwe tena. Akaunti {{ account }}.",
                )
            },
            "lg": {
                SMS: (
                    "",
                    "{{ name }}, amasanyalaze go gasaliddwako. Sasula {{ currency }} {{ amount }} "
                    "gakomezebwewo. Akawunti {{ account }}.",
                )
            },
        },
    ),
    Event(
        key="reconnected",
        title="Reconnected",
        audience="customer",
        essential=True,
        channels=(SMS,),
        variables=("name", "account"),
        sample=dict(_CUSTOMER),
        defaults={
            "en": {
                SMS: ("", "{{ name }}, your power is back on. Thank you. Account {{ account }}.")
            },
            "sw": {SMS: ("", "{{ name }}, umeme wako umerudishwa. Asante. Akaunti {{ account }}.")},
            "lg": {
                SMS: (
                    "",
                    "{{ name }}, amasanyalaze go gakomezeddwawo. Webale. Akawunti {{ account }}.",
                )
            },
        },
    ),
    Event(
        key="low_balance",
        title="Low prepaid balance",
        audience="customer",
        essential=False,
        channels=(SMS,),
        variables=("name", "account", "currency", "balance", "days"),
        sample={**_CUSTOMER, "balance": "1,200", "days": "2"},
        defaults={
            "en": {
                SMS: (
                    "",
                    "{{ name }}, your prepaid balance is low: {{ currency }} {{ balance }} "
                    "(about {{ days }} days). Top up to stay connected.",
                )
            },
            "sw": {
                SMS: (
                    "",
                    "{{ name }}, salio lako ni dogo: {{ currency }} {{ balance }} (karibu siku "
                    "{{ days }}). Ongeza salio usikatiwe umeme.",
                )
            },
            "lg": {
                SMS: (
                    "",
                    "{{ name }}, ssente zo ziweddeyo: {{ currency }} {{ balance }} (ennaku nga "
                    "{{ days }}). Teekako ssente amasanyalaze galeme kuggwaako.",
                )
            },
        },
    ),
    Event(
        key="token_issued",
        title="Prepaid token issued",
        audience="customer",
        essential=True,
        channels=(SMS,),
        variables=("name", "account", "currency", "token", "kwh", "meter", "summary"),
        sample={
            **_CUSTOMER,
            "token": "1234 5678 9012 3456 7890",
            "kwh": "27.6",
            "meter": "47001234567",
            "summary": "UGX 20,000 = 27.6 kWh",
        },
        defaults={
            "en": {
                SMS: (
                    "",
                    "{{ name }}, your token for meter {{ meter }}: {{ token }} "
                    "({{ kwh }} kWh). It is also sent to your meter.",
                )
            },
            "sw": {
                SMS: (
                    "",
                    "{{ name }}, tokeni ya mita {{ meter }}: {{ token }} ({{ kwh }} kWh). "
                    "Imetumwa pia kwenye mita yako.",
                )
            },
            "lg": {
                SMS: (
                    "",
                    "{{ name }}, token ya mita {{ meter }}: {{ token }} ({{ kwh }} kWh). "
                    "Era eweerezeddwa ku mita yo.",
                )
            },
        },
    ),
    Event(
        key="abnormal_usage",
        title="Abnormal usage",
        audience="customer",
        essential=False,
        channels=(SMS,),
        variables=("name", "account", "usage_kwh", "usual_kwh", "date"),
        sample={**_CUSTOMER, "usage_kwh": "9.4", "usual_kwh": "2.1", "date": "14 Nov"},
        defaults={
            "en": {
                SMS: (
                    "",
                    "{{ name }}, you used {{ usage_kwh }} kWh on {{ date }}, above your usual "
                    "{{ usual_kwh }} kWh. Please check for faults.",
                )
            },
            "sw": {
                SMS: (
                    "",
                    "{{ name }}, ulitumia kWh {{ usage_kwh }} tarehe {{ date }}, zaidi ya kawaida "
                    "yako ya kWh {{ usual_kwh }}. Tafadhali angalia hitilafu.",
                )
            },
            "lg": {
                SMS: (
                    "",
                    "{{ name }}, wakozesa kWh {{ usage_kwh }} nga {{ date }}, okusinga kWh "
                    "{{ usual_kwh }} z'okozesa bulijjo. Kebera oba waliwo obuzibu.",
                )
            },
        },
    ),
    Event(
        key="meter_offline",
        title="Meter offline",
        audience="customer",
        essential=False,
        channels=(SMS,),
        variables=("name", "account", "meter", "since"),
        sample={**_CUSTOMER, "meter": "SM-10293", "since": "14 Nov 09:00"},
        defaults={
            "en": {
                SMS: (
                    "",
                    "{{ name }}, your meter {{ meter }} has not reported since {{ since }}. "
                    "We are looking into it. Account {{ account }}.",
                )
            },
            "sw": {
                SMS: (
                    "",
                    "{{ name }}, mita yako {{ meter }} haijatuma taarifa tangu {{ since }}. "
                    "Tunashughulikia. Akaunti {{ account }}.",
                )
            },
            "lg": {
                SMS: (
                    "",
                    "{{ name }}, mita yo {{ meter }} tewereza mawulire okuva {{ since }}. "
                    "Tukikolako. Akawunti {{ account }}.",
                )
            },
        },
    ),
    Event(
        key="site_outage",
        title="Site outage",
        audience="customer",
        essential=False,
        channels=(SMS,),
        variables=("site", "reason", "expected_back"),
        sample={"site": "Block A", "reason": "inverter repair", "expected_back": "18:00"},
        defaults={
            "en": {
                SMS: (
                    "",
                    "{{ site }}: power is off ({{ reason }}). We expect it back by "
                    "{{ expected_back }}. Sorry for the trouble.",
                )
            },
            "sw": {
                SMS: (
                    "",
                    "{{ site }}: umeme umekatika ({{ reason }}). Tunatarajia urudi kabla ya "
                    "{{ expected_back }}. Samahani kwa usumbufu.",
                )
            },
            "lg": {
                SMS: (
                    "",
                    "{{ site }}: amasanyalaze gavuddeko ({{ reason }}). Tusuubira gadde nga "
                    "{{ expected_back }}. Tusonyiwe.",
                )
            },
        },
    ),
    Event(
        key="service_request_update",
        title="Service request update",
        audience="customer",
        essential=False,
        channels=(SMS,),
        variables=("name", "reference", "status", "note"),
        sample={**_CUSTOMER, "reference": "SR-118", "status": "resolved", "note": ""},
        defaults={
            "en": {
                SMS: (
                    "",
                    "{{ name }}, your request {{ reference }} is now {{ status }}. {{ note }}",
                )
            },
            "sw": {
                SMS: (
                    "",
                    "{{ name }}, ombi lako {{ reference }} sasa ni {{ status }}. {{ note }}",
                )
            },
            "lg": {
                SMS: (
                    "",
                    "{{ name }}, okusaba kwo {{ reference }} kati kuli {{ status }}. {{ note }}",
                )
            },
        },
    ),
    Event(
        key="staff_assignment",
        title="Staff: job assigned",
        audience="staff",
        essential=False,
        channels=(SMS,),
        variables=("name", "task", "customer_name", "site", "due"),
        sample={
            "name": "Okello",
            "task": "meter install",
            "customer_name": "Amina N.",
            "site": "Block A",
            "due": "15 Nov",
        },
        defaults={
            "en": {
                SMS: (
                    "",
                    "{{ name }}, new job: {{ task }} for {{ customer_name }} at {{ site }}, "
                    "due {{ due }}.",
                )
            },
            "sw": {
                SMS: (
                    "",
                    "{{ name }}, kazi mpya: {{ task }} kwa {{ customer_name }} huko {{ site }}, "
                    "kabla ya {{ due }}.",
                )
            },
            "lg": {
                SMS: (
                    "",
                    "{{ name }}, omulimu omuggya: {{ task }} eri {{ customer_name }} e {{ site }}, "
                    "nga {{ due }}.",
                )
            },
        },
    ),
    Event(
        key="meter_not_reporting",
        title="Staff alert: meters not reporting",
        audience="staff",
        essential=True,
        channels=(SMS, EMAIL),
        variables=("site", "count", "hours", "meters", "message"),
        sample={
            "site": "Block A",
            "count": 2,
            "hours": 6.0,
            "meters": "SM-1 (address 3), SM-2 (address 4)",
            "message": "No reading for 6 hours",
        },
        defaults={
            "en": {
                SMS: (
                    "",
                    "MCOMS {{ site }}: {{ count }} meter{{ count|pluralize }} sent no reading for "
                    "over {{ hours }} h: {{ meters }}. Please check on site.",
                ),
                EMAIL: (
                    "{{ site }}: {{ count }} meter{{ count|pluralize }} not reporting",
                    "{{ count }} meter{{ count|pluralize }} at {{ site }} sent no reading for "
                    "over {{ hours }} hours: {{ meters }}.\n\n{{ message }}.\n\n"
                    "Please check the meter{{ count|pluralize }}, the bus wiring and the gateway.",
                ),
            },
            "sw": {
                SMS: (
                    "",
                    "MCOMS {{ site }}: mita {{ count }} hazijatuma usomaji kwa zaidi ya saa "
                    "{{ hours }}: {{ meters }}. Tafadhali kagua.",
                ),
                EMAIL: (
                    "{{ site }}: mita {{ count }} hazitumi usomaji",
                    "Mita {{ count }} huko {{ site }} hazijatuma usomaji kwa zaidi ya saa "
                    "{{ hours }}: {{ meters }}.\n\n{{ message }}.\n\n"
                    "Tafadhali kagua mita, nyaya za basi na geti.",
                ),
            },
            "lg": {
                SMS: (
                    "",
                    "MCOMS {{ site }}: mita {{ count }} tezisindise bipimo okusukka essaawa "
                    "{{ hours }}: {{ meters }}. Kebera.",
                ),
                EMAIL: (
                    "{{ site }}: mita {{ count }} tezisindika bipimo",
                    "Mita {{ count }} e {{ site }} tezisindise bipimo okusukka essaawa "
                    "{{ hours }}: {{ meters }}.\n\n{{ message }}.\n\n"
                    "Kebera mita, waya za bus ne gateway.",
                ),
            },
        },
    ),
    Event(
        key="gateway_silent",
        title="Staff alert: gateway silent",
        audience="staff",
        essential=True,
        channels=(SMS, EMAIL),
        variables=("site", "gateway", "message", "meters_on_bus"),
        sample={
            "site": "Block A",
            "gateway": "kla-a-bus-1",
            "message": "Gateway kla-a-bus-1 silent for 30 minutes",
            "meters_on_bus": 12,
        },
        defaults={
            "en": {
                SMS: (
                    "",
                    "MCOMS {{ site }}: {{ message }}. {{ meters_on_bus }} "
                    "meter{{ meters_on_bus|pluralize }} on its bus cannot report. "
                    "Please check power and network at the gateway.",
                ),
                EMAIL: (
                    "{{ site }}: gateway {{ gateway }} is silent",
                    "{{ message }}.\n\n{{ meters_on_bus }} meter{{ meters_on_bus|pluralize }} "
                    "on its bus cannot report until it is back. Please check power and network "
                    "at the gateway.",
                ),
            },
            "sw": {
                SMS: (
                    "",
                    "MCOMS {{ site }}: {{ message }}. Mita {{ meters_on_bus }} kwenye basi lake "
                    "haziwezi kutuma. Kagua umeme na mtandao wa geti.",
                ),
                EMAIL: (
                    "{{ site }}: geti {{ gateway }} iko kimya",
                    "{{ message }}.\n\nMita {{ meters_on_bus }} kwenye basi lake haziwezi "
                    "kutuma hadi irudi. Tafadhali kagua umeme na mtandao wa geti.",
                ),
            },
            "lg": {
                SMS: (
                    "",
                    "MCOMS {{ site }}: {{ message }}. Mita {{ meters_on_bus }} ku bus yaayo "
                    "tezisobola kusindika. Kebera amasanyalaze ne network ya gateway.",
                ),
                EMAIL: (
                    "{{ site }}: gateway {{ gateway }} esirise",
                    "{{ message }}.\n\nMita {{ meters_on_bus }} ku bus yaayo tezisobola "
                    "kusindika okutuusa lw'edda. Kebera amasanyalaze ne network ya gateway.",
                ),
            },
        },
    ),
)

BY_KEY: dict[str, Event] = {event.key: event for event in EVENTS}


def event(key: str) -> Event | None:
    """The catalogued event called ``key``, or None."""
    return BY_KEY.get(key)


def is_essential(key: str) -> bool | None:
    """Whether the catalogued event ``key`` is essential; None when it is not catalogued."""
    found = BY_KEY.get(key)
    return found.essential if found else None


class TemplateInvalid(ValueError):
    """A template's text does not compile or uses a variable the event does not give."""


_MISSING = "\x00MISSING:%s\x00"
_MISSING_RE = re.compile("\x00MISSING:(.*?)\x00")
_ENGINE = Engine(string_if_invalid=_MISSING)


def _root_names(nodelist) -> set[str]:
    """The first names of the variables a template prints, less those its tags define."""
    names = set()
    for node in nodelist.get_nodes_by_type(VariableNode):
        var = node.filter_expression.var
        lookups = getattr(var, "lookups", None)
        if lookups:
            names.add(lookups[0])
    defined = {"forloop"}
    for node in nodelist.get_nodes_by_type(ForNode):
        defined.update(node.loopvars)
    for node in nodelist.get_nodes_by_type(WithNode):
        defined.update(node.extra_context)
    return names - defined


def check(text: str, *, key: str, context: dict | None = None) -> str:
    """Render ``text`` with the sample data of event ``key``; raise TemplateInvalid if it fails.

    A syntax error, or a variable that is neither catalogued for the event nor in
    its sample data, is an error. Returns the rendered text.
    """
    found = BY_KEY.get(key)
    data = dict(context if context is not None else (found.sample if found else {}))
    try:
        compiled = _ENGINE.from_string(text)
    except TemplateSyntaxError as exc:
        raise TemplateInvalid(f"Template syntax error: {exc}") from exc
    allowed = set(found.variables if found else ()) | set(data)
    unknown = sorted(_root_names(compiled.nodelist) - allowed)
    if unknown:
        raise TemplateInvalid(f"Unknown variable: {', '.join(unknown)}")
    try:
        rendered = compiled.render(Context(data, autoescape=False))
    except Exception as exc:  # a filter raising on the sample data
        raise TemplateInvalid(f"Template does not render: {exc}") from exc
    missing = sorted(set(_MISSING_RE.findall(rendered)))
    if missing:
        raise TemplateInvalid(f"Unknown variable: {', '.join(missing)}")
    return rendered.strip()


@transaction.atomic
def install_defaults() -> list[str]:
    """Create the catalogue's templates that are missing; returns the ones created.

    Existing rows keep their wording (staff edits survive); only the ``essential``
    flag is brought in line with the catalogue. Running it twice changes nothing.
    """
    created = []
    for ev in EVENTS:
        for language, by_channel in ev.defaults.items():
            for channel, (subject, body) in by_channel.items():
                row, new = MessageTemplate.objects.get_or_create(
                    key=ev.key,
                    language=language,
                    channel=channel,
                    defaults={"subject": subject, "body": body, "essential": ev.essential},
                )
                if new:
                    created.append(f"{ev.key} ({language}, {channel})")
                elif row.essential != ev.essential:
                    MessageTemplate.objects.filter(pk=row.pk).update(essential=ev.essential)
    return created
