"""Outage incidents: many meters of a site losing voltage or going silent together.

An outage shows up as many meters of one site losing voltage or going silent at once.
That is one :class:`~metering.models.Incident` with a start and an end, not a hundred
alerts:

- :func:`check` (every few minutes) looks at every meter on a bus: *silent* as the
  missing-read watch judges it (``metering.watch``: no reading for the site's
  ``missing_read_intervals`` log intervals, or its gateway is silent), or *without
  voltage* (its newest reading shows every phase below half the nominal voltage).
  When at least ``outage_min_meters`` meters and ``outage_share_pct`` % of the site's
  watched meters are affected, the site has an outage: an incident is opened (or the
  open one grows), and it ends at the first check where that is no longer so.
- While an incident is open, the per-meter alerts it explains (not reporting, no
  voltage, voltage out of limits) and the site's silent-gateway alerts are linked to
  it, and the power-quality check opens no new per-meter voltage alerts for its
  meters. One site-wide ``outage`` alert carries the incident through the alert life
  (staff told once, acknowledged, escalated, resolved when the incident ends).
- The customers of meters that report but see no voltage hear of the outage
  (``site_outage``, once per customer and incident). Customers of silent meters are
  told by the missing-read watch.
"""

from __future__ import annotations

import datetime as dt
import logging
import statistics
from collections import defaultdict
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import Q

from customers.models import Customer
from mcoms.core import clock
from mcoms.core.models import Site
from metering import alerting, watch
from metering.models import Alert, Incident, MeterAssignment, MeterComms, SiteWatchSettings
from notifications.services import TemplateMissing, send_message

log = logging.getLogger(__name__)

LINKED_KINDS = (Alert.Kind.MISSING_READS, Alert.Kind.SUPPLY_LOST, Alert.Kind.VOLTAGE)
DEAD_SHARE = 0.5
CUSTOMER_TEMPLATE = "site_outage"
OUTAGE_REASON = "loss of supply on the site's network"
EXPECTED_WITHIN = dt.timedelta(hours=4)


@dataclass
class IncidentResult:
    opened: list[Incident] = field(default_factory=list)
    updated: int = 0
    ended: int = 0
    affected: dict[int, int] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {
            "opened": len(self.opened),
            "updated": self.updated,
            "ended": self.ended,
            "affected": self.affected,
        }


def is_outage(affected: int, watched: int, row: SiteWatchSettings) -> bool:
    """Enough meters, and a large enough share of the site's, to call it an outage."""
    if watched <= 0 or affected < row.outage_min_meters:
        return False
    return affected * 100 >= row.outage_share_pct * watched


def covered_meters(site_ids=None) -> dict[int, int]:
    """Meters in an open incident → that incident's id."""
    rows = Incident.meters.through.objects.filter(incident__ended_at__isnull=True)
    if site_ids is not None:
        rows = rows.filter(incident__site_id__in=site_ids)
    return dict(rows.values_list("meter_id", "incident_id"))


def link_alerts(covered: dict[int, int], *, now: dt.datetime) -> int:
    """Attach open alerts of covered meters, and their sites' gateway alerts, to incidents."""
    if not covered:
        return 0
    linked = 0
    by_incident: dict[int, list[int]] = defaultdict(list)
    for meter_id, incident_id in covered.items():
        by_incident[incident_id].append(meter_id)
    sites = dict(Incident.objects.filter(pk__in=by_incident).values_list("pk", "site_id"))
    for incident_id, meter_ids in by_incident.items():
        linked += (
            Alert.objects.filter(resolved_at__isnull=True, incident__isnull=True)
            .filter(
                Q(meter_id__in=meter_ids, kind__in=LINKED_KINDS)
                | Q(site_id=sites[incident_id], kind=Alert.Kind.GATEWAY_SILENT, meter__isnull=True)
            )
            .update(incident_id=incident_id)
        )
    return linked


def _tell_customers(incident: Incident, meter_ids: list[int], now: dt.datetime) -> int:
    """``site_outage`` to the customers of ``meter_ids`` not told yet for this incident."""
    told = set(incident.details.get("told_customers", []))
    served = (
        MeterAssignment.objects.filter(end__isnull=True, meter_id__in=meter_ids)
        .exclude(customer__status=Customer.Status.CLOSED)
        .exclude(customer__phone="")
        .select_related("customer__site")
    )
    sent = 0
    for assignment in served:
        customer = assignment.customer
        if customer.pk in told:
            continue
        told.add(customer.pk)
        back = (now + EXPECTED_WITHIN).astimezone(customer.site.zone)
        try:
            with transaction.atomic():
                send_message(
                    to=customer.phone,
                    template=CUSTOMER_TEMPLATE,
                    context={
                        "site": customer.site.name,
                        "reason": OUTAGE_REASON,
                        "expected_back": f"{back:%H:%M}",
                    },
                    language=customer.language,
                    about=f"metering.incident:{incident.pk}",
                    site_id=customer.site_id,
                    now=now,
                    timezone=customer.site.timezone,
                )
        except TemplateMissing:
            log.info("no %s template: customer %s not told", CUSTOMER_TEMPLATE, customer.pk)
            continue
        except Exception:
            log.exception(
                "messaging customer %s about incident %s failed", customer.pk, incident.pk
            )
            continue
        sent += 1
    Incident.objects.filter(pk=incident.pk).update(
        details={**incident.details, "told_customers": sorted(told)}
    )
    incident.details["told_customers"] = sorted(told)
    return sent


