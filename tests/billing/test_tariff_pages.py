"""Tariff management pages: versions listed and shown readably, maker-checker from the page,
and a sample month priced by the engine.

People from ``org``: ``billing`` (billing officer) and ``admin`` manage tariffs;
``supervisor`` sees billing but may not change tariffs; ``agent`` sees neither.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.urls import reverse

from billing import tariff_services
from billing.models import TariffVersion
from mcoms.core.audit import acting_as
from mcoms.core.models import AuditEvent
from tests.billing.tariff_fixtures import CI1, DC, SC

JAN = dt.date(2018, 1, 1)


@pytest.fixture
def tariff(org):
    with acting_as(org.billing):
        return tariff_services.tariff_create(
            code="ke-dc", name="Domestic", currency="KES", by=org.billing
        )


def propose(tariff, by, terms=DC, effective_from=JAN):
    with acting_as(by):
        return tariff_services.tariff_version_propose(
            tariff=tariff, effective_from=effective_from, terms=terms, reason="notice", by=by
        )


def approve(version, by):
    with acting_as(by):
        return tariff_services.tariff_version_approve(version=version, by=by)


def text(response) -> str:
    return response.content.decode()


def test_list_shows_versions_in_force_proposed_and_rejected(org, tariff, client_for):
    approve(propose(tariff, org.billing), org.admin)
    propose(tariff, org.billing, effective_from=dt.date(2030, 1, 1))
    refused = propose(tariff, org.admin, effective_from=dt.date(2031, 1, 1))
    with acting_as(org.billing):
        tariff_services.tariff_version_reject(version=refused, by=org.billing, note="too high")

    page = text(client_for(org.supervisor).get(reverse("billing:tariff-list")))

    assert "Domestic" in page and "from 2018-01-01" in page
    assert "proposed</span> from 2030-01-01" in page
    assert "1 rejected" in page
    assert client_for(org.agent).get(reverse("billing:tariff-list")).status_code == 403


def test_a_versions_terms_are_shown_readably(org, tariff, client_for):
    propose(tariff, org.billing, terms=DC)
    propose(tariff, org.billing, terms=CI1, effective_from=dt.date(2019, 1, 1))

    page = text(client_for(org.billing).get(reverse("billing:tariff-detail", args=[tariff.pk])))

    assert "Fixed charge: KES 150 a month" in page
    assert "Block 50 – 1500 kWh: KES 12.75 per kWh" in page
    assert "Block above 1500 kWh: KES 20.57 per kWh" in page
    assert "16% on the total" in page
    assert "Time of use &#x27;off_peak&#x27;: KES 4.60 per kWh" in page
    assert "Window 22:00–06:00 (overnight) on weekday" in page
    assert "KES 800 per kVA of the month&#x27;s maximum demand, over 30-minute intervals" in page


def test_propose_from_the_page_checks_json_and_terms(org, tariff, client_for):
    client = client_for(org.billing)
    url = reverse("billing:tariff-propose", args=[tariff.pk])
    base = {"effective_from": "2018-01-01", "reason": "EPRA notice"}

    broken = client.post(url, {**base, "terms": '{"fixed": ['})
    assert "Not valid JSON" in text(broken)
    floats = client.post(url, {**base, "terms": '{"energy": {"type": "flat", "rate": 13.5}}'})
    assert "must be a number written as a string" in text(floats)
    assert "13.5" in text(floats)  # what was typed is kept
    assert not TariffVersion.objects.exists()

    done = client.post(url, {**base, "terms": json.dumps(SC)})
    assert done.status_code == 302
    version = TariffVersion.objects.get()
    assert (version.status, version.terms, version.proposed_by) == ("proposed", SC, org.billing)


def test_an_effective_date_before_the_latest_approved_is_refused_on_the_form(
    org, tariff, client_for
):
    approve(propose(tariff, org.billing), org.admin)
    response = client_for(org.billing).post(
        reverse("billing:tariff-propose", args=[tariff.pk]),
        {"effective_from": "2017-06-01", "terms": json.dumps(SC), "reason": "x"},
    )
    assert "a change must start after it" in text(response)
    assert TariffVersion.objects.count() == 1


def test_proposing_needs_the_tariff_capability(org, tariff, client_for):
    url = reverse("billing:tariff-propose", args=[tariff.pk])
    assert client_for(org.supervisor).get(url).status_code == 403
    response = client_for(org.supervisor).post(
        url, {"effective_from": "2018-01-01", "terms": json.dumps(SC), "reason": "x"}
    )
    assert response.status_code == 403
    assert not TariffVersion.objects.exists()


def test_the_proposer_is_told_clearly_they_cannot_approve(org, tariff, client_for):
    version = propose(tariff, org.billing)
    client = client_for(org.billing)

    response = client.post(
        reverse("billing:tariff-version-approve", args=[version.pk]), follow=True
    )

    assert "needs a second person: you proposed this one" in text(response)
    version.refresh_from_db()
    assert version.status == TariffVersion.Status.PROPOSED


def test_a_second_person_approves_from_the_page(org, tariff, client_for):
    version = propose(tariff, org.billing)

    response = client_for(org.admin).post(
        reverse("billing:tariff-version-approve", args=[version.pk]),
        {"note": "checked"},
        follow=True,
    )

    version.refresh_from_db()
    assert (version.status, version.decided_by, version.decision_note) == (
        "approved",
        org.admin,
        "checked",
    )
    assert "approved" in text(response)
    assert AuditEvent.objects.filter(
        object_type="billing.tariffversion", object_id=str(version.pk), action="transition"
    ).exists()


def test_rejecting_needs_a_reason(org, tariff, client_for):
    version = propose(tariff, org.billing)
    client = client_for(org.admin)
    url = reverse("billing:tariff-version-reject", args=[version.pk])

    response = client.post(url, {"note": ""}, follow=True)
    assert "Say why the change is rejected" in text(response)
    version.refresh_from_db()
    assert version.status == "proposed"

    client.post(url, {"note": "wrong VAT"})
    version.refresh_from_db()
    assert (version.status, version.decision_note) == ("rejected", "wrong VAT")


def test_a_sample_month_is_priced_by_the_engine(org, tariff, client_for):
    version = propose(tariff, org.billing, terms=DC)
    url = reverse("billing:tariff-detail", args=[tariff.pk])

    page = text(
        client_for(org.billing).get(
            url, {"version": version.pk, "month": "2018-01-15", "kwh": "120"}
        )
    )

    # Kenya DC, 120 kWh: 150 fixed + 50 × 2.50 + 70 × 12.75, then 16% VAT.
    assert "KES 125.00" in page
    assert "KES 892.50" in page
    assert "KES 186.80" in page
    assert "KES 1354.30" in page


def test_a_sample_month_with_demand_and_time_of_use(org, tariff, client_for):
    version = propose(tariff, org.billing, terms=CI1)
    url = reverse("billing:tariff-detail", args=[tariff.pk])

    page = text(
        client_for(org.billing).get(
            url,
            {"version": version.pk, "month": "2018-01-01", "kwh": "1000", "max_demand": "10"},
            HTTP_HX_REQUEST="true",
        )
    )

    assert "<html" not in page  # only the result for the page to swap in
    assert "KES 8000.00" in page  # 10 kVA × 800
    assert "Energy, peak" in page and "Energy, off-peak" in page


def test_bad_sample_input_says_why(org, tariff, client_for):
    version = propose(tariff, org.billing)
    page = text(
        client_for(org.billing).get(
            reverse("billing:tariff-detail", args=[tariff.pk]),
            {"version": version.pk, "month": "2018-01-01", "kwh": "-5"},
        )
    )
    assert "kWh used in the month" in page and "greater than or equal to 0" in page
