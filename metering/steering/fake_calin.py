"""A fake Calin head-end: a real HTTP server on a local port, for tests and the demo.

It speaks the V1 COMM and POS calls of the contract (see docs/steering.md) with their
asynchronous tasks: a task stays pending for ``pending_polls`` polls (or, for the demo,
``pending_seconds``), then is done and takes effect (the relay switches when its control
task completes). Faults are queued per path with :meth:`FakeCalin.fail_next`:

* ``html`` — a gateway's HTML error page (HTTP 502)
* ``server_error`` — HTTP 500 with ``{"Message": …}``
* ``timeout`` — the call takes effect but the answer comes after ``slow_seconds``
* ``no_task`` — ResultCode 00 without a TaskNo (nothing scheduled)
* ``reject`` — ResultCode 99 without a Result
* ``task_fails`` — the task created by the call ends with Status "False"
* ``stuck`` — the task created by the call never leaves pending

Pushing a token the meter already took is rejected (ResultCode 99 when polled). Every
request is recorded in ``requests`` (path and JSON body); :meth:`FakeCalin.operations`
lists the relay operations a meter received. :meth:`FakeCalin.stop` closes the port (the
head-end unreachable: connection refused) and :meth:`FakeCalin.start` opens it again.
Run it alone with ``python -m metering.steering.fake_calin --port 8765``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import secrets
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FAULTS = {"html", "server_error", "timeout", "no_task", "reject", "task_fails", "stuck"}
COMPANY, USER, PASSWORD = "DemoGrid", "ops", "ops-pass"
POS_USER, POS_PASSWORD, VEND_PASSWORD = "pos", "pos-pass", "vend-pass"


@dataclass
class FakeMeter:
    relay_on: bool = True
    credit_kwh: Decimal = Decimal("0")
    total_kwh: Decimal = Decimal("0")
    status_code: str = "1000"
    daily: dict[str, Decimal] = field(default_factory=dict)  # "YYYY-MM-DD" → kWh
    tokens_used: set[str] = field(default_factory=set)


@dataclass
class Task:
    kind: str
    meter_no: str
    data_item: str
    token: str = ""
    polls: int = 0
    created: float = 0.0
    fate: str = ""  # "", "task_fails", "stuck"
    finished: str = ""  # "", "True", "False", "99"
    data: str = ""


class FakeCalin:
    """The head-end on 127.0.0.1; point ``CALIN_BASE_URL`` at :attr:`base_url`."""

    slow_seconds = 1.0

    def __init__(self, *, port: int = 0, pending_polls: int = 1, pending_seconds: float = 0):
        self.meters: dict[str, FakeMeter] = defaultdict(FakeMeter)
        self.concentrators: dict[str, bool] = {}
        self.tasks: dict[str, Task] = {}
        self.purchases: list[dict] = []
        self.requests: list[tuple[str, dict]] = []
        self.pending_polls = pending_polls
        self.pending_seconds = pending_seconds
        self._faults: dict[str, deque[str]] = defaultdict(deque)
        self._numbers = itertools.count(5001)
        self._lock = threading.RLock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except ValueError:
                    body = {}
                status, text, ctype, delay = fake._answer(self.path, body)
                if delay:
                    time.sleep(delay)
                data = text.encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting (a timeout test)

            def log_message(self, format, *args) -> None:  # noqa: A002 - the base's name
                pass

        self._handler = Handler
        self.port = port
        self.server: ThreadingHTTPServer | None = None
        self.start()
        self.base_url = f"http://127.0.0.1:{self.port}/api"

    def start(self) -> None:
        """Listen (again) on the fake's port: the head-end is reachable."""
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Close the port: every call is refused until :meth:`start`."""
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    # --- control of the fake ---------------------------------------------------------------
    def fail_next(self, fault: str, path: str, times: int = 1) -> None:
        """Answer the next ``times`` calls of ``path`` (e.g. "/COMM_RemoteControl") badly."""
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}")
        with self._lock:
            self._faults[path].extend([fault] * times)

    def calls(self, path: str) -> list[dict]:
        """The bodies of every call of ``path`` so far."""
        with self._lock:
            return [body for p, body in self.requests if p == path]

    def operations(self, meter_no: str) -> list[str]:
        """The relay operations ("Switch On"/"Switch Off") the meter was sent, in order."""
        return [
            str(body.get("DataItem"))
            for body in self.calls("/COMM_RemoteControl")
            if str(body.get("MeterNo")) == meter_no
        ]

    def close(self) -> None:
        self.stop()

    # --- answering -------------------------------------------------------------------------
    def _answer(self, path: str, body: dict) -> tuple[int, str, str, float]:
        path = path.removeprefix("/api")
        with self._lock:
            self.requests.append((path, body))
            fault = self._faults[path].popleft() if self._faults[path] else ""
            if fault == "html":
                page = "<html><body><h1>502 Bad Gateway</h1></body></html>"
                return 502, page, "text/html", 0
            if fault == "server_error":
                return 500, json.dumps({"Message": "An error has occurred."}), "application/json", 0
            if fault == "reject":
                return (
                    200,
                    json.dumps({"ResultCode": "99", "Reason": "Rejected"}),
                    "application/json",
                    0,
                )
            answer = self._route(path, body, fault)
        delay = self.slow_seconds if fault == "timeout" else 0
        return 200, json.dumps(answer), "application/json", delay

    def _route(self, path: str, body: dict, fault: str) -> dict:
        if path.startswith("/POS_"):
            if (body.get("company_name"), body.get("user_name"), body.get("password")) != (
                COMPANY,
                POS_USER,
                POS_PASSWORD,
            ) or body.get("password_vend") != VEND_PASSWORD:
                return {"result_code": 1, "reason": "Invalid user or vending password"}
            if path == "/POS_Purchase":
                return self._purchase(body)
            if path == "/POS_PurchaseHistory":
                return self._history(body)
            return {"result_code": 2, "reason": f"unknown call {path}"}
        if (body.get("CompanyName"), body.get("UserName"), body.get("Password")) != (
            COMPANY,
            USER,
            PASSWORD,
        ):
            return {"ResultCode": "01", "Reason": "Invalid company, user or password"}
        creators = {
            "/COMM_RemoteControl": "Control",
            "/COMM_RemoteReading": "Reading",
            "/COMM_RemoteToken": "Token",
        }
        if path in creators:
            if fault == "no_task":
                return {"ResultCode": "00", "Reason": "OK", "Result": {}}
            return self._create(creators[path], body, fault)
        if path.endswith("Task") and path.startswith("/COMM_Remote"):
            return self._poll(str(body.get("TaskNo")))
        if path == "/COMM_OnlineStatus":
            rows = [
                {"ConcentratorNo": n, "Status": "1" if on else "0"}
                for n, on in self.concentrators.items()
            ]
            return {"ResultCode": "00", "Reason": "OK", "Result": rows}
        if path in ("/COMM_DailyData", "/COMM_MonthlyData", "/COMM_HourlyData"):
            return self._data(body)
        return {"ResultCode": "02", "Reason": f"unknown call {path}"}

    def _create(self, kind: str, body: dict, fault: str) -> dict:
        meter_no = str(body.get("MeterNo"))
        task_no = str(next(self._numbers))
        self.tasks[task_no] = Task(
            kind=kind,
            meter_no=meter_no,
            data_item=str(body.get("DataItem") or ""),
            token=str(body.get("Token") or ""),
            created=time.monotonic(),
            fate=fault if fault in ("task_fails", "stuck") else "",
        )
        return {"ResultCode": "00", "Reason": "OK", "Result": {"TaskNo": task_no}}

    def _poll(self, task_no: str) -> dict:
        task = self.tasks.get(task_no)
        if task is None:
            return {"ResultCode": "03", "Reason": "unknown task"}
        task.polls += 1
        waited = time.monotonic() - task.created
        if (
            not task.finished
            and task.fate != "stuck"
            and task.polls > self.pending_polls
            and (waited >= self.pending_seconds)
        ):
            self._finish(task)
        if task.finished == "99":
            return {"ResultCode": "99", "Reason": "Token already used"}
        status = task.finished or ("unknown" if task.polls % 2 else None)
        result = {
            "TaskNo": task_no,
            "Status": status,
            "DataItem": task.data_item,
            "Data": task.data or None,
        }
        return {"ResultCode": "00", "Reason": "OK", "Result": result}

    def _finish(self, task: Task) -> None:
        if task.fate == "task_fails":
            task.finished = "False"
            return
        meter = self.meters[task.meter_no]
        if task.kind == "Control":
            meter.relay_on = task.data_item == "Switch On"
            meter.status_code = "1000" if meter.relay_on else "1007"
        elif task.kind == "Token":
            if task.token in meter.tokens_used:
                task.finished = "99"
                return
            meter.tokens_used.add(task.token)
            sold = next((p for p in self.purchases if p["token"] == task.token), None)
            if sold:
                meter.credit_kwh += Decimal(sold["amount"])
        elif task.kind == "Reading":
            task.data = self._value(meter, task.data_item)
        task.finished = "True"

    @staticmethod
    def _value(meter: FakeMeter, item: str) -> str:
        if item == "Current Credit Register":
            return f"{meter.credit_kwh},{'ON' if meter.relay_on else 'OFF'}"
        if item == "Relay Status Code":
            return meter.status_code
        return {"Voltage": "231.4", "Current": "2.15", "Power": "0.48"}.get(item, "")

    def _data(self, body: dict) -> dict:
        rows = []
        for query in body.get("QueryList") or []:
            meter_no = str(query.get("MeterNo"))
            meter = self.meters[meter_no]
            day = f"{query.get('Year'):04d}-{query.get('Month'):02d}-{query.get('Day'):02d}"
            total = meter.daily.get(day, meter.total_kwh)
            rows.append(
                {
                    "MeterNo": meter_no,
                    "TotalUnitsCounter": str(total),
                    "CurrentCreditRegister": str(meter.credit_kwh),
                    "RelayStatus": 1 if meter.relay_on else 0,
                }
            )
        return {"ResultCode": "00", "Reason": "OK", "Result": rows}

    def _purchase(self, body: dict) -> dict:
        meter_no = str(body.get("meter_number"))
        if body.get("is_vend_by_unit") is not True:
            return {"result_code": 3, "reason": "vending by money is not enabled"}
        amount = Decimal(str(body.get("amount")))
        if amount <= 0:
            return {"result_code": 4, "reason": "amount must be positive"}
        token = "".join(secrets.choice("0123456789") for _ in range(20))
        self.purchases.append(
            {
                "meter_number": meter_no,
                "amount": str(amount),
                "token": token,
                "time": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S"),
            }
        )
        return {"result_code": 0, "reason": "OK", "result": {"token": token}}

    def _history(self, body: dict) -> dict:
        meter_no = str(body.get("meter_number"))
        since = str(body.get("start_time") or "")
        rows = [p for p in self.purchases if p["meter_number"] == meter_no and p["time"] >= since]
        return {"result_code": 0, "reason": "OK", "result": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description="Run the fake Calin head-end.")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--pending-seconds", type=float, default=5.0)
    args = parser.parse_args()
    fake = FakeCalin(port=args.port, pending_polls=0, pending_seconds=args.pending_seconds)
    print(f"fake Calin head-end at {fake.base_url} (company {COMPANY}, user {USER})", flush=True)
    try:
        fake._thread.join()
    except KeyboardInterrupt:
        fake.close()


if __name__ == "__main__":
    main()
