"""Forms sent from the field app are applied once per client_id, however often they arrive."""

from __future__ import annotations

import threading
import uuid
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client

from billing.payments.models import Payment
from fieldops.models import Submission
from tests import factories

pytestmark = pytest.mark.django_db
QUEUED = {"HTTP_X_QUEUED": "1"}


@pytest.fixture
def grace(org):
    return factories.customer(org.block_a, first_name="Grace", last_name="Nakato")


def pay(client: Client, customer, amount="5000", client_id=None, **headers):
    data = {"amount": amount, "note": ""}
    if client_id is not None:
        data["client_id"] = str(client_id)
    return client.post(f"/field/customers/{customer.pk}/pay/", data, **headers)


def test_the_same_form_twice_makes_one_payment_and_the_same_answer(org, client_for, grace):
    agent = client_for(org.agent)
    form_id = uuid.uuid4()
    first = pay(agent, grace, client_id=form_id)
    payment = Payment.objects.get()
    assert first.status_code == 302 and first.url == f"/field/receipts/{payment.pk}/"
    again = pay(agent, grace, client_id=form_id)
    assert again.status_code == 302 and again.url == first.url
    assert Payment.objects.count() == 1
    submission = Submission.objects.get(client_id=form_id)
    assert submission.status == Submission.Status.APPLIED
    assert submission.action == "cash_payment" and submission.object_ref == f"payment:{payment.pk}"
    assert submission.user == org.agent


def test_a_queued_send_gets_json_and_a_replay_says_duplicate(org, client_for, grace):
    agent = client_for(org.agent)
    form_id = uuid.uuid4()
    first = pay(agent, grace, client_id=form_id, **QUEUED)
    payment = Payment.objects.get()
    assert first.json() == {"status": "applied", "url": f"/field/receipts/{payment.pk}/"}
    replay = pay(agent, grace, client_id=form_id, **QUEUED)
    assert replay.json() == {"status": "duplicate", "url": f"/field/receipts/{payment.pk}/"}
    assert Payment.objects.count() == 1


def test_a_refused_queued_form_comes_back_with_its_message_and_changes_nothing(
    org, client_for, grace
):
    agent = client_for(org.agent)
    form_id = uuid.uuid4()
    answer = pay(agent, grace, amount="-5", client_id=form_id, **QUEUED).json()
    assert answer["status"] == "rejected"
    assert "Amount received" in answer["message"] and "greater than or equal" in answer["message"]
    assert not Payment.objects.exists()
    # Replayed, it is still refused with the same message: never silently dropped or applied.
    again = pay(agent, grace, amount="-5", client_id=form_id, **QUEUED).json()
    assert again == {"status": "rejected", "message": answer["message"], "duplicate": True}
    home = agent.get("/field/")
    assert "Needs attention" in home.content.decode() and answer["message"] in home.content.decode()


def test_a_fix_sent_as_a_new_form_settles_the_refusal(org, client_for, grace):
    agent = client_for(org.agent)
    refused_id, fix_id = uuid.uuid4(), uuid.uuid4()
    assert pay(agent, grace, amount="-5", client_id=refused_id, **QUEUED).json()["status"] == (
        "rejected"
    )
    fixed = agent.post(
        f"/field/customers/{grace.pk}/pay/",
        {"amount": "500", "client_id": str(fix_id), "fixes": str(refused_id)},
        **QUEUED,
    )
    assert fixed.json()["status"] == "applied" and Payment.objects.count() == 1
    assert "Needs attention" not in agent.get("/field/").content.decode()
    # The refused id keeps its own answer: replaying it applies nothing.
    assert pay(agent, grace, amount="500", client_id=refused_id, **QUEUED).json()["status"] == (
        "rejected"
    )
    assert Payment.objects.count() == 1


def test_a_refused_form_on_the_page_shows_its_errors_and_keeps_the_typed_values(
    org, client_for, grace
):
    response = pay(client_for(org.agent), grace, amount="12abc", client_id=uuid.uuid4())
    body = response.content.decode()
    assert response.status_code == 200 and "Enter a number." in body
    assert 'value="12abc"' in body


def test_a_form_without_client_id_just_runs(org, client_for, grace):
    agent = client_for(org.agent)
    pay(agent, grace)
    pay(agent, grace)
    assert Payment.objects.count() == 2
    assert not Submission.objects.exists()


def test_another_persons_client_id_is_refused(org, client_for, grace):
    form_id = uuid.uuid4()
    pay(client_for(org.agent), grace, client_id=form_id)
    other = pay(client_for(org.supervisor), grace, client_id=form_id, **QUEUED)
    assert other.status_code == 409 and other.json()["status"] == "rejected"
    assert Payment.objects.count() == 1


def test_a_form_the_person_may_not_send_is_not_recorded(org, client_for, grace):
    response = pay(client_for(org.outsider_agent), grace, client_id=uuid.uuid4(), **QUEUED)
    assert response.status_code == 404
    assert not Payment.objects.exists() and not Submission.objects.exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_sends_at_the_same_moment_apply_once(org, grace):
    """Two connections send one form at once; the unique id lets exactly one through."""
    form_id = uuid.uuid4()
    barrier = threading.Barrier(2)
    answers: list = []

    def send():
        try:
            client = Client()
            client.force_login(org.agent)
            barrier.wait()
            answers.append(pay(client, grace, client_id=form_id, **QUEUED).json()["status"])
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(answers) == ["applied", "duplicate"]
    assert Payment.objects.count() == 1
    assert Payment.objects.get().amount == Decimal("5000")
    assert Submission.objects.filter(client_id=form_id).count() == 1
