"""The field agent app in headless Chromium on a 360 px phone, online and offline.

The agent signs in, finds Grace, opens her card, takes cash and sees the receipt. Then the
phone loses its connection (``context.set_offline(True)``): a hand reading with a photo and
a second cash payment are kept on the phone, and the page says how many wait. Back online,
the queue sends itself. Then the phone sends the same forms again, as a phone that never
heard the answers would, and the server still has exactly one of each. Last, the agent
goes through the install checklist for a shipped meter: a wrong serial is refused, the
right one marks the meter Installed. Every page passes ``Screen.check`` and is saved under
``var/screenshots/``.

Database reads during the test run in a worker thread: Playwright's event loop runs in the
test's own thread, where Django refuses database calls.
"""

from __future__ import annotations

import datetime as dt
import io
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import pytest
from django.db import OperationalError

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@dataclass
class Field:
    grace: object
    meter: object  # Grace's meter, installed on the gateway's bus
    shipped: object  # a meter on Block A waiting to be installed
    gateway: object
    zone: str  # Block A's timezone


def db(fn):
    """Run ``fn`` in another thread (no event loop there) and return its result.

    SQLite's shared in-memory test database locks a table while the live server writes
    it: try again for a moment.
    """

    def attempt():
        for _ in range(50):
            try:
                return fn()
            except OperationalError:
                time.sleep(0.1)
        return fn()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(attempt).result()


@pytest.fixture
def field(site_data) -> Field:
    from billing.models import ServicePackage
    from mcoms.core import clock
    from mcoms.core.audit import acting_as
    from metering import partitions, services
    from metering.lifecycle import Status

    org = site_data.org
    partitions.ensure_ahead(now=clock.now(), back=1, ahead=1)
    ServicePackage.objects.create(code="home", name="Home 300 W", load_limit_w=300)
    ServicePackage.objects.create(code="shop", name="Shop 1 kW", load_limit_w=1000)
    with acting_as(label="browser test setup", channel="system"):
        gateway = services.gateway_create(site=org.block_a, name="kla-block-a")
        meter = site_data.meters["grace"]
        for step in (Status.CONVERTED, Status.SHIPPED, Status.INSTALLED):
            meter = services.meter_move(meter=meter, status=step, gateway=gateway)
        shipped = services.meter_create(serial="200399887766", model="DDSU666", by_name="Stores")
        shipped = services.meter_assign(meter=shipped, site=org.block_a, address=30)
        for step in (Status.CONVERTED, Status.SHIPPED):
            shipped = services.meter_move(meter=shipped, status=step)
    return Field(
        grace=site_data.customers["grace"],
        meter=meter,
        shipped=shipped,
        gateway=gateway,
        zone=org.block_a.timezone,
    )


def photo_file(tmp_path) -> str:
    """A camera-sized photo (1600 × 1200, a few MB as PNG): the phone shrinks it before sending."""
    from PIL import Image

    path = tmp_path / "display.png"
    out = io.BytesIO()
    Image.effect_noise((1600, 1200), 60).convert("RGB").save(out, "PNG")
    path.write_bytes(out.getvalue())
    assert path.stat().st_size > 1_000_000
    return str(path)


def wait_for_cached(page, url: str) -> None:
    page.wait_for_function(
        """async (url) => {
            for (const key of await caches.keys()) {
                if (await (await caches.open(key)).match(url)) return true;
            }
            return false;
        }""",
        arg=url,
        timeout=15_000,
    )


def queue_length(page) -> int:
    return page.evaluate("async () => (await window.fieldApp.all()).length")


def wait_until_sent(page) -> None:
    """The queue went through: nothing waits on the phone and no send is under way."""
    page.wait_for_function(
        "() => window.fieldApp && !window.fieldApp.busy && window.fieldApp.waiting === 0"
        " && window.fieldApp.attention === 0"
    )


def counts(grace, meter) -> tuple[int, int]:
    from billing.payments.models import Payment
    from metering.models import ManualReading

    return (
        Payment.objects.filter(customer=grace).count(),
        ManualReading.objects.filter(meter=meter).count(),
    )


