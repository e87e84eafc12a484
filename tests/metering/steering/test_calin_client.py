"""The Calin client against the fake head-end: tasks, polls, faults, data, status codes."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import httpx
import pytest

from metering.steering import calin, codes


def test_control_task_is_created_and_polled_until_done(fake):
    client = calin.Client()
    task = client.remote_control("47001", on=False)
    assert fake.calls("/COMM_RemoteControl")[0]["DataItem"] == "Switch Off"
    assert fake.calls("/COMM_RemoteControl")[0]["CompanyName"] == "DemoGrid"
    first = client.poll("Control", task)
    assert first.status == "pending"  # Status null or "unknown"
    assert fake.meters["47001"].relay_on is True
    second = client.poll("Control", task)
    assert second.status == "done"
    assert fake.meters["47001"].relay_on is False


def test_pending_status_forms_and_failed_task(fake):
    assert calin.task_status(None) == calin.task_status("unknown") == "pending"
    assert calin.task_status("True") == "done"
    assert calin.task_status("False") == "failed"
    client = calin.Client()
    fake.fail_next("task_fails", "/COMM_RemoteControl")
    task = client.remote_control("47001", on=False)
    client.poll("Control", task)
    assert client.poll("Control", task).status == "failed"
    assert fake.meters["47001"].relay_on is True


def test_html_body_is_a_gateway_failure(fake):
    fake.fail_next("html", "/COMM_RemoteControl")
    with pytest.raises(calin.GatewayError, match="gateway error"):
        calin.Client().remote_control("47001", on=False)


def test_other_errors_carry_the_message(fake):
    fake.fail_next("server_error", "/COMM_RemoteReading")
    with pytest.raises(calin.CalinError, match="An error has occurred"):
        calin.Client().remote_reading("47001")


def test_no_task_number_means_nothing_scheduled(fake):
    fake.fail_next("no_task", "/COMM_RemoteControl")
    with pytest.raises(calin.NotScheduled):
        calin.Client().remote_control("47001", on=True)


def test_result_code_99_is_rejected(fake):
    fake.fail_next("reject", "/COMM_RemoteControlTask")
    with pytest.raises(calin.Rejected):
        calin.Client().poll("Control", "1")


def test_timeout_is_its_own_error(fake):
    fake.fail_next("timeout", "/COMM_OnlineStatus")
    with pytest.raises(calin.CalinTimeout):
        calin.Client().online_status()


def test_wrong_credentials_are_refused(fake, settings):
    settings.CALIN_PASSWORD = "wrong"
    with pytest.raises(calin.CalinError, match="ResultCode 01"):
        calin.Client().remote_control("47001", on=True)


def test_remote_reading_of_the_credit_register(fake):
    fake.meters["47001"].credit_kwh = Decimal("12.5")
    client = calin.Client()
    task = client.remote_reading("47001")
    client.poll("Reading", task)
    state = client.poll("Reading", task)
    assert state.data == "12.5,ON"
    reading = calin.parse_credit(state.data)
    assert reading == calin.CreditReading(kwh=Decimal("12.5"), relay_on=True)
    assert calin.parse_credit("3,OFF").relay_on is False
    assert calin.parse_credit("garbage").relay_on is None


def test_online_status_and_daily_data(fake):
    fake.concentrators.update({"C-1": True, "C-2": False})
    fake.meters["47001"].daily["2026-04-06"] = Decimal("321.5")
    client = calin.Client()
    assert client.online_status() == {"C-1": True, "C-2": False}
    row = client.daily_data("47001", dt.date(2026, 4, 6))
    assert row["TotalUnitsCounter"] == "321.5" and row["RelayStatus"] == 1
    sent = fake.calls("/COMM_DailyData")[0]["QueryList"]
    assert sent == [{"MeterNo": "47001", "Year": 2026, "Month": 4, "Day": 6}]


def test_transport_failure_is_a_calin_error():
    client = calin.Client(base_url="http://127.0.0.1:9", transport=httpx.HTTPTransport(retries=0))
    with pytest.raises(calin.CalinError):
        client.online_status()


def test_status_codes_decode_with_the_field_action():
    code = codes.decode("1007")
    assert code.meaning == "Remote disconnect" and code.category == "backend"
    assert "reconnect if it was not intended" in code.field_action
    # short code 87 sub-codes map to the same rows
    assert codes.decode("05") == codes.decode(5) == codes.decode("1005")
    assert codes.decode("05").is_tamper
    assert codes.decode("1002") is None and codes.decode("x") is None
    assert "clear-tamper token" in codes.describe("14")
    assert len(codes.status_codes()) == 22
    assert codes.short_codes()["87"].use.startswith("Look the sub-code up")


def test_monthly_and_hourly_data_use_their_own_calls(fake):
    fake.meters["47001"].total_kwh = Decimal("77")
    client = calin.Client()
    assert client.monthly_data("47001", dt.date(2026, 3, 1))["TotalUnitsCounter"] == "77"
    assert client.hourly_data("47001", dt.date(2026, 3, 2))["RelayStatus"] == 1
    assert len(fake.calls("/COMM_MonthlyData")) == len(fake.calls("/COMM_HourlyData")) == 1
