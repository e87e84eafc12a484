"""The dashboard pages: what each level shows, scope, downloads, and a fixed number of
queries on the site page whatever the number of customers."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from decimal import Decimal as D

import pytest
from django.urls import reverse
from openpyxl import load_workbook

from tests import factories

pytestmark = pytest.mark.django_db


def url(name, *args, **query):
    base = reverse(f"dashboard:{name}", args=args)
    return base + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def test_the_site_page_shows_the_books_figures(org, book, client_for):
    page = client_for(org.site_manager).get(url("site", org.block_a.pk, preset="last_30"))
    assert page.status_code == 200
    html = page.content.decode()
    text = " ".join(re.sub(r"<[^>]+>", " ", html).split())
    for shown in (
        "UGX 12,000",  # billed
        "UGX 10,000",  # collected
        "Collection rate 83.3 %",
        "ARPU UGX 6,000",
        "60.5 kWh",  # energy delivered
        "1.5 kWh of it estimated",
        "1 customer in arrears today",
        "1 offline",
        "1 outage incident open",
    ):
        assert shown in text, shown
    # The customer table follows in its own request, as soon as the page has loaded.
    table_url = re.search(r'id="customers" hx-get="([^"]+)" hx-trigger="load"', html).group(1)
    table = client_for(org.site_manager).get(table_url.replace("&amp;", "&")).content.decode()
    akello = book.customers["akello"]
    assert akello.account_number in table
    assert url("customer", akello.pk) in table


def test_each_level_links_one_level_down_to_the_meter_page(org, book, client_for):
    client = client_for(org.regional)
    home = client.get(url("home")).content.decode()
    assert url("site", org.block_a.pk) in home
    region = client.get(url("region", org.central.pk)).content.decode()
    assert url("cluster", org.kampala.pk) in region and url("site", org.block_b.pk) in region
    cluster = client.get(url("cluster", org.kampala.pk)).content.decode()
    assert url("site", org.block_a.pk) in cluster
    akello = book.customers["akello"]
    customer = client.get(url("customer", akello.pk)).content.decode()
    assert reverse("metering:meter", args=[book.meters["online"].pk]) in customer
    assert reverse("customers:detail", args=[akello.pk]) in customer
    assert "online" in customer


def test_scope(org, book, client_for):
    regional = client_for(org.regional)
    assert regional.get(url("region", org.eastern.pk)).status_code == 404
    assert regional.get(url("site", org.jinja_town.pk)).status_code == 404
    manager = client_for(org.site_manager)
    assert manager.get(url("site", org.block_b.pk)).status_code == 404
    assert manager.get(url("cluster", org.kampala.pk)).status_code == 200  # only Block A in it
    assert manager.get(url("customer", book.customers["dan"].pk)).status_code == 404
    page = manager.get(url("home")).content.decode()
    assert "Block A" in page and "Block B" not in page
    for name, args in (("home", ()), ("site", (org.block_a.pk,)), ("region", (org.central.pk,))):
        assert client_for(org.customer).get(url(name, *args)).status_code == 403


def test_field_agents_see_no_money(org, book, client_for):
    page = client_for(org.agent).get(url("site", org.block_a.pk)).content.decode()
    assert "Collected" not in page and "Arrears" not in page


def test_a_wrong_date_range_says_why_and_shows_this_month(org, book, client_for):
    page = client_for(org.admin).get(url("home", **{"from": "2026-05-10", "to": "2026-05-01"}))
    assert "The end date is before the start date." in page.content.decode()


def test_sites_table_downloads_as_csv_and_excel(org, book, client_for):
    client = client_for(org.cluster)
    response = client.get(
        url("cluster", org.kampala.pk, preset="last_30", table="sites", export="csv")
    )
    assert response["Content-Disposition"].startswith('attachment; filename="sites-kla-')
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0][:3] == ["Site", "Cluster", "Applicants"]
    block_a = next(r for r in rows if r[0] == "Block A")
    head = rows[0]
    assert block_a[head.index("Energy kWh")] == "60.5"
    assert D(block_a[head.index("Billed")]) == D("12000")
    response = client.get(url("cluster", org.kampala.pk, table="sites", export="xlsx"))
    sheet = load_workbook(io.BytesIO(response.content)).active
    assert sheet["A1"].value == "Site"
    assert client.get(url("cluster", org.kampala.pk, table="nope", export="csv")).status_code == 404
    assert (
        client.get(url("cluster", org.kampala.pk, table="sites", export="pdf")).status_code == 400
    )


def test_customer_and_meter_tables_download(org, book, client_for):
    client = client_for(org.site_manager)
    response = client.get(
        url("site", org.block_a.pk, preset="last_30", table="customers", export="csv")
    )
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0] == ["Account", "Name", "Status", "Energy kWh", "Billed", "Collected", "Balance"]
    akello = next(r for r in rows if r[1] == "Akello Apio")
    assert [D(v) for v in akello[4:]] == [D("4000"), D("2000"), D("12000")]
    response = client.get(
        url("customer", book.customers["akello"].pk, table="meters", export="csv")
    )
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[1][0] == book.meters["online"].serial and rows[1][3] == "online"


def test_the_customer_table_pages_and_sorts_through_htmx(org, book, client_for):
    for n in range(55):
        factories.customer(org.block_a, first_name=f"Extra{n:02d}")
    client = client_for(org.site_manager)
    first = client.get(
        url("site", org.block_a.pk, part="customers", sort="balance"), HTTP_HX_REQUEST="true"
    )
    html = first.content.decode()
    assert "<h1" not in html  # only the table
    assert "58 customers" in html and "Page 1 of 2" in html
    assert html.index(book.customers["akello"].account_number) < html.index("Extra00")  # owes most
    second = client.get(
        url("site", org.block_a.pk, part="customers", page=2), HTTP_HX_REQUEST="true"
    )
    assert "Page 2 of 2" in second.content.decode()


def test_the_site_page_takes_a_fixed_number_of_queries(
    org, book, client_for, django_assert_max_num_queries
):
    client = client_for(org.site_manager)
    path = url("site", org.block_a.pk, preset="this_year")
    client.get(path)
    with django_assert_max_num_queries(30) as few:
        client.get(path)
    for n in range(60):
        factories.customer(org.block_a, first_name=f"More{n:02d}", status="active")
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert client.get(path).status_code == 200
    table = url("site", org.block_a.pk, preset="this_year", part="customers", sort="balance")
    # 10 for the table, 2 for the personal-data access log (the request and its customers,
    # docs/personal-data.md), 1 for the sign-in's second-factor check (docs/security.md).
    with django_assert_max_num_queries(13) as few:
        client.get(table)
    for n in range(60, 120):
        factories.customer(org.block_a, first_name=f"More{n:02d}", status="active")
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert "123 customers" in client.get(table).content.decode()


def test_the_home_page_keeps_the_sites_table_and_overdue_meters(org, book, client_for):
    page = client_for(org.site_manager).get(url("home")).content.decode()
    assert "<h2>Sites</h2>" in page and "Overdue meters" in page


def test_the_customer_page_adds_up_their_meters_days(org, book, client_for):
    from metering.models import DailyUsage

    yesterday = book.today - dt.timedelta(days=1)
    meter = book.meters["online"]
    DailyUsage.objects.bulk_create(
        [
            DailyUsage(meter=meter, day=yesterday, kwh=D("3.5"), estimated_kwh=D("0.5")),
            DailyUsage(meter=meter, day=book.today, kwh=D("1.25")),
            DailyUsage(meter=meter, day=book.today - dt.timedelta(days=60), kwh=D("9")),
        ]
    )
    akello = book.customers["akello"]
    page = client_for(org.site_manager).get(url("customer", akello.pk, preset="last_30"))
    text = " ".join(re.sub(r"<[^>]+>", " ", page.content.decode()).split())
    assert "Energy used 4.8 kWh" in text  # 3.5 + 1.25, not the day 60 days ago
    assert f"{yesterday:%d %b} 3.0 0.5" in text  # the chart's numbers: metered, estimated
    assert "Billed UGX 4,000" in text and "Balance UGX 12,000" in text


def test_the_numbers_behind_charts_and_ageing_download(org, book, client_for):
    client = client_for(org.site_manager)

    def table(name, **query):
        response = client.get(url("site", org.block_a.pk, table=name, export="csv", **query))
        assert response.status_code == 200, name
        return list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))

    energy = table("energy", preset="last_30")
    assert energy[0] == ["Period", "Energy kWh", "Estimated kWh"] and len(energy) == 31
    assert sum(D(r[1]) for r in energy[1:]) == D("60.5")
    arrears = dict((r[0], r[1]) for r in table("arrears")[1:])
    assert D(arrears["31–60 days"]) == D("8000") and D(arrears["0–30 days"]) == D("4000")
    money = table("money", preset="last_30")
    assert sum(D(r[2]) for r in money[1:]) == D("12000")
    assert sum(D(r[3]) for r in money[1:]) == D("10000")
    profile = table("profile", preset="last_30")
    assert len(profile) == 25
    page = client.get(url("site", org.block_a.pk)).content.decode()
    assert "table=profile&amp;export=xlsx" in page
