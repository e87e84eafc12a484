"""Headless Chromium (Debian's package) driven by Playwright, against pytest-django's live server.

Each test gets a fresh Playwright and browser, started after its data is in the
database (Playwright's sync API runs an event loop in this thread, and Django
refuses database calls while one runs) and stopped before the database is flushed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.conftest import PASSWORD

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHONE = {"width": 360, "height": 740}
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"

# Every visible form field needs a label a screen reader can announce.
UNLABELLED_FIELDS_JS = """() => {
  const fields = [...document.querySelectorAll('input, select, textarea')].filter(el => {
    if (['hidden', 'submit', 'button', 'reset', 'image'].includes(el.type)) return false;
    const box = el.getBoundingClientRect();
    return box.width > 0 && box.height > 0 && getComputedStyle(el).visibility !== 'hidden';
  });
  const labelled = el =>
    (el.id && document.querySelector(`label[for="${CSS.escape(el.id)}"]`)) ||
    el.closest('label') ||
    (el.getAttribute('aria-label') || '').trim() ||
    (el.getAttribute('aria-labelledby') || '').trim();
  return fields.filter(el => !labelled(el)).map(el => el.outerHTML.slice(0, 120));
}"""


# Text must stand out from what is behind it: WCAG 2 contrast of at least 4.5:1, or 3:1 for
# large text (24 px, or 18.66 px bold). The background is the first opaque one up the tree.
LOW_CONTRAST_JS = """() => {
  const rgba = s => (s.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => {
    const f = c => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = el => {
    for (let e = el; e; e = e.parentElement) {
      const c = rgba(getComputedStyle(e).backgroundColor);
      if (c.length >= 3 && (c.length < 4 || c[3] > 0.5)) return c;
    }
    return [255, 255, 255];
  };
  const bad = [];
  for (const el of document.querySelectorAll('body *')) {
    if (el.closest('svg')) continue;
    const own = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
    if (!own) continue;
    const style = getComputedStyle(el);
    const box = el.getBoundingClientRect();
    if (box.width === 0 || box.height === 0 || style.visibility === 'hidden') continue;
    const fg = rgba(style.color), bg = background(el);
    const [hi, lo] = [lum(fg), lum(bg)].sort((a, b) => b - a);
    const ratio = (hi + 0.05) / (lo + 0.05);
    const size = parseFloat(style.fontSize), bold = parseInt(style.fontWeight, 10) >= 700;
    const need = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
    const text = el.textContent.trim().slice(0, 40);
    if (ratio < need) bad.push(`${el.tagName.toLowerCase()} "${text}" ${ratio.toFixed(2)}:1`);
  }
  return bad.slice(0, 10);
}"""


CSP_WATCH_JS = """document.addEventListener("securitypolicyviolation", (e) =>
  console.error(`CSP: ${e.violatedDirective} blocked ${e.blockedURI || "inline code"}`));"""


@dataclass
class Screen:
    """One signed-in browser tab, checking every page it visits."""

    page: object
    origin: str
    width: int
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    seen: list[str] = field(default_factory=list)

    def goto(self, path: str) -> None:
        response = self.page.goto(self.origin + path)
        assert response is not None and response.ok, f"{path}: {response and response.status}"
        self.page.wait_for_load_state("networkidle")

    def check(self, name: str) -> None:
        """The checks every page must pass on a phone, then a screenshot."""
        page = self.page
        page.wait_for_load_state("networkidle")
        scroll_width = page.evaluate("document.documentElement.scrollWidth")
        assert scroll_width <= self.width, (
            f"{name} ({page.url}) scrolls sideways: {scroll_width}px on a {self.width}px screen"
        )
        unlabelled = page.evaluate(UNLABELLED_FIELDS_JS)
        assert not unlabelled, f"{name} ({page.url}) has fields without a label: {unlabelled}"
        faint = page.evaluate(LOW_CONTRAST_JS)
        assert not faint, f"{name} ({page.url}) has text too faint to read: {faint}"
        htmx = page.evaluate(
            "() => [typeof window.htmx, [...document.scripts].map(s => s.src).filter(Boolean)]"
        )
        assert htmx[0] == "object", f"{name}: htmx did not load"
        htmx_src = [src for src in htmx[1] if "htmx" in src]
        assert htmx_src and all(src.startswith(self.origin + "/static/") for src in htmx_src), (
            f"{name}: htmx must come from our own static files, not {htmx_src}"
        )
        assert not self.errors, f"{name}: JavaScript errors: {self.errors}"
        foreign = [url for url in self.requests if not self._ours(url)]
        assert not foreign, f"{name} asked another host for: {foreign}"
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
        self.seen.append(name)

    def _ours(self, url: str) -> bool:
        parts = urlsplit(url)
        if parts.scheme in {"data", "blob", "about"}:
            return True
        return f"{parts.scheme}://{parts.netloc}" == self.origin

    def sign_in(self, username: str, password: str = PASSWORD) -> None:
        self.goto("/accounts/login/")
        self.check(f"login-{username}")
        self.page.fill("#id_username", username)
        self.page.fill("#id_password", password)
        with self.page.expect_navigation():
            self.page.click("form button[type=submit]")
        self.page.wait_for_load_state("networkidle")
        assert "/accounts/login/" not in self.page.url, f"{username} could not sign in"


@pytest.fixture
def chromium(live_server, site_data) -> Iterator[object]:
    # live_server and site_data come first: their data exists before Playwright starts.
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True, timeout=60_000
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def screen(chromium, live_server):
    """Open a phone-sized tab: ``screen(width=360)`` → :class:`Screen`."""
    contexts = []

    def open_screen(width: int = PHONE["width"], height: int = PHONE["height"]) -> Screen:
        context = chromium.new_context(
            viewport={"width": width, "height": height}, device_scale_factor=1
        )
        context.set_default_timeout(15_000)
        contexts.append(context)
        page = context.new_page()
        tab = Screen(page=page, origin=live_server.url, width=width)
        page.on("request", lambda request: tab.requests.append(request.url))
        page.on("pageerror", lambda exc: tab.errors.append(str(exc)))
        # Anything the Content-Security-Policy blocks (an inline script or handler, a
        # foreign source) counts as an error: the page would not work in production.
        page.add_init_script(CSP_WATCH_JS)
        page.on(
            "console",
            lambda msg: tab.errors.append(msg.text) if msg.text.startswith("CSP:") else None,
        )
        return tab

    yield open_screen
    for context in contexts:
        context.close()


@dataclass
class SiteData:
    org: object
    customers: dict[str, object]
    meters: dict[str, object]


@pytest.fixture
def site_data(org) -> SiteData:
    """A few customers and meters on Block A (and one on Block B), made through the services."""
    from customers import services as customer_services
    from mcoms.core.audit import acting_as
    from metering import services as meter_services

    people = {
        "grace": ("Grace", "Nakato", "+256772100001", org.block_a),
        "moses": ("Moses", "Okello", "+256772100002", org.block_a),
        "winnie": ("Winnie", "Auma", "+256772100003", org.block_a),
        "brian": ("Brian", "Kato", "+256772100004", org.block_b),
    }
    customers, meters = {}, {}
    with acting_as(label="browser test setup", channel="system"):
        for key, (first, last, phone, site) in people.items():
            customers[key] = customer_services.customer_create(
                site=site, first_name=first, last_name=last, phone=phone, location="Unit 1"
            ).customer
        for number, (key, site) in enumerate(
            [("grace", org.block_a), ("winnie", org.block_a), ("brian", org.block_b), (None, None)]
        ):
            meter = meter_services.meter_create(
                serial=f"20031234567{number}", model="DDSU666", by_name="Stores"
            )
            if site is not None:
                meter = meter_services.meter_assign(
                    meter=meter, site=site, address=11 + number, by_name="Planner"
                )
            if key is not None:
                meter_services.meter_serve_customer(meter=meter, customer=customers[key])
            meters[key or "stock"] = meter
        customer_services.customer_link_user(customer=customers["winnie"], user=org.customer)
    return SiteData(org=org, customers=customers, meters=meters)
