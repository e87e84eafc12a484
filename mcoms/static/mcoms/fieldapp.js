/* MCOMS field app: forms that survive a lost connection, and the queue that sends them.
 *
 * Every form marked data-offline on a /field/ page gets a hidden client_id (a UUID) when it
 * is shown. On submit the form is sent with fetch; with no network (navigator.onLine false,
 * or the fetch fails) its fields, photos included, go to IndexedDB with that id, and the
 * agent sees how many wait. The queue is sent oldest first when the connection returns
 * (the online event, each page load, every 30 s, or "Send now"), with the header X-Queued: 1
 * and the CSRF token from Django's cookie. The server answers JSON: applied or duplicate
 * (removed from the phone), rejected (kept, marked "needs attention" with the message).
 * The server applies each client_id once (fieldops/offline.py), so sending twice is safe.
 */
(function () {
  "use strict";
  const app = document.querySelector("[data-field-app]");
  if (!app) return;
  const SCOPE = app.dataset.scope || "/field/";
  // Forms are sent only under the person who filled them (a phone may be shared).
  const USER = app.dataset.user || "";
  const mine = (item) => !item.user || item.user === USER;
  const DB_NAME = "mcoms-field", STORE = "queue";
  let syncing = false, pushed = false;
  // What tests and the console can look at: counts kept current by indicate().
  const api = { waiting: null, attention: null, busy: false };

  // --- ids and the CSRF cookie ---------------------------------------------------------------
  function uuid() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    const b = new Uint8Array(16);
    (window.crypto || window.msCrypto).getRandomValues(b);
    b[6] = (b[6] & 0x0f) | 0x40; b[8] = (b[8] & 0x3f) | 0x80;
    const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }
  function csrf() {
    const m = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    if (m) return decodeURIComponent(m[1]);
    const input = document.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  // --- IndexedDB -----------------------------------------------------------------------------
  function db() {
    return new Promise((resolve, reject) => {
      const open = indexedDB.open(DB_NAME, 1);
      open.onupgradeneeded = () => open.result.createObjectStore(STORE, { keyPath: "id" });
      open.onsuccess = () => resolve(open.result);
      open.onerror = () => reject(open.error);
    });
  }
  async function store(mode, work) {
    const conn = await db();
    return new Promise((resolve, reject) => {
      const tx = conn.transaction(STORE, mode);
      const result = work(tx.objectStore(STORE));
      tx.oncomplete = () => resolve(result && "result" in result ? result.result : undefined);
      tx.onerror = () => reject(tx.error);
    });
  }
  const all = async () => ((await store("readonly", (s) => s.getAll())) || [])
    .sort((a, b) => a.created - b.created);
  const put = (item) => store("readwrite", (s) => s.put(item));
  const drop = (id) => store("readwrite", (s) => s.delete(id));
  const one = (id) => store("readonly", (s) => s.get(id));

  // --- forms ---------------------------------------------------------------------------------
  function stamp(root) {
    root.querySelectorAll("form[data-offline]").forEach((form) => {
      let input = form.querySelector("input[name=client_id]");
      if (!input) {
        input = document.createElement("input");
        input.type = "hidden"; input.name = "client_id";
        form.appendChild(input);
      }
      if (!input.value) input.value = uuid();
      form.querySelectorAll("input[data-now]").forEach((w) => { w.value = localNow(w.dataset.now); });
    });
  }
  function localNow(zone) {
    // "Now" on the site's clock (data-now names its zone), as a datetime-local value.
    try {
      const parts = Object.fromEntries(new Intl.DateTimeFormat("en-GB", {
        timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit",
        hour: "2-digit", minute: "2-digit", hourCycle: "h23",
      }).formatToParts(new Date()).map((p) => [p.type, p.value]));
      return `${parts.year}-${parts.month}-${parts.day}T${parts.hour}:${parts.minute}`;
    } catch (e) {
      const d = new Date(), pad = (n) => String(n).padStart(2, "0");
      return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
    }
  }
  // A phone camera's photo is several MB; a 1280 px JPEG is plenty to read a register.
  const PHOTO_EDGE = 1280, PHOTO_BIG = 400 * 1024;
  async function shrink(file) {
    if (!(file instanceof File) || !file.type.startsWith("image/") || file.size <= PHOTO_BIG) return file;
    try {
      const bitmap = await createImageBitmap(file);
      const scale = Math.min(1, PHOTO_EDGE / Math.max(bitmap.width, bitmap.height));
      const canvas = document.createElement("canvas");
      canvas.width = Math.round(bitmap.width * scale);
      canvas.height = Math.round(bitmap.height * scale);
      canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
      const blob = await new Promise((done) => canvas.toBlob(done, "image/jpeg", 0.75));
      if (!blob || blob.size >= file.size) return file;
      return new File([blob], file.name.replace(/\.\w+$/, "") + ".jpg", { type: "image/jpeg" });
    } catch (e) {
      return file; // the phone cannot decode it here: send it as it is
    }
  }
  async function formData(form) {
    const data = new FormData();
    for (const [name, value] of new FormData(form)) data.append(name, await shrink(value));
    return data;
  }
  async function fieldsOf(form) {
    const fields = [];
    for (const [name, value] of await formData(form)) {
      if (value instanceof File && !value.name && !value.size) continue; // no file chosen
      fields.push([name, value]);
    }
    return fields;
  }
  function note(form, text, kind) {
    let box = form.parentNode.querySelector(".fa-saved");
    if (!box) {
      box = document.createElement("p");
      box.setAttribute("role", "status");
      form.parentNode.insertBefore(box, form);
    }
    box.className = "fa-saved fa-alert " + (kind || "ok");
    box.textContent = text;
  }
  async function queueForm(form) {
    const fields = await fieldsOf(form);
    const id = (fields.find(([n]) => n === "client_id") || [])[1] || uuid();
    await put({
      id, url: form.action || location.href, fields, created: Date.now(),
      label: form.dataset.offlineLabel || document.title, state: "waiting", message: "",
      user: USER,
    });
    await fixed(form);
    const waiting = (await all()).filter((i) => i.state === "waiting").length;
    form.reset();
    form.querySelector("input[name=client_id]").value = uuid();
    form.querySelectorAll("input[data-now]").forEach((w) => { w.value = localNow(w.dataset.now); });
    note(form, `Saved on this phone — will send when online (${waiting} waiting)`, "ok");
    await indicate();
  }
  async function fixed(form) {
    // A form filled from a refused queued one replaces it.
    if (form.dataset.fixId) { await drop(form.dataset.fixId); delete form.dataset.fixId; }
  }
  function adoptAssets(doc) {
    // The new page may need a stylesheet or script this one did not load (another page type).
    const have = new Set([...document.querySelectorAll("link[rel=stylesheet], script[src]")]
      .map((el) => el.href || el.src));
    doc.querySelectorAll("link[rel=stylesheet]").forEach((link) => {
      if (!have.has(link.href)) document.head.append(document.importNode(link, true));
    });
    doc.querySelectorAll("script[src]").forEach((old) => {
      if (have.has(old.src)) return;
      const script = document.createElement("script");
      script.src = old.src;
      document.body.append(script);
    });
  }
  function swapPage(html, url) {
    const doc = new DOMParser().parseFromString(html, "text/html");
    const fresh = doc.querySelector("main");
    if (!fresh) { location.assign(url); return; }
    adoptAssets(doc);
    document.querySelector("main").replaceWith(fresh);
    document.title = doc.title;
    if (url !== location.href) { history.pushState({ fieldApp: true }, "", url); pushed = true; }
    window.scrollTo(0, 0);
    start(fresh);
    if (window.htmx) window.htmx.process(fresh);
  }
  async function submit(event) {
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.matches("form[data-offline]")) return;
    if (!location.pathname.startsWith(SCOPE)) return;
    event.preventDefault();
    const button = form.querySelector("[type=submit]");
    if (button) button.disabled = true;
    try {
      if (!navigator.onLine) { await queueForm(form); return; }
      let response;
      try {
        response = await fetch(form.action || location.href, {
          method: "POST", body: await formData(form), credentials: "same-origin",
          headers: { "X-CSRFToken": csrf() },
        });
      } catch (e) { await queueForm(form); return; }
      await fixed(form);
      const url = response.url || location.href;
      if (!new URL(url).pathname.startsWith(SCOPE)) { location.assign(url); return; }
      swapPage(await response.text(), response.redirected ? url : location.href);
    } finally {
      if (button) button.disabled = false;
    }
  }

  // --- sending the queue ---------------------------------------------------------------------
  async function sendOne(item) {
    const body = new FormData();
    for (const [name, value] of item.fields) {
      if (name === "csrfmiddlewaretoken") continue;
      body.append(name, value);
    }
    body.append("csrfmiddlewaretoken", csrf());
    const response = await fetch(item.url, {
      method: "POST", body, credentials: "same-origin",
      headers: { "X-Queued": "1", "X-CSRFToken": csrf() },
    });
    const type = response.headers.get("Content-Type") || "";
    if (type.includes("json")) {
      const answer = await response.json();
      if (answer.status === "applied" || answer.status === "duplicate") { await drop(item.id); return "sent"; }
      await put({ ...item, state: "attention", message: answer.message || "Not accepted." });
      return "attention";
    }
    if (response.redirected && response.url.includes("/accounts/login")) return "signin";
    if (response.status >= 500) return "later";
    if (response.ok && response.redirected) { await drop(item.id); return "sent"; } // a plain form's success
    await put({ ...item, state: "attention",
      message: `The server refused this form (HTTP ${response.status}).` });
    return "attention";
  }
  async function sync() {
    if (syncing || !navigator.onLine) return;
    syncing = api.busy = true;
    try {
      for (const item of await all()) {
        if (item.state !== "waiting" || !mine(item)) continue;
        let outcome;
        try { outcome = await sendOne(item); } catch (e) { break; } // still offline
        if (outcome === "signin" || outcome === "later") break;
      }
    } finally {
      await indicate();
      await drawQueue();
      syncing = api.busy = false;
    }
  }

  // --- what the agent sees -------------------------------------------------------------------
  async function indicate() {
    const badge = document.getElementById("fa-queue");
    const net = document.getElementById("fa-net");
    if (net) net.hidden = navigator.onLine;
    if (!badge) return;
    let items = [];
    try { items = await all(); } catch (e) { /* no IndexedDB: nothing queued */ }
    const waiting = items.filter((i) => i.state === "waiting").length;
    const attention = items.length - waiting;
    api.waiting = waiting; api.attention = attention;
    const parts = [];
    if (waiting) parts.push(`${waiting} waiting to send`);
    if (attention) parts.push(`${attention} need${attention === 1 ? "s" : ""} attention`);
    badge.textContent = parts.join(" · ");
    badge.classList.toggle("bad", attention > 0);
    badge.hidden = !parts.length;
  }
  async function drawQueue() {
    const list = document.getElementById("fa-queue-list");
    if (!list) return;
    const items = await all();
    // Refusals the server lists that this phone shows already are not listed twice.
    const here = new Set(items.map((i) => i.id));
    document.querySelectorAll("[data-client-id]").forEach((li) => {
      li.hidden = here.has(li.dataset.clientId);
    });
    if (!items.length) {
      list.innerHTML = '<p class="fa-empty">Nothing is waiting on this phone.</p>';
      return;
    }
    const ul = document.createElement("ul");
    ul.className = "fa-list";
    for (const item of items) {
      const li = document.createElement("li");
      li.className = item.state === "attention" ? "fa-bad" : "";
      const text = document.createElement("span");
      const title = document.createElement("strong");
      title.textContent = item.label;
      text.append(title, ` saved ${new Date(item.created).toLocaleString()} — `,
        item.state === "attention" ? `needs attention: ${item.message}`
          : mine(item) ? "waiting to send" : `saved by ${item.user}: sent when they sign in`);
      li.append(text);
      if (item.state === "attention") {
        const fix = document.createElement("a");
        fix.href = `${item.url.split("#")[0]}#fix=${item.id}`;
        fix.className = "button secondary"; fix.textContent = "Fix and send again";
        const discard = document.createElement("button");
        discard.type = "button"; discard.className = "secondary"; discard.textContent = "Discard";
        discard.addEventListener("click", async () => {
          if (confirm(`Discard “${item.label}”? It will not be sent.`)) {
            await drop(item.id); await drawQueue(); await indicate();
          }
        });
        const actions = document.createElement("span");
        actions.className = "fa-item-actions";
        actions.append(fix, discard);
        li.append(actions);
      }
      ul.append(li);
    }
    list.replaceChildren(ul);
  }
  async function refill() {
    // "#fix=<id>": put a refused queued form's values back into this page's form.
    const m = location.hash.match(/^#fix=([\w-]+)$/);
    const form = document.querySelector("form[data-offline]");
    if (!m || !form) return;
    const item = await one(m[1]);
    if (!item) return;
    for (const [name, value] of item.fields) {
      if (name === "client_id" || name === "csrfmiddlewaretoken") continue;
      const field = form.elements[name];
      if (!field) continue;
      if (value instanceof File && field.type === "file") {
        const files = new DataTransfer(); files.items.add(value); field.files = files.files;
      } else if (field.type === "checkbox") field.checked = true;
      else if (field instanceof RadioNodeList || field.type === "radio") {
        const radio = form.querySelector(`[name="${name}"][value="${CSS.escape(String(value))}"]`);
        if (radio) radio.checked = true;
      } else field.value = value;
    }
    form.dataset.fixId = item.id;
    let fixes = form.querySelector("input[name=fixes]");
    if (!fixes) {
      fixes = document.createElement("input");
      fixes.type = "hidden"; fixes.name = "fixes";
      form.appendChild(fixes);
    }
    fixes.value = item.id;
    note(form, `Fix this form and send it again. The server said: ${item.message}`, "bad");
  }
  function scanners(root) {
    if (!("BarcodeDetector" in window)) return;
    root.querySelectorAll("input[data-scan-into]").forEach((input) => {
      input.closest(".fa-scan").hidden = false;
      input.addEventListener("change", async () => {
        const file = input.files && input.files[0];
        if (!file) return;
        try {
          const codes = await new BarcodeDetector().detect(await createImageBitmap(file));
          const target = document.getElementById(input.dataset.scanInto);
          if (codes.length && target) target.value = codes[0].rawValue;
        } catch (e) { /* type it instead */ }
      });
    });
  }
  function precache(root) {
    if (!navigator.onLine || !("serviceWorker" in navigator)) return;
    const urls = [location.href.split("#")[0],
      ...[...root.querySelectorAll("a[data-precache]")].map((a) => a.href),
      ...[...document.scripts].map((s) => s.src).filter(Boolean),
      ...[...document.querySelectorAll("link[rel=stylesheet]")].map((l) => l.href)];
    navigator.serviceWorker.ready.then((reg) => {
      if (reg.active) reg.active.postMessage({ type: "precache", urls });
    });
  }
  function start(root) {
    stamp(root);
    scanners(root);
    precache(root);
    root.querySelectorAll("[data-print]").forEach((b) => b.addEventListener("click", () => window.print()));
    const now = root.querySelector("#fa-send-now");
    if (now) now.addEventListener("click", sync);
    refill();
    indicate();
    drawQueue();
  }

  if ("serviceWorker" in navigator && window.isSecureContext) {
    navigator.serviceWorker.register(app.dataset.sw, { scope: SCOPE }).catch(() => {});
  }
  document.addEventListener("submit", submit);
  // Signing out: the pages kept for this person are dropped (the queue stays, with its owner).
  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (!form.action || !/\/logout\/?$/.test(new URL(form.action).pathname) || !window.caches) return;
    if (form.dataset.cleared) return;
    event.preventDefault();
    caches.keys().then((keys) => Promise.all(keys.map((k) => caches.delete(k))))
      .finally(() => { form.dataset.cleared = "1"; form.submit(); });
  });
  document.addEventListener("htmx:afterSwap", (e) => stamp(e.target));
  window.addEventListener("online", () => { indicate(); sync(); });
  window.addEventListener("offline", indicate);
  window.addEventListener("popstate", () => { if (pushed) location.reload(); });
  start(document);
  sync();
  setInterval(sync, 30000);
  Object.assign(api, { sync, all, put, indicate });
  window.fieldApp = api;
})();
