/* MCOMS field app service worker ({{ version }}); served from {{ scope }}sw.js.
 *
 * Keeps the app shell and the field pages the agent opened, so forms open with no network.
 * Pages: network first, the cache when the network fails. Static files: the cache first.
 * POSTs are never touched here: fieldapp.js sends forms and queues them when offline.
 */
const VERSION = "{{ version }}";
const SHELL = {{ shell|safe }};
const OFFLINE_URL = "{{ offline_url }}";
const SCOPE = "{{ scope }}";
const STATIC = "/static/";

async function keep(cache, url) {
  try {
    const response = await fetch(url, { credentials: "same-origin" });
    // A redirect (to the sign-in page) or an error is not the page asked for.
    if (response.ok && !response.redirected) await cache.put(url, response);
  } catch (e) { /* offline: try again next time */ }
}

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches.open(VERSION)
      .then((cache) => Promise.all(SHELL.map((url) => keep(cache, url))))
      .then(() => self.skipWaiting())
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(keys.filter((k) => k !== VERSION).map((k) => caches.delete(k))))
      .then(() => self.clients.claim())
  );
});

self.addEventListener("message", (event) => {
  const data = event.data || {};
  if (data.type === "precache" && Array.isArray(data.urls)) {
    event.waitUntil(caches.open(VERSION).then((cache) =>
      Promise.all(data.urls.filter(ours).map((url) => keep(cache, url)))));
  }
});

function ours(url) {
  const u = new URL(url, self.location.origin);
  return u.origin === self.location.origin &&
    (u.pathname.startsWith(SCOPE) || u.pathname.startsWith(STATIC)) &&
    !u.pathname.endsWith("/sw.js");
}

async function staticFirst(request) {
  const cached = await caches.match(request);
  if (cached) return cached;
  const response = await fetch(request);
  if (response.ok) (await caches.open(VERSION)).put(request, response.clone());
  return response;
}

async function pageNetworkFirst(request) {
  const partial = request.headers.get("HX-Request") === "true";
  try {
    const response = await fetch(request);
    if (response.ok && !response.redirected && !partial) {
      (await caches.open(VERSION)).put(request, response.clone());
    }
    return response;
  } catch (e) {
    if (partial) {
      return new Response('<p class="fa-empty">No connection: this needs the network.</p>',
        { headers: { "Content-Type": "text/html; charset=utf-8" } });
    }
    const cached = await caches.match(request, { ignoreVary: true });
    if (cached) return cached;
    const fallback = request.mode === "navigate" && await caches.match(OFFLINE_URL);
    return fallback || new Response("Offline", { status: 503, headers: { "Content-Type": "text/plain" } });
  }
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin || url.pathname.endsWith("/sw.js")) return;
  if (url.pathname.startsWith(STATIC)) event.respondWith(staticFirst(request));
  else if (url.pathname.startsWith(SCOPE)) event.respondWith(pageNetworkFirst(request));
});
