"""A client of Calin's AMI head-end (V1 "COMM" API) and its POS vending calls.

Every call is a POST with the company, user and password in a JSON body. Commands are
asynchronous tasks: creating one answers a ``TaskNo``, polling it answers ``Status``
null/"unknown" (pending), "True" (done) or "False" (delivered but failed). ResultCode
"99" without a result means the head-end rejected the task (a token already used): it is
never retried. An HTML body means the gateway in front of the head-end failed.

The client does one HTTP call per method and raises :class:`CalinError` (or its
subclasses) for anything but a clean answer; waiting and retrying are the caller's job
(see :mod:`metering.steering.engine`), so nothing here sleeps.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

import httpx
from django.conf import settings

SWITCH_ON, SWITCH_OFF = "Switch On", "Switch Off"
CREDIT_REGISTER = "Current Credit Register"
KINDS = ("Control", "Reading", "Token")


class CalinError(Exception):
    """The head-end did not answer cleanly; the call may be tried again later."""


class GatewayError(CalinError):
    """An HTML page instead of JSON: the gateway in front of the head-end failed."""


class CalinTimeout(CalinError):
    """No answer in time: the call may or may not have taken effect."""


class Unreachable(CalinError):
    """No connection could be made (refused, no route, a time-out while connecting):
    the call surely did nothing."""


class Rejected(CalinError):
    """ResultCode 99 (or a refusal): the head-end will not do it; do not retry."""


class NotScheduled(CalinError):
    """An answer without a TaskNo: nothing was scheduled."""


@dataclass(frozen=True)
class TaskState:
    """One poll of a task."""

    task_no: str
    status: str  # "pending", "done" or "failed"
    data_item: str = ""
    data: str = ""


@dataclass(frozen=True)
class CreditReading:
    """``"<kWh>,ON|OFF"``: the credit register and the relay state with it."""

    kwh: Decimal | None
    relay_on: bool | None


def parse_credit(data: str) -> CreditReading:
    """Read ``"12.5,ON"``; parts that do not parse come back as None."""
    parts = [p.strip() for p in (data or "").split(",")]
    try:
        kwh = Decimal(parts[0]) if parts and parts[0] else None
    except InvalidOperation:
        kwh = None
    relay = parts[1].upper() if len(parts) > 1 else ""
    return CreditReading(kwh=kwh, relay_on={"ON": True, "OFF": False}.get(relay))


def task_status(raw) -> str:
    """The contract's Status as pending / done / failed."""
    text = "" if raw is None else str(raw).strip().lower()
    if text == "true":
        return "done"
    if text == "false":
        return "failed"
    return "pending"