def _outage_message(site: Site, affected: int, watched: int, since: dt.datetime, cause: str):
    return (
        f"Outage at {site.name}: {affected} of {watched} meters {cause} since "
        f"{since.astimezone(site.zone):%Y-%m-%d %H:%M}"
    )[:300]


def open_or_update(
    site_id: int,
    meter_ids: list[int],
    *,
    now: dt.datetime,
    watched: int,
    cause: str,
    since: dt.datetime | None = None,
    dead: list[int] | None = None,
    notify: bool = True,
) -> tuple[Incident, bool]:
    """The site's open outage incident, opened or grown to include ``meter_ids``."""
    site = Site.objects.get(pk=site_id)
    started = min(since, now) if since else now
    with transaction.atomic():
        incident = (
            Incident.objects.select_for_update()
            .filter(site_id=site_id, kind=Incident.Kind.OUTAGE, ended_at__isnull=True)
            .first()
        )
        created = incident is None
        if created:
            incident = Incident.objects.create(
                site_id=site_id,
                kind=Incident.Kind.OUTAGE,
                started_at=started,
                watched_meters=watched,
                peak_meters=len(meter_ids),
                details={"cause": cause, "checks": 1},
            )
        else:
            incident.peak_meters = max(incident.peak_meters, len(meter_ids))
            incident.watched_meters = watched
            incident.details = {**incident.details, "checks": incident.details.get("checks", 0) + 1}
            incident.save(update_fields=["peak_meters", "watched_meters", "details"])
        incident.meters.add(*meter_ids)
        opened = alerting.open_alerts(
            [
                Alert(
                    kind=Alert.Kind.OUTAGE,
                    site_id=site_id,
                    incident=incident,
                    message=_outage_message(site, len(meter_ids), watched, started, cause),
                    details={
                        "detector": "incident",
                        "incident": incident.pk,
                        "affected": len(meter_ids),
                        "watched": watched,
                        "cause": cause,
                        "explanation": (
                            f"{len(meter_ids)} of {watched} meters on the site's buses "
                            f"{cause} at the same time"
                        ),
                    },
                )
            ],
            now=now,
        )
        Alert.objects.filter(
            kind=Alert.Kind.OUTAGE, site_id=site_id, resolved_at__isnull=True, incident__isnull=True
        ).update(incident=incident)
        link_alerts({m: incident.pk for m in meter_ids}, now=now)
    if notify:
        alerting.announce(opened, now=now, customers=False)
        if dead:
            transaction.on_commit(lambda: _tell_customers(incident, dead, now))
    return incident, created


def end(incident: Incident, *, now: dt.datetime) -> None:
    """The outage is over: close the incident and resolve its site-wide alert."""
    with transaction.atomic():
        Incident.objects.filter(pk=incident.pk, ended_at__isnull=True).update(ended_at=now)
        incident.ended_at = now
        alerts = Alert.objects.filter(
            incident=incident, kind=Alert.Kind.OUTAGE, resolved_at__isnull=True
        ).values_list("pk", flat=True)
        alerting.resolve_cleared(alerts, now=now, note="supply back: the outage incident ended")


def _dead(values: dict | None, nominal: float) -> bool:
    if not values:
        return False
    volts = [values.get(k) for k in ("voltage_l1", "voltage_l2", "voltage_l3")]
    volts = [float(v) for v in volts if v is not None]
    return bool(volts) and all(v < DEAD_SHARE * nominal for v in volts)


def check(*, now: dt.datetime | None = None, notify: bool = True) -> IncidentResult:
    """Open, grow or end every site's outage incident as of ``now``."""
    at = clock.resolve(now)
    result = IncidentResult()
    gateways = watch.gateway_states(at)
    meters = watch.meter_states(at)
    by_site: dict[int, list] = defaultdict(list)
    for state in meters.values():
        by_site[state.site_id].append(state)
    settings_of = SiteWatchSettings.for_sites(by_site)
    values = dict(
        MeterComms.objects.filter(meter_id__in=list(meters)).values_list("meter_id", "last_values")
    )
    open_incidents = {
        i.site_id: i
        for i in Incident.objects.filter(kind=Incident.Kind.OUTAGE, ended_at__isnull=True)
    }
    for site_id, states in by_site.items():
        row = settings_of[site_id]
        silent, dead, last_seen = [], [], []
        for s in states:
            gateway = gateways.get(s.gateway_id)
            if not s.reported or (gateway is not None and gateway.silent):
                silent.append(s.meter_id)
                last_seen.append(s.last)
            elif _dead(values.get(s.meter_id), row.nominal_voltage):
                dead.append(s.meter_id)
        affected = silent + dead
        result.affected[site_id] = len(affected)
        if is_outage(len(affected), len(states), row):
            if dead and silent:
                cause = "lost voltage or went silent"
            else:
                cause = "lost voltage" if dead else "went silent"
            since = statistics.median_low(last_seen) if last_seen else None
            incident, created = open_or_update(
                site_id,
                affected,
                now=at,
                watched=len(states),
                cause=cause,
                since=since,
                dead=dead,
                notify=notify,
            )
            if created:
                result.opened.append(incident)
            else:
                result.updated += 1
        elif site_id in open_incidents:
            end(open_incidents[site_id], now=at)
            result.ended += 1
    # A site whose meters all left the buses has no outage to follow.
    for site_id, incident in open_incidents.items():
        if site_id not in by_site:
            end(incident, now=at)
            result.ended += 1
    return result
