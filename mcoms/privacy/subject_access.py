"""A subject access archive: everything held about one customer, as JSON and CSV in a zip.

Each app gives its own part through its ``personal_data.customer_data``; this module only
puts the parts together.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import zipfile

from billing import personal_data as billing_data
from customers import personal_data as customer_data
from customers.models import Customer
from fieldops import personal_data as field_data
from metering import personal_data as meter_data
from notifications import personal_data as message_data
from notifications.selfservice import personal_data as selfservice_data

README = """Personal data held about account {account}, produced {at} (UTC).

data.json holds every section; each section is also a CSV file of the same name.
Sections: {sections}.
Amounts are in the site's currency ({currency}); times are UTC.
"""


def collect(customer: Customer) -> dict[str, list[dict]]:
    """Every app's part of what is held about ``customer``, by section name."""
    who = customer_data.identity(customer)
    parts = [
        customer_data.customer_data(customer),
        meter_data.customer_data(customer),
        billing_data.customer_data(customer),
        field_data.customer_data(customer),
        message_data.recipient_data(
            addresses=who.phones + ((who.email,) if who.email else ()), about=who.about
        ),
        selfservice_data.customer_data(customer, phones=who.phones),
    ]
    sections: dict[str, list[dict]] = {}
    for part in parts:
        sections.update(part)
    return sections


def _csv(rows: list[dict]) -> str:
    out = io.StringIO()
    head = list(dict.fromkeys(k for row in rows for k in row))
    writer = csv.DictWriter(out, fieldnames=head)
    writer.writeheader()
    for row in rows:
        writer.writerow(
            {k: json.dumps(v) if isinstance(v, dict | list) else v for k, v in row.items()}
        )
    return out.getvalue()


def archive(customer: Customer, *, at: dt.datetime) -> bytes:
    """The zip: ``data.json``, one CSV per section and a README."""
    sections = collect(customer)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        document = {"account": customer.account_number, "produced_at": at.isoformat()}
        document["sections"] = sections
        zf.writestr("data.json", json.dumps(document, indent=1, ensure_ascii=False))
        for name, rows in sections.items():
            zf.writestr(f"{name}.csv", _csv(rows))
        zf.writestr(
            "README.txt",
            README.format(
                account=customer.account_number,
                at=at.isoformat(),
                sections=", ".join(sections),
                currency=customer.site.currency,
            ),
        )
    return out.getvalue()