class Client:
    """Calls of the head-end; credentials and base URL from settings unless given."""

    def __init__(
        self,
        *,
        base_url: str | None = None,
        timeout: float | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = (base_url or settings.CALIN_BASE_URL).rstrip("/")
        self.timeout = timeout if timeout is not None else settings.CALIN_TIMEOUT
        self._transport = transport

    # --- plumbing -------------------------------------------------------------------------
    def _credentials(self) -> dict:
        return {
            "CompanyName": settings.CALIN_COMPANY,
            "UserName": settings.CALIN_USER,
            "Password": settings.CALIN_PASSWORD,
        }

    def _post(self, path: str, body: dict) -> dict:
        try:
            with httpx.Client(timeout=self.timeout, transport=self._transport) as http:
                response = http.post(f"{self.base_url}{path}", json=body)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise Unreachable(f"{path}: head-end unreachable ({exc.__class__.__name__})") from exc
        except httpx.TimeoutException as exc:
            raise CalinTimeout(f"{path}: no answer in {self.timeout:g} s") from exc
        except httpx.HTTPError as exc:
            raise CalinError(f"{path}: {exc.__class__.__name__}: {exc}") from exc
        text = response.text.lstrip()
        if text[:1] == "<" or "html" in response.headers.get("content-type", ""):
            raise GatewayError(f"{path}: gateway error (HTTP {response.status_code}, HTML page)")
        try:
            data = response.json()
        except ValueError as exc:
            raise CalinError(f"{path}: HTTP {response.status_code}, not JSON") from exc
        if response.status_code >= 400:
            message = data.get("Message") if isinstance(data, dict) else None
            raise CalinError(f"{path}: HTTP {response.status_code}: {message or data}")
        if not isinstance(data, dict):
            raise CalinError(f"{path}: unexpected answer {data!r}")
        return data

    def _call(self, path: str, **fields) -> dict:
        data = self._post(path, {**self._credentials(), **fields})
        code = str(data.get("ResultCode", "")).strip()
        if code == "99" and not data.get("Result"):
            raise Rejected(f"{path}: rejected: {data.get('Reason') or 'ResultCode 99'}")
        if code not in ("00", "0"):
            raise CalinError(f"{path}: ResultCode {code or '?'}: {data.get('Reason', '')}")
        return data

    def _task(self, path: str, **fields) -> str:
        result = self._call(path, **fields).get("Result") or {}
        task_no = result.get("TaskNo") if isinstance(result, dict) else None
        if not task_no:
            raise NotScheduled(f"{path}: no TaskNo in the answer: nothing was scheduled")
        return str(task_no)

    # --- asynchronous tasks ----------------------------------------------------------------
    def remote_control(self, meter_no: str, *, on: bool) -> str:
        """Ask the head-end to switch the relay; returns the task number."""
        item = SWITCH_ON if on else SWITCH_OFF
        return self._task("/COMM_RemoteControl", MeterNo=meter_no, DataItem=item)

    def remote_reading(self, meter_no: str, data_item: str = CREDIT_REGISTER) -> str:
        """Ask the meter for one value; returns the task number."""
        return self._task("/COMM_RemoteReading", MeterNo=meter_no, DataItem=data_item)

    def remote_token(self, meter_no: str, token: str) -> str:
        """Push a token to the meter; returns the task number."""
        return self._task("/COMM_RemoteToken", MeterNo=meter_no, Token=token)

    def poll(self, kind: str, task_no: str) -> TaskState:
        """One poll of a Control, Reading or Token task."""
        if kind not in KINDS:
            raise ValueError(f"unknown task kind {kind!r}")
        result = self._call(f"/COMM_Remote{kind}Task", TaskNo=task_no).get("Result") or {}
        if not isinstance(result, dict):
            raise CalinError(f"task {task_no}: unexpected result {result!r}")
        return TaskState(
            task_no=str(result.get("TaskNo") or task_no),
            status=task_status(result.get("Status")),
            data_item=str(result.get("DataItem") or ""),
            data="" if result.get("Data") is None else str(result.get("Data")),
        )

    # --- synchronous queries ---------------------------------------------------------------
    def online_status(self) -> dict[str, bool]:
        """Each concentrator's online state."""
        rows = self._call("/COMM_OnlineStatus").get("Result") or []
        return {
            str(row.get("ConcentratorNo")): str(row.get("Status")).strip().lower()
            in ("1", "true", "online")
            for row in rows
            if isinstance(row, dict)
        }

    def _data(self, path: str, meter_no: str, day: dt.date) -> dict | None:
        query = [{"MeterNo": meter_no, "Year": day.year, "Month": day.month, "Day": day.day}]
        rows = self._call(path, QueryList=query).get("Result") or []
        return rows[0] if rows and isinstance(rows[0], dict) else None

    def daily_data(self, meter_no: str, day: dt.date) -> dict | None:
        """The meter's frozen values of ``day`` (TotalUnitsCounter, RelayStatus, …)."""
        return self._data("/COMM_DailyData", meter_no, day)

    def monthly_data(self, meter_no: str, day: dt.date) -> dict | None:
        return self._data("/COMM_MonthlyData", meter_no, day)

    def hourly_data(self, meter_no: str, day: dt.date) -> dict | None:
        return self._data("/COMM_HourlyData", meter_no, day)

    # --- POS vending -----------------------------------------------------------------------
    def _pos_credentials(self) -> dict:
        return {
            "company_name": settings.CALIN_COMPANY,
            "user_name": settings.CALIN_POS_USER,
            "password": settings.CALIN_POS_PASSWORD,
            "password_vend": settings.CALIN_POS_VEND_PASSWORD,
        }

    def _pos(self, path: str, **fields) -> dict:
        data = self._post(path, {**self._pos_credentials(), **fields})
        code = str(data.get("result_code", "")).strip()
        if code == "99":
            raise Rejected(f"{path}: rejected: {data.get('reason') or 'result_code 99'}")
        if code != "0":
            raise CalinError(f"{path}: result_code {code or '?'}: {data.get('reason', '')}")
        return data

    def pos_purchase(self, meter_no: str, kwh: Decimal) -> str:
        """Buy ``kwh`` for the meter; returns the token. Not idempotent: see vending."""
        data = self._pos(
            "/POS_Purchase", meter_number=meter_no, is_vend_by_unit=True, amount=str(kwh)
        )
        token = (data.get("result") or {}).get("token")
        if not token:
            raise CalinError("/POS_Purchase: no token in the answer")
        return str(token)

    def pos_history(self, meter_no: str, since: dt.datetime) -> list[dict]:
        """Purchases of the meter since ``since``: ``[{token, amount, time}]``."""
        data = self._pos(
            settings.CALIN_POS_HISTORY_PATH,
            meter_number=meter_no,
            start_time=since.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S"),
        )
        rows = data.get("result") or []
        return [row for row in rows if isinstance(row, dict)]
