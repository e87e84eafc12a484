"""Watching for missing reads: meters that stopped reporting and gateways that went silent.

:func:`check_missing` runs every few minutes (see ``metering.schedules``). It reads
the state of every watched meter and gateway in a fixed number of queries, opens an
alert per silent subject (one open alert per subject and kind), resolves alerts whose
subject reports again, and messages the site's staff about the alerts it opened.

- A meter is watched while it is Installed or Commissioned on an open bus slot. It is
  silent when its newest reading (or, with none on this bus yet, its installation) is
  older than the site's ``missing_read_intervals`` × the gateway's ``log_interval_s``.
- A gateway is silent when its last heartbeat is older than three heartbeat intervals
  (3 × 300 s), or when it never sent one and was registered more than a day ago.
- When a gateway is silent, or has never been heard from, its meters are not alerted one
  by one: the gateway alert says it for all of them.

Customers hear of it too (non-essential messages, so opt-outs and quiet hours apply):
the customer a newly silent meter serves gets ``meter_offline``, and the customers whose
meters are on a newly silent gateway's bus get ``site_outage`` (their meters cannot
report and the cause is often the site's power). Each alert messages once, when opened.

Messaging is optional: a missing template or a failing backend is logged and the
check goes on.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from dataclasses import dataclass, field

from django.db import transaction

from customers.models import Customer
from mcoms.core import clock
from mcoms.core.models import Site, User
from mcoms.core.roles import Role
from mcoms.core.selectors import staff_of_site
from metering.lifecycle import ON_BUS
from metering.models import Alert, BusSlot, Gateway, Incident, MeterAssignment
from notifications.models import Channel
from notifications.services import TemplateMissing, send_message

log = logging.getLogger(__name__)

HEARTBEAT_INTERVAL = dt.timedelta(seconds=300)
MISSED_HEARTBEATS = 3
NEVER_HEARD_GRACE = dt.timedelta(days=1)
NOTIFY_ROLES = {Role.SITE_MANAGER, Role.FIELD_SUPERVISOR}
METER_TEMPLATE = "meter_not_reporting"
GATEWAY_TEMPLATE = "gateway_silent"
CUSTOMER_METER_TEMPLATE = "meter_offline"
CUSTOMER_OUTAGE_TEMPLATE = "site_outage"
OUTAGE_REASON = "our equipment at the site stopped reporting"
# The outage message names a time the customer may expect power back: this long after
# the gateway went silent, in the site's time. Staff may reword the template.
OUTAGE_EXPECTED_WITHIN = dt.timedelta(hours=4)
LISTED_IN_MESSAGE = 10


@dataclass
class WatchResult:
    """What one check did."""

    opened: list[Alert] = field(default_factory=list)
    resolved: int = 0
    silent_meters: int = 0
    silent_gateways: int = 0
    messages: int = 0
    customer_messages: int = 0

    def as_dict(self) -> dict:
        """Counts, for the task's log."""
        return {
            "opened": len(self.opened),
            "resolved": self.resolved,
            "silent_meters": self.silent_meters,
            "silent_gateways": self.silent_gateways,
            "messages": self.messages,
            "customer_messages": self.customer_messages,
        }


@dataclass(frozen=True)
class GatewayState:
    id: int
    name: str
    site_id: int
    heard: bool
    silent: bool
    last: dt.datetime | None


@dataclass(frozen=True)
class MeterState:
    meter_id: int
    serial: str
    address: int
    gateway_id: int
    site_id: int
    last: dt.datetime
    reported: bool
    window: dt.timedelta


def _local(at: dt.datetime | None, site: Site) -> str:
    return f"{at.astimezone(site.zone):%Y-%m-%d %H:%M}" if at else "never"


