/* Service worker of the volunteer page: the page, its assets, the assignment and the basemap of
 * the turf stay available offline. Shell: served from the cache at once and refreshed in the
 * background. Assignment doors and the map config: network first, the cached copy when the
 * network is down (marked with the X-Porte-Offline header so the page can say so). Basemap tiles
 * (/basemap/..., immutable per archive version): cache first; the page stores the turf's tiles
 * when it opens an assignment (app.js, saveTurfOffline). POSTs (visits) are never cached: the page
 * queues them in IndexedDB and replays them. Only same-origin requests exist. */
"use strict";
const VERSION = "porte-m-2";
const SHELL = `${VERSION}-shell`;
const DATA = `${VERSION}-data`;
const TILES = `${VERSION}-tiles`; // the page writes the turf's tiles here (app.js TILE_CACHE)
const ASSETS = [
  "/m/", "/m/app.js", "/m/i18n.js", "/m/store.js", "/m/m.css", "/m/icon.svg",
  "/m/manifest.webmanifest", "/m/sheet.html", "/m/sheet.js", "/m/sheet.css",
  "/static/shared/porte.js", "/static/shared/basemap.js",
  "/static/vendor/leaflet/leaflet.js", "/static/vendor/leaflet/leaflet.css",
  "/static/vendor/protomaps-leaflet/protomaps-leaflet.js",
];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(SHELL).then((c) => c.addAll(ASSETS)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    for (const key of await caches.keys()) {
      if (!key.startsWith(VERSION)) await caches.delete(key);
    }
    await self.clients.claim();
  })());
});

function isData(url) {
  return url.pathname === "/m/config.json"
    || /^\/campaigns\/[^/]+\/assignments\/[^/]+\/doors$/.test(url.pathname);
}

async function networkFirst(request) {
  const cache = await caches.open(DATA);
  try {
    const resp = await fetch(request);
    if (resp.ok) await cache.put(request, resp.clone());
    return resp;
  } catch (err) {
    const hit = await cache.match(request, { ignoreVary: true });
    if (!hit) throw err;
    const headers = new Headers(hit.headers);
    headers.set("X-Porte-Offline", "1");
    return new Response(await hit.blob(), { status: hit.status, headers });
  }
}

async function cacheFirst(request) {
  const cache = await caches.open(TILES);
  const hit = await cache.match(request);
  if (hit) return hit;
  const resp = await fetch(request);
  if (resp.ok) cache.put(request, resp.clone()).catch(() => { /* storage full: still shown */ });
  return resp;
}

async function staleWhileRevalidate(request) {
  const cache = await caches.open(SHELL);
  const path = new URL(request.url).pathname;
  const nav = request.mode === "navigate";
  // Pages are cached without their query string (the sheet's ?campaign=...&assignment=...).
  const key = nav ? (path === "/m/index.html" ? "/m/" : path) : request;
  const hit = await cache.match(key, { ignoreSearch: nav });
  const refresh = fetch(request).then((resp) => {
    if (resp.ok) cache.put(key, resp.clone());
    return resp;
  }).catch(() => hit || Response.error());
  return hit || refresh;
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return; // an explicit raster basemap: not ours
  if (isData(url)) { event.respondWith(networkFirst(request)); return; }
  if (url.pathname.startsWith("/basemap/")) { event.respondWith(cacheFirst(request)); return; }
  if (url.pathname.startsWith("/m/") || url.pathname.startsWith("/static/")) {
    event.respondWith(staleWhileRevalidate(request));
  }
});
