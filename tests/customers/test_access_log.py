"""Who viewed, searched or downloaded a customer's personal data is logged, in every channel."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from customers import access
from customers.models import DataAccess, DataAccessSubject
from mcoms.core import clock
from tests import factories

AT = dt.datetime(2026, 5, 4, 9, 30, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def fixed_time(monkeypatch):
    monkeypatch.setattr(clock, "now", lambda: AT)


def _only_access() -> DataAccess:
    (entry,) = DataAccess.objects.all()
    return entry


def _subjects(entry: DataAccess) -> set[int]:
    return set(entry.subjects.values_list("customer_id", flat=True))


def test_the_customer_page_logs_who_when_where_and_whom(org, client_for):
    customer = factories.customer(org.block_a)
    client = client_for(org.site_manager)
    page = client.get(reverse("customers:detail", args=[customer.pk]), REMOTE_ADDR="10.1.2.3")
    assert page.status_code == 200
    entry = _only_access()
    assert (entry.actor, entry.actor_label, entry.at) == (org.site_manager, "site_manager", AT)
    assert (entry.channel, entry.action, entry.ip) == ("web", "view", "10.1.2.3")
    assert _subjects(entry) == {customer.pk}


def test_the_customer_page_shows_who_has_seen_the_data(org, client_for):
    customer = factories.customer(org.block_a)
    client_for(org.agent).get(reverse("fieldops:customer", args=[customer.pk]))
    page = client_for(org.site_manager).get(reverse("customers:detail", args=[customer.pk]))
    text = page.content.decode()
    assert "Who has seen this customer" in text
    assert "agent (agent_app) viewed, field app customer card" in text


def test_a_search_logs_the_words_and_each_customer_shown(org, client_for):
    found = [factories.customer(org.block_a, last_name="Nsubuga") for _ in range(3)]
    factories.customer(org.block_a, last_name="Other")
    client_for(org.site_manager).get(reverse("customers:list"), {"q": "nsubuga"})
    entry = _only_access()
    assert entry.action == "search" and entry.query == "q=nsubuga"
    assert _subjects(entry) == {c.pk for c in found}
    assert entry.subjects_count == 3


def test_logging_costs_two_inserts_whatever_the_number_of_customers(org, rf):
    customers = [factories.customer(org.block_a) for _ in range(30)]
    request = rf.get("/customers/")
    request.user = org.admin
    with CaptureQueriesContext(connection) as few:
        access.record(request, access.Action.EXPORT, customers[:2], what="test")
    with CaptureQueriesContext(connection) as many:
        access.record(request, access.Action.EXPORT, customers, what="test")
    assert len(many) == len(few) == 2
    assert DataAccessSubject.objects.count() == 32


def test_the_field_app_search_and_card_are_logged_as_the_agent_app(org, client_for):
    customer = factories.customer(org.block_a, last_name="Kizza")
    client = client_for(org.agent)
    client.get(reverse("fieldops:search"), {"q": "Kizza"})
    client.get(reverse("fieldops:customer", args=[customer.pk]))
    entries = list(DataAccess.objects.order_by("id"))
    assert [(e.channel, e.action) for e in entries] == [
        ("agent_app", "search"),
        ("agent_app", "view"),
    ]
    assert all(_subjects(e) == {customer.pk} for e in entries)


def test_the_api_list_and_detail_are_logged(org, client_for):
    mine = [factories.customer(org.block_a) for _ in range(2)]
    factories.customer(org.jinja_town)  # out of the manager's scope: not shown, not logged
    client = client_for(org.site_manager)
    assert client.get("/api/v1/customers/").status_code == 200
    assert client.get(f"/api/v1/customers/{mine[0].pk}/").status_code == 200
    listed, detail = DataAccess.objects.order_by("id")
    assert (listed.channel, listed.action, _subjects(listed)) == (
        "api",
        "export",
        {c.pk for c in mine},
    )
    assert (detail.channel, detail.action, _subjects(detail)) == ("api", "view", {mine[0].pk})


def test_the_admin_change_page_and_list_are_logged(org, client_for):
    customer = factories.customer(org.block_a)
    client = client_for(org.admin)
    change_page = reverse("admin:customers_customer_change", args=[customer.pk])
    assert client.get(change_page).status_code == 200
    client.get(reverse("admin:customers_customer_changelist"))
    viewed, listed = DataAccess.objects.order_by("id")
    assert (viewed.channel, viewed.action, _subjects(viewed)) == ("admin", "view", {customer.pk})
    assert (listed.channel, listed.action, _subjects(listed)) == ("admin", "search", {customer.pk})


def test_the_dashboard_customer_download_logs_every_customer_in_it(org, client_for):
    customers = [factories.customer(org.block_a) for _ in range(3)]
    url = reverse("dashboard:site", args=[org.block_a.pk])
    answer = client_for(org.site_manager).get(url, {"table": "customers", "export": "csv"})
    assert answer.status_code == 200
    entry = _only_access()
    assert entry.action == "export" and "csv" in entry.what
    assert _subjects(entry) == {c.pk for c in customers}


def test_a_customer_looking_at_their_own_account_is_not_logged(org, client_for):
    customer = factories.customer(org.block_a)
    from customers import services

    services.customer_link_user(customer=customer, user=org.customer)
    assert client_for(org.customer).get(reverse("customers:portal")).status_code == 200
    assert not DataAccess.objects.exists()


# --- The log's page ----------------------------------------------------------------------


def _seen(org, client_for):
    a = factories.customer(org.block_a)
    jinja = factories.customer(org.jinja_town)
    client_for(org.site_manager).get(reverse("customers:detail", args=[a.pk]))
    client_for(org.outsider_agent).get(reverse("fieldops:customer", args=[jinja.pk]))
    return a, jinja


def test_the_log_page_is_for_auditors_only(org, client_for):
    _seen(org, client_for)
    assert client_for(org.site_manager).get(reverse("customers:access_log")).status_code == 403
    assert client_for(org.admin).get(reverse("customers:access_log")).status_code == 200


def test_the_log_page_filters_by_customer_and_by_staff_member(org, client_for):
    a, jinja = _seen(org, client_for)
    client = client_for(org.admin)
    url = reverse("customers:access_log")
    by_customer = client.get(url, {"account": jinja.account_number}).context["rows"]
    assert [entry.actor_label for entry, _ in by_customer] == ["outsider_agent"]
    by_staff = client.get(url, {"actor": "site_manager"}).context["rows"]
    assert [shown for _, shown in by_staff] == [[(a.pk, a.account_number)]]


def test_a_regional_manager_sees_only_accesses_to_their_regions_customers(org, client_for):
    a, _jinja = _seen(org, client_for)
    rows = client_for(org.regional).get(reverse("customers:access_log")).context["rows"]
    assert [shown for _, shown in rows] == [[(a.pk, a.account_number)]]


def test_the_log_downloads(org, client_for):
    a, jinja = _seen(org, client_for)
    answer = client_for(org.admin).get(reverse("customers:access_log"), {"export": "csv"})
    text = answer.content.decode("utf-8-sig")
    assert answer["Content-Disposition"].startswith("attachment")
    assert "outsider_agent,agent_app,view,field app customer card" in text
    assert f",{jinja.pk}\r\n" in text and f",{a.pk}\r\n" in text


def test_the_log_is_read_only_in_the_admin(org, client_for):
    _seen(org, client_for)
    entry = DataAccess.objects.first()
    client = client_for(org.admin)
    assert client.get(reverse("admin:customers_dataaccess_changelist")).status_code == 200
    change = client.post(
        reverse("admin:customers_dataaccess_change", args=[entry.pk]), {"what": "x"}
    )
    assert change.status_code == 403
    delete = client.post(reverse("admin:customers_dataaccess_delete", args=[entry.pk]))
    assert delete.status_code == 403
    assert DataAccess.objects.get(pk=entry.pk).what == entry.what


def test_behind_a_proxy_the_client_address_is_logged_not_the_proxys(org, client_for, settings):
    settings.MCOMS_PROXY_COUNT = 1
    customer = factories.customer(org.block_a)
    client = client_for(org.site_manager)
    url = reverse("customers:detail", args=[customer.pk])
    client.get(url, REMOTE_ADDR="172.18.0.5", HTTP_X_FORWARDED_FOR="6.6.6.6, 41.210.3.4")
    client.get(url, REMOTE_ADDR="172.18.0.5", HTTP_X_FORWARDED_FOR="not an address")
    assert list(DataAccess.objects.order_by("pk").values_list("ip", flat=True)) == [
        "41.210.3.4",
        None,
    ]