def test_agent_day_online_then_offline_without_duplicates(field, screen, tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path / "media"
    tab = screen(width=360, height=740)
    page = tab.page
    grace = field.grace
    tab.sign_in("agent")
    tab.goto("/field/")
    page.evaluate("async () => { await navigator.serviceWorker.ready; }")
    assert "My tasks" in page.locator("main").inner_text()
    tab.check("field-app-home")

    # Find Grace by name and open her card.
    page.fill("#q", "Nakato")
    page.wait_for_selector(f"#results a[href='/field/customers/{grace.pk}/']")
    tab.check("field-app-search")
    with page.expect_navigation():
        page.click(f"#results a[href='/field/customers/{grace.pk}/']")
    card = page.locator("main").inner_text()
    assert "Grace Nakato" in card and field.meter.serial in card and "Usage" in card
    tab.check("field-app-customer")

    # Cash, online: the receipt follows.
    page.click("text=Take cash")
    page.wait_for_selector("#id_amount")
    assert page.locator("form[data-offline] input[name=client_id]").input_value()
    tab.check("field-app-pay")
    page.fill("#id_amount", "5000")
    page.click("text=Record cash and give a receipt")
    page.wait_for_selector("text=Receipt R-KLA-000001")
    assert "5,000 UGX" in page.locator("main").inner_text()
    tab.check("field-app-receipt")

    # Back on the card, the phone keeps its forms for later; then the connection goes.
    tab.goto(f"/field/customers/{grace.pk}/")
    read_url, pay_url = f"/field/meters/{field.meter.pk}/read/", f"/field/customers/{grace.pk}/pay/"
    for url in (read_url, pay_url):
        wait_for_cached(page, tab.origin + url)
    page.context.set_offline(True)

    page.goto(tab.origin + read_url)
    page.wait_for_selector("#id_energy_kwh")
    assert page.locator("#fa-net").is_visible()
    # The page was kept earlier; the time of reading is the site's clock now.
    shown = dt.datetime.strptime(page.input_value("#id_read_at"), "%Y-%m-%dT%H:%M")
    site_now = dt.datetime.now(ZoneInfo(field.zone)).replace(tzinfo=None)
    assert abs(shown - site_now) < dt.timedelta(minutes=2)
    page.fill("#id_energy_kwh", "123.4")
    page.set_input_files("#id_photo", photo_file(tmp_path))
    page.click("text=Save the reading")
    page.wait_for_selector("text=Saved on this phone — will send when online (1 waiting)")
    assert page.locator("#fa-queue").inner_text() == "1 waiting to send"
    tab.check("field-app-reading-queued")

    page.goto(tab.origin + pay_url)
    page.wait_for_selector("#id_amount")
    page.fill("#id_amount", "7000")
    page.click("text=Record cash and give a receipt")
    page.wait_for_selector("text=Saved on this phone — will send when online (2 waiting)")
    tab.check("field-app-pay-queued")
    assert db(lambda: counts(grace, field.meter)) == (1, 0)  # nothing reached the server

    page.goto(tab.origin + "/field/queue/")
    page.wait_for_selector("#fa-queue-list li")
    assert page.locator("#fa-queue-list li").count() == 2
    tab.check("field-app-queue-offline")
    # Keep a copy of what was queued, as a phone that never hears the answers would.
    page.evaluate("async () => { window.sent = await window.fieldApp.all(); }")

    # Back online: the queue sends itself, oldest first.
    page.context.set_offline(False)
    wait_until_sent(page)
    assert db(lambda: counts(grace, field.meter)) == (2, 1)
    assert page.locator("#fa-queue").is_hidden()
    tab.check("field-app-queue-sent")

    # The same forms sent again (after a reload): answered as duplicates, nothing added.
    page.evaluate("async () => { for (const i of window.sent) await window.fieldApp.put(i); }")
    assert queue_length(page) == 2
    page.reload()
    wait_until_sent(page)
    assert db(lambda: counts(grace, field.meter)) == (2, 1)

    def amounts():
        from PIL import Image

        from billing.payments.models import Payment
        from metering.models import ManualReading, Reading

        reading = ManualReading.objects.get(meter=field.meter)
        stored = Reading.objects.get(meter=field.meter, ts=reading.read_at)
        paid = sorted(int(p.amount) for p in Payment.objects.filter(customer=grace))
        with reading.photo.open("rb") as photo:
            size = Image.open(photo).size
        return paid, str(reading.energy_kwh), reading.photo.name[-4:], size, str(stored.energy_kwh)

    # The photo went through, shrunk on the phone to a 1280 px JPEG.
    assert db(amounts) == ([5000, 7000], "123.400", ".jpg", (1280, 960), "123.400")

    # The card shows the new payment; the package can be changed from it.
    tab.goto(f"/field/customers/{grace.pk}/")
    card = page.locator("main").inner_text()
    assert "7,000 UGX" in card and "123.400 kWh" in card  # the hand reading, on the card
    with page.expect_navigation():
        page.click("text=Change package")
    tab.check("field-app-package")
    page.check("text=Shop 1 kW")
    page.click("button:text('Change package')")
    page.wait_for_selector("text=Grace Nakato is now on Shop 1 kW.")
    tab.check("field-app-package-changed")
    tab.goto("/field/offline/")
    tab.check("field-app-offline-page")


def test_install_checklist_on_a_phone(field, screen):
    tab = screen(width=360, height=740)
    page = tab.page
    shipped = field.shipped
    tab.sign_in("agent")
    tab.goto("/field/install/")
    tab.check("field-app-installs")
    with page.expect_navigation():
        page.click(f"a[href='/field/meters/{shipped.pk}/install/']")
    tab.check("field-app-install")

    page.fill("#id_serial", "200399887700")
    page.fill("#id_address_label", "30")
    page.click("text=Mark installed")
    page.wait_for_selector("text=is not this meter")
    assert page.locator("#id_address_label").input_value() == "30"  # kept on error
    tab.check("field-app-install-wrong-serial")

    page.fill("#id_serial", shipped.serial)
    page.click("text=Mark installed")
    page.wait_for_selector(f"text=Meter {shipped.serial} installed on kla-block-a")
    tab.check("field-app-installed")

    def status():
        from metering.models import Meter

        return Meter.objects.get(pk=shipped.pk).status

    assert db(status) == "installed"


def test_a_form_refused_after_sync_needs_attention_and_is_fixed(field, screen):
    """Registered offline with a phone another account uses: refused, shown, fixed, sent."""
    tab = screen(width=360, height=740)
    page = tab.page
    tab.sign_in("agent")
    tab.goto("/field/")
    page.evaluate("async () => { await navigator.serviceWorker.ready; }")
    wait_for_cached(page, tab.origin + "/field/customers/new/")
    page.context.set_offline(True)
    page.goto(tab.origin + "/field/customers/new/")
    page.fill("#id_first_name", "Joseph")
    page.fill("#id_last_name", "Mukasa")
    page.fill("#id_phone", "0772 100001")  # Grace's number
    page.click("button:text('Register')")
    page.wait_for_selector("text=Saved on this phone — will send when online (1 waiting)")
    tab.check("field-app-register-queued")

    page.context.set_offline(False)
    page.wait_for_function("() => window.fieldApp.attention === 1 && !window.fieldApp.busy")
    assert "1 needs attention" in page.locator("#fa-queue").inner_text()
    page.goto(tab.origin + "/field/queue/")
    page.wait_for_selector("#fa-queue-list >> text=is also used by account")
    assert page.locator("[data-client-id]").first.is_hidden()  # listed once, by the phone
    tab.check("field-app-queue-attention")

    with page.expect_navigation():
        page.click("text=Fix and send again")
    page.wait_for_selector("text=Fix this form and send it again")
    assert page.locator("#id_last_name").input_value() == "Mukasa"  # refilled from the phone
    page.check("#id_phone_ok")
    tab.check("field-app-register-fix")
    page.click("button:text('Register')")
    page.wait_for_selector("h1:text('Joseph Mukasa')")
    wait_until_sent(page)
    tab.check("field-app-registered")
    tab.goto("/field/")
    assert "Needs attention" not in page.locator("main").inner_text()  # the fix settled it

    def joseph():
        from customers.models import Customer

        return list(Customer.objects.filter(last_name="Mukasa").values_list("phone", flat=True))

    assert db(joseph) == ["+256772100001"]

    # Signing out drops the pages the phone kept for this agent.
    assert page.evaluate("async () => (await caches.keys()).length") > 0
    page.click("summary[aria-label=Menu]")
    with page.expect_navigation():
        page.click("text=Sign out")
    assert page.evaluate("async () => (await caches.keys()).length") == 0
