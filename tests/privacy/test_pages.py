"""The archive on request and anonymising, from the staff pages: who may, and what it does."""

from __future__ import annotations

import io
import json
import zipfile

from django.urls import reverse

from customers.models import Customer, DataAccess
from mcoms.core.models import AuditEvent
from tests import factories


def _archive(client, customer) -> zipfile.ZipFile:
    answer = client.post(reverse("privacy:export", args=[customer.pk]))
    assert answer.status_code == 200 and answer["Content-Type"] == "application/zip"
    return zipfile.ZipFile(io.BytesIO(answer.content))


def test_the_archive_holds_every_part_of_her_data(zawadi, org, client_for):
    archive = _archive(client_for(org.admin), zawadi)
    data = json.loads(archive.read("data.json"))["sections"]
    assert data["account"][0]["phone"] == "+256772555123"
    assert data["account"][0]["email"] == "zawadi.k@example.org"
    assert [r["total"] for r in data["invoices"]]
    assert {r["amount"] for r in data["payments"]} == {"5000.00"}
    assert sum(float(r["amount"]) for r in data["ledger_entries"]) != 0
    assert data["payment_requests"][0]["phone"] == "+256772555123"
    assert data["daily_usage"][0]["kwh"] == "2.400"
    assert "your bill is ready" in data["messages_sent"][0]["body"]
    assert data["opt_outs"][0]["address"] == "+256701555777"
    assert data["ussd_sessions"][0]["session_id"] == "s1"
    assert data["sms_received"][0]["text"] == "BAL Zawadi"
    assert data["portal_sign_ins"][0]["method"] == "pin"
    assert "pin_hash" not in data["ussd_pin"][0]
    assert data["service_requests"][0]["description"].startswith("Zawadi Kyomuhendo")
    assert data["field_visits"][0]["note"] == "Spoke to Zawadi"
    assert data["field_tasks"][0]["title"] == "Visit Zawadi Kyomuhendo"
    assert data["status_history"][-1]["to_status"] == "closed"
    assert any(r["what"] == "subject access archive" for r in data["data_access_log"])
    assert "invoices.csv" in archive.namelist() and "README.txt" in archive.namelist()
    assert "+256772555123" in archive.read("account.csv").decode()


def test_the_archive_is_logged_as_an_export(zawadi, org, client_for):
    _archive(client_for(org.admin), zawadi)
    entry = DataAccess.objects.get(what="subject access archive")
    assert (entry.actor, entry.action) == (org.admin, "export")
    assert list(entry.subjects.values_list("customer_id", flat=True)) == [zawadi.pk]


def test_the_archive_holds_no_one_elses_data(org, client_for):
    mine = factories.customer(org.block_a, first_name="Mine")
    other = factories.customer(org.block_a, first_name="Other")
    data = json.loads(_archive(client_for(org.admin), mine).read("data.json"))["sections"]
    assert [r["id"] for r in data["account"]] == [mine.pk]
    assert other.phone not in json.dumps(data)


def test_who_may_export_and_anonymise(zawadi, org, client_for):
    page = reverse("privacy:customer", args=[zawadi.pk])
    assert client_for(org.site_manager).get(page).status_code == 403
    assert (
        client_for(org.billing).post(reverse("privacy:export", args=[zawadi.pk])).status_code == 403
    )
    assert client_for(org.regional).get(page).status_code == 200
    erase = reverse("privacy:anonymise", args=[zawadi.pk])
    assert (
        client_for(org.regional).post(erase, {"confirm": zawadi.account_number}).status_code == 403
    )
    assert Customer.objects.get(pk=zawadi.pk).anonymised_at is None


def test_anonymising_takes_the_account_number_typed_back(zawadi, org, client_for):
    client = client_for(org.admin)
    url = reverse("privacy:anonymise", args=[zawadi.pk])
    confirm = client.get(url)
    assert confirm.status_code == 200 and "cannot be undone" in confirm.content.decode()
    assert client.post(url, {"confirm": "yes"}).status_code == 400
    assert Customer.objects.get(pk=zawadi.pk).anonymised_at is None
    done = client.post(url, {"confirm": zawadi.account_number})
    assert done.status_code == 302
    zawadi.refresh_from_db()
    assert zawadi.first_name == f"Anonymised customer #{zawadi.pk}"
    event = AuditEvent.objects.get(
        object_type="customers.customer",
        object_id=str(zawadi.pk),
        note="personal data anonymised (account closed)",
    )
    assert (event.actor, event.channel) == (org.admin, "web")


def test_an_open_account_is_refused_with_a_clear_message(org, client_for):
    c = factories.customer(org.block_a, first_name="Open", status="active")
    client = client_for(org.admin)
    answer = client.post(
        reverse("privacy:anonymise", args=[c.pk]), {"confirm": c.account_number}, follow=True
    )
    assert "only a closed account can be anonymised" in answer.content.decode()
    c.refresh_from_db()
    assert c.first_name == "Open"