def gateway_states(now: dt.datetime) -> dict[int, GatewayState]:
    """Every gateway with whether it is silent at ``now`` (one query)."""
    limit = HEARTBEAT_INTERVAL * MISSED_HEARTBEATS
    states = {}
    rows = Gateway.objects.values_list("pk", "name", "site_id", "last_heartbeat_at", "created_at")
    for pk, name, site_id, heartbeat, created in rows:
        since = heartbeat if heartbeat is not None else created
        silent = since < now - (limit if heartbeat is not None else NEVER_HEARD_GRACE)
        states[pk] = GatewayState(pk, name, site_id, heartbeat is not None, silent, heartbeat)
    return states


def meter_states(now: dt.datetime) -> dict[int, MeterState]:
    """Every watched meter with its last sign of life (one query)."""
    rows = BusSlot.objects.filter(end__isnull=True, meter__status__in=ON_BUS).values_list(
        "meter_id",
        "meter__serial",
        "address",
        "gateway_id",
        "gateway__site_id",
        "start",
        "meter__comms__last_reading_ts",
        "gateway__log_interval_s",
        "gateway__site__missing_read_intervals",
    )
    states = {}
    for meter_id, serial, address, gateway_id, site_id, start, last_ts, log_s, n in rows:
        last = max(last_ts, start) if last_ts else start
        window = dt.timedelta(seconds=log_s * n)
        states[meter_id] = MeterState(
            meter_id, serial, address, gateway_id, site_id, last, last >= now - window, window
        )
    return states


def _open(alerts: list[Alert], kind: str, now: dt.datetime) -> list[Alert]:
    """Create the alerts that are not open yet; returns those this call created."""
    if not alerts:
        return []
    Alert.objects.bulk_create(alerts, ignore_conflicts=True)
    subject = "meter_id" if kind == Alert.Kind.MISSING_READS else "gateway_id"
    ids = [getattr(a, subject) for a in alerts]
    created = Alert.objects.filter(
        kind=kind, resolved_at__isnull=True, opened_at=now, **{f"{subject}__in": ids}
    )
    return list(created.select_related("site", "meter", "gateway"))


@transaction.atomic
def _update_alerts(
    now: dt.datetime,
    gateways: dict[int, GatewayState],
    meters: dict[int, MeterState],
    result: WatchResult,
) -> None:
    open_alerts = Alert.objects.filter(
        resolved_at__isnull=True, kind__in=[Alert.Kind.MISSING_READS, Alert.Kind.GATEWAY_SILENT]
    ).values_list("pk", "kind", "meter_id", "gateway_id")
    open_meters, open_gateways, resolve = set(), set(), []
    for pk, kind, meter_id, gateway_id in open_alerts:
        if kind == Alert.Kind.MISSING_READS and meter_id is not None:
            state = meters.get(meter_id)
            # Reporting again, or no longer on a bus to report from.
            if state is None or state.reported:
                resolve.append(pk)
            else:
                open_meters.add(meter_id)
        elif kind == Alert.Kind.GATEWAY_SILENT and meter_id is None:
            state = gateways.get(gateway_id)
            if state is None or not state.silent:
                resolve.append(pk)
            else:
                open_gateways.add(gateway_id)
    if resolve:
        result.resolved = Alert.objects.filter(pk__in=resolve, resolved_at__isnull=True).update(
            status=Alert.Status.RESOLVED, resolved_at=now
        )

    sites = Site.objects.in_bulk({g.site_id for g in gateways.values()})
    silent_gateways = [g for g in gateways.values() if g.silent]
    result.silent_gateways = len(silent_gateways)
    on_bus = defaultdict(int)
    for m in meters.values():
        on_bus[m.gateway_id] += 1
    new_gateway_alerts = [
        Alert(
            kind=Alert.Kind.GATEWAY_SILENT,
            site_id=g.site_id,
            gateway_id=g.id,
            message=(
                f"Gateway {g.name} has sent no heartbeat since {_local(g.last, sites[g.site_id])}"
                if g.heard
                else f"Gateway {g.name} has never sent a heartbeat"
            )[:300],
            details={
                "last_heartbeat_at": g.last.isoformat() if g.last else None,
                "meters_on_bus": on_bus[g.id],
            },
            opened_at=now,
        )
        for g in silent_gateways
        if g.id not in open_gateways
    ]

    # A silent (or not yet heard) gateway speaks for its meters.
    quiet = {g.id for g in gateways.values() if g.silent or not g.heard}
    silent_meters = [m for m in meters.values() if not m.reported and m.gateway_id not in quiet]
    result.silent_meters = len(silent_meters)
    new_meter_alerts = [
        Alert(
            kind=Alert.Kind.MISSING_READS,
            site_id=m.site_id,
            meter_id=m.meter_id,
            gateway_id=m.gateway_id,
            message=(
                f"Meter {m.serial} (address {m.address} on {gateways[m.gateway_id].name}) "
                f"has not reported since {_local(m.last, sites[m.site_id])}"
            )[:300],
            details={
                "last_reading_at": m.last.isoformat(),
                "address": m.address,
                "window_s": int(m.window.total_seconds()),
            },
            opened_at=now,
        )
        for m in silent_meters
        if m.meter_id not in open_meters
    ]
    result.opened = _open(new_gateway_alerts, Alert.Kind.GATEWAY_SILENT, now) + _open(
        new_meter_alerts, Alert.Kind.MISSING_READS, now
    )


def _address_of(user: User) -> tuple[str, str] | None:
    if user.phone:
        return Channel.SMS, user.phone
    if user.email:
        return Channel.EMAIL, user.email
    return None


def tell_staff(user: User, template: str, context: dict, about: str, site: Site) -> bool:
    """Message one staff member (SMS, else email); False when not sent. Never raises."""
    address = _address_of(user)
    if address is None:
        return False
    channel, to = address
    try:
        with transaction.atomic():
            send_message(
                to=to,
                template=template,
                context=context,
                channel=channel,
                about=about,
                site_id=site.pk,
            )
    except TemplateMissing:
        log.warning("no %s template %r: %s not told about %s", channel, template, user, about)
        return False
    except Exception:
        log.exception("messaging %s about %s failed", user, about)
        return False
    return True


def notify(alerts: list[Alert]) -> int:
    """Message each affected site's managers and field supervisors about newly opened alerts.

    One message per person and site for the meters, one per silent gateway. Returns how
    many messages were queued; never raises.
    """
    sent = 0
    by_site: dict[int, list[Alert]] = defaultdict(list)
    for alert in alerts:
        by_site[alert.site_id].append(alert)
    for site_alerts in by_site.values():
        site = site_alerts[0].site
        try:
            staff = list(staff_of_site(site, NOTIFY_ROLES))
        except Exception:
            log.exception("could not find the staff of %s", site)
            continue
        meters = [a for a in site_alerts if a.kind == Alert.Kind.MISSING_READS]
        jobs = [
            (
                GATEWAY_TEMPLATE,
                {"site": site.name, "gateway": a.gateway.name, "message": a.message, **a.details},
                f"metering.alert:{a.pk}",
            )
            for a in site_alerts
            if a.kind == Alert.Kind.GATEWAY_SILENT
        ]
        if meters:
            names = [f"{a.meter.serial} (address {a.details.get('address')})" for a in meters]
            listed = ", ".join(names[:LISTED_IN_MESSAGE])
            if len(names) > LISTED_IN_MESSAGE:
                listed += f" and {len(names) - LISTED_IN_MESSAGE} more"
            context = {
                "site": site.name,
                "count": len(meters),
                "meters": listed,
                "message": meters[0].message,
                "hours": round(meters[0].details.get("window_s", 0) / 3600, 1),
            }
            jobs.append((METER_TEMPLATE, context, f"metering.alert:{meters[0].pk}"))
        for template, context, about in jobs:
            for user in staff:
                sent += tell_staff(user, template, context, about, site)
    return sent


def _tell_customer(
    customer: Customer, template: str, context: dict, about: str, now: dt.datetime
) -> bool:
    try:
        with transaction.atomic():
            send_message(
                to=customer.phone,
                template=template,
                context=context,
                language=customer.language,
                about=about,
                site_id=customer.site_id,
                now=now,
                timezone=customer.site.timezone,
            )
    except TemplateMissing:
        log.info("no %s template: customer %s not told about %s", template, customer.pk, about)
        return False
    except Exception:
        log.exception("messaging customer %s about %s failed", customer.pk, about)
        return False
    return True


def notify_customers(alerts: list[Alert], now: dt.datetime) -> int:
    """Tell the customers affected by newly opened alerts; returns messages queued.

    A silent meter's current customer gets ``meter_offline``; the customers served by
    the meters on a silent gateway's bus get ``site_outage`` (once per customer and
    gateway; not for a gateway never heard from). Closed accounts and customers without
    a phone are left out.
    """
    meter_alerts = {a.meter_id: a for a in alerts if a.kind == Alert.Kind.MISSING_READS}
    # A gateway never heard from is not yet in service: its silence is no outage.
    gateway_alerts = {
        a.gateway_id: a
        for a in alerts
        if a.kind == Alert.Kind.GATEWAY_SILENT and a.details.get("last_heartbeat_at")
    }
    if not meter_alerts and not gateway_alerts:
        return 0
    on_bus = BusSlot.objects.filter(end__isnull=True, gateway_id__in=gateway_alerts).values_list(
        "meter_id", "gateway_id"
    )
    gateway_of = dict(on_bus)
    served = (
        MeterAssignment.objects.filter(end__isnull=True)
        .filter(meter_id__in=set(meter_alerts) | set(gateway_of))
        .exclude(customer__status=Customer.Status.CLOSED)
        .exclude(customer__phone="")
        .select_related("customer__site", "meter")
    )
    sent = 0
    told: set[tuple[int, int]] = set()
    for assignment in served:
        customer = assignment.customer
        alert = meter_alerts.get(assignment.meter_id)
        if alert is not None:
            last = dt.datetime.fromisoformat(alert.details["last_reading_at"])
            context = {
                "name": customer.first_name,
                "account": customer.account_number,
                "meter": assignment.meter.serial,
                "since": f"{last.astimezone(customer.site.zone):%d %b %H:%M}",
            }
            about = f"metering.alert:{alert.pk}"
            sent += _tell_customer(customer, CUSTOMER_METER_TEMPLATE, context, about, now)
        gateway_id = gateway_of.get(assignment.meter_id)
        if gateway_id is not None and (customer.pk, gateway_id) not in told:
            told.add((customer.pk, gateway_id))
            alert = gateway_alerts[gateway_id]
            back = (now + OUTAGE_EXPECTED_WITHIN).astimezone(customer.site.zone)
            context = {
                "site": customer.site.name,
                "reason": OUTAGE_REASON,
                "expected_back": f"{back:%H:%M}",
            }
            about = f"metering.alert:{alert.pk}"
            sent += _tell_customer(customer, CUSTOMER_OUTAGE_TEMPLATE, context, about, now)
    return sent


def _outside_incidents(alerts: list[Alert]) -> list[Alert]:
    """The alerts whose meter is not covered by an open outage incident."""
    covered = set(
        Incident.meters.through.objects.filter(incident__ended_at__isnull=True).values_list(
            "meter_id", flat=True
        )
    )
    return [a for a in alerts if a.meter_id is None or a.meter_id not in covered]


def check_missing(
    *, now: dt.datetime | None = None, notify_staff: bool = True, notify_affected: bool = True
) -> WatchResult:
    """Open, keep or resolve missing-read and silent-gateway alerts as of ``now``."""
    at = clock.resolve(now)
    result = WatchResult()
    gateways = gateway_states(at)
    meters = meter_states(at)
    _update_alerts(at, gateways, meters, result)
    # A meter inside an open outage incident is told about once, by the incident.
    tell = _outside_incidents(result.opened)
    if notify_staff and tell:
        try:
            result.messages = notify(tell)
        except Exception:
            log.exception("messaging about missing reads failed")
    if notify_affected and tell:
        try:
            result.customer_messages = notify_customers(tell, at)
        except Exception:
            log.exception("messaging customers about missing reads failed")
    return result
