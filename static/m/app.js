/* Volunteer map (/m/): the doors of one assignment in walking order, outcomes in two taps,
 * offline first. Visits are queued in IndexedDB with a client UUID and sent in batches to
 * POST /campaigns/{cid}/visits; replays are harmless (the UUID is the visit's primary key).
 * Nothing about supporters is ever requested or shown here.
 *
 * Legible at every zoom: marks closer than a touch target on screen become one mark with their
 * count (tap: zoom in, or choose among them), so no mark covers another's label; the walking
 * order is a thin line and "next door" follows it. Offline for the whole turf: once the doors are
 * stored, the basemap tiles of the turf (plus a margin) are stored too, within a budget, and the
 * page says how much is saved. When the invite is revoked or the assignment ends, the page sends
 * what it can, then wipes the turf and the queue from the phone and says why. */
(function () {
  "use strict";
  const t = Porte.translator(window.PORTE_MESSAGES);
  const SESSION_KEY = "porte.m.session";
  const ENDED_KEY = "porte.m.ended";   // why the phone was wiped (no personal data), shown once
  const TILE_CACHE = "porte-m-2-tiles"; // must match sw.js
  const TILE_BUDGET = 30 * 1024 * 1024; // basemap bytes kept per turf at most
  const $ = (id) => document.getElementById(id);

  const state = {
    session: null,     // {token, campaign_id, assignment_id, expires_at, kind}
    doors: [],         // [{id, seq, lat, lon, label, households, status}] in walking order
    byId: new Map(),
    markers: new Map(),
    turfName: "",
    selected: null,
    syncing: false,
    listView: false,
    cursor: null,      // the door "next door" starts from (the last one opened)
    endsAt: null,      // ms: the invite's or the assignment's end, whichever comes first
    ending: false,
    cfg: null,
  };

  // ------------------------------------------------------------------ session
  function loadSession() {
    try { return JSON.parse(localStorage.getItem(SESSION_KEY) || "null"); } catch (e) { return null; }
  }
  function saveSession(s) {
    state.session = s;
    if (s) localStorage.setItem(SESSION_KEY, JSON.stringify(s));
    else localStorage.removeItem(SESSION_KEY);
  }

  /** Exchange #invite=<token> for an invite session, then drop the token from the address bar. */
  async function openInviteFromHash() {
    const m = /(?:^|[#&])invite=([^&]+)/.exec(location.hash);
    if (!m) return;
    const token = decodeURIComponent(m[1]);
    try {
      const s = await Porte.api("/auth/invite", { method: "POST", body: { token } });
      saveSession({ token: s.access_token, campaign_id: s.campaign_id,
                    assignment_id: s.assignment_id, expires_at: s.expires_at, kind: "invite" });
      history.replaceState(null, "", location.pathname + location.search);
    } catch (e) {
      if (e instanceof Porte.ApiError) {
        history.replaceState(null, "", location.pathname + location.search);
        if (!state.session) notice(t("notice.invite_failed", { detail: e.message }), true);
      }
      // A network failure keeps the hash: the next load (online) retries; a stored session,
      // if any, is used meanwhile.
    }
  }

  async function signInWithAccount(email, password) {
    const tok = await Porte.signIn(email, password);
    const campaigns = await Porte.api("/campaigns", { token: tok.access_token });
    const list = Array.isArray(campaigns) ? campaigns : (campaigns.items || []);
    const mine = list.find((c) => c.role === "volunteer") || list[0];
    if (!mine) throw new Error(t("notice.no_assignment"));
    const cid = mine.id || mine.campaign_id;
    const asg = await Porte.api(`/campaigns/${cid}/assignments`, { token: tok.access_token });
    const items = Array.isArray(asg) ? asg : (asg.items || asg.assignments || []);
    const active = items.find((a) => a.active) || null;
    saveSession({ token: tok.access_token, campaign_id: cid,
                  assignment_id: active ? active.id : null, kind: "account" });
  }

  // ------------------------------------------------------------------ map
  const map = L.map("map", { zoomControl: false, tap: true, maxZoom: 20 }).setView([46.6, 2.4], 6);
  L.control.zoom({ position: "bottomright" }).addTo(map);
  let turfLayer = null, meMarker = null, walkLine = null;
  const markerLayer = L.layerGroup().addTo(map);
  // Every mark is a 44 px touch target; marks whose centres would be closer than this on screen
  // become one mark with their count, so no mark ever covers another one's label.
  const SPACING = 46;

  function symbol(d) {
    return d.status === "pending" ? (d.seq != null ? String(d.seq) : "●")
      : d.status === "visited" ? "✓" : "✕";
  }
  function statusLabel(s) { return t("status." + s); }
  function doorTitle(d) {
    return `${d.seq != null ? d.seq + " · " : ""}${d.label} — ${statusLabel(d.status)}`
      + (d.households > 1 ? " · " + t("panel.households", { n: Math.round(d.households) }) : "");
  }

  /** Group the doors for the current zoom: in walking order, a door joins the first group whose
   * anchor is less than SPACING px away on both axes, else starts one. Anchors are thus at least
   * SPACING apart, and so are the 44 px marks drawn at them. */
  function groupDoors() {
    const z = map.getZoom();
    const cells = new Map();
    const groups = [];
    for (const d of state.doors) {
      const p = map.project([d.lat, d.lon], z);
      const cx = Math.floor(p.x / SPACING), cy = Math.floor(p.y / SPACING);
      let found = null;
      for (let i = -1; i <= 1 && !found; i++) {
        for (let j = -1; j <= 1 && !found; j++) {
          for (const g of cells.get(`${cx + i},${cy + j}`) || []) {
            if (Math.abs(g.p.x - p.x) < SPACING && Math.abs(g.p.y - p.y) < SPACING) { found = g; break; }
          }
        }
      }
      if (found) { found.doors.push(d); continue; }
      const g = { p, doors: [d] };
      groups.push(g);
      const key = `${cx},${cy}`;
      if (!cells.has(key)) cells.set(key, []);
      cells.get(key).push(g);
    }
    return groups;
  }

  function groupStatus(doors) {
    if (doors.some((d) => d.status === "pending")) return "pending";
    return doors.every((d) => d.status === "flagged") ? "flagged" : "visited";
  }

  function doorIcon(d) {
    const n = Math.round(d.households);
    const flats = d.households > 1 ? `<i class="flats" aria-hidden="true">▦${n}</i>` : "";
    return L.divIcon({
      className: "door-hit",
      html: `<span class="door door-${d.status} door-label">${Porte.escapeHtml(symbol(d))}</span>${flats}`,
      iconSize: [44, 44], iconAnchor: [22, 22],
    });
  }

  function groupIcon(doors) {
    const st = groupStatus(doors);
    return L.divIcon({
      className: "door-hit door-group",
      html: `<span class="door door-${st} door-label stack">×${doors.length}</span>`,
      iconSize: [44, 44], iconAnchor: [22, 22],
    });
  }

  function groupTitle(doors) {
    const pending = doors.filter((d) => d.status === "pending");
    const seqs = doors.map((d) => d.seq).filter((q) => q != null);
    return t("group.title", { n: doors.length, pending: pending.length,
                              first: Math.min(...seqs), last: Math.max(...seqs) });
  }

  function drawDoors() {
    markerLayer.clearLayers();
    state.markers.clear();
    if (!state.doors.length) { drawList(); drawProgress(); return; }
    for (const g of groupDoors()) {
      const one = g.doors.length === 1;
      const d0 = g.doors[0];
      const title = one ? doorTitle(d0) : groupTitle(g.doors);
      const m = L.marker(map.unproject(g.p, map.getZoom()), {
        icon: one ? doorIcon(d0) : groupIcon(g.doors), keyboard: true, title, alt: title,
        riseOnHover: true,
      });
      m.on("click", () => (one ? openPanel(d0.id) : openGroup(g.doors)));
      m.addTo(markerLayer);
      const el = m.getElement();
      if (el) {
        el.setAttribute("aria-label", title);
        el.dataset.count = String(g.doors.length);
        if (one) el.dataset.door = d0.id;
        else el.dataset.doors = g.doors.map((d) => d.id).join(" ");
      }
      for (const d of g.doors) state.markers.set(d.id, m);
    }
    drawList();
    drawProgress();
  }
  map.on("zoomend", () => { if (state.doors.length) drawDoors(); });

  function refreshDoor() { drawDoors(); }

  /** A mark of several doors: zoom in until they part; when they cannot (same building, or
   * the last zoom), choose among them in the panel. */
  function openGroup(doors) {
    const b = L.latLngBounds(doors.map((d) => [d.lat, d.lon]));
    const z = Math.min(map.getBoundsZoom(b, false, L.point(120, 120)), map.getMaxZoom());
    if (z > map.getZoom()) { map.setView(b.getCenter(), z); return; }
    openChooser(doors);
  }

  function doorRow(d) {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "door-row";
    b.dataset.door = d.id;
    b.innerHTML = `<span class="door door-${d.status}" aria-hidden="true">${
      d.status === "pending" ? "●" : d.status === "visited" ? "✓" : "✕"}</span>
      <span class="seq">${d.seq != null ? d.seq : ""}</span>
      <span class="addr">${Porte.escapeHtml(d.label)}${d.households > 1 ? " ▦" + Math.round(d.households) : ""}</span>
      <span class="st">${Porte.escapeHtml(statusLabel(d.status))}</span>`;
    b.addEventListener("click", () => openPanel(d.id));
    return b;
  }

  function drawWalk() {
    if (walkLine) walkLine.remove();
    const pts = state.doors.filter((d) => d.seq != null).map((d) => [d.lat, d.lon]);
    walkLine = pts.length > 1
      ? L.polyline(pts, { color: "#0047ab", weight: 2, opacity: 0.6, interactive: false,
                          className: "walk-line" }).addTo(map)
      : null;
  }

  /** The next door still to do after the last one opened, in walking order (wrapping round). */
  function nextDoor() {
    const order = state.doors;
    if (!order.length) return;
    const from = state.cursor ? order.indexOf(state.cursor) : -1;
    let d = null;
    for (let i = 1; i <= order.length; i++) {
      const c = order[(from + i) % order.length];
      if (c.status === "pending") { d = c; break; }
    }
    if (!d) { toast(t("toast.all_done")); return; }
    if (state.listView) toggleView();
    map.setView([d.lat, d.lon], Math.max(map.getZoom(), 18), { animate: false });
    openPanel(d.id);
    // keep the door above the panel
    map.panBy([0, Math.round($("panel").offsetHeight / 2)], { animate: false });
  }

  function drawList() {
    const ol = $("list");
    ol.innerHTML = "";
    for (const d of state.doors) {
      const li = document.createElement("li");
      li.appendChild(doorRow(d));
      ol.appendChild(li);
    }
  }

  function drawProgress() {
    const total = state.doors.length;
    const done = state.doors.filter((d) => d.status !== "pending").length;
    $("progress").textContent = total ? t("progress", { done, total }) : "";
    document.body.dataset.pending = String(total - done);
  }

  // ------------------------------------------------------------------ panel
  function openPanel(id) {
    const d = state.byId.get(id);
    if (!d) return;
    state.selected = d;
    state.cursor = d;
    $("panel-doors").hidden = true;
    $("outcomes").hidden = false;
    $("panel-title").textContent = d.label;
    $("panel-status").textContent = [
      d.seq != null ? t("panel.seq", { n: d.seq }) : "",
      statusLabel(d.status),
      d.households > 1 ? t("panel.households", { n: Math.round(d.households) }) : "",
    ].filter(Boolean).join(" · ");
    const building = d.households > 1;
    $("panel-building").hidden = !building;
    if (building) {
      const sel = $("flat");
      sel.innerHTML = "";
      const whole = new Option(t("panel.whole"), "");
      sel.add(whole);
      // Fixed choices only (a flat number), never free text about a household.
      const n = Math.min(Math.round(d.households), 60);
      for (let i = 1; i <= n; i++) sel.add(new Option(t("panel.flat_n", { n: i }), String(i)));
    }
    $("panel").hidden = false;
    const first = $("panel").querySelector(".outcome");
    if (first) first.focus({ preventScroll: true });
  }

  /** Several doors under one mark that zooming cannot part: pick one. */
  function openChooser(doors) {
    state.selected = null;
    $("panel-title").textContent = t("group.choose", { n: doors.length });
    $("panel-status").textContent = groupTitle(doors);
    $("panel-building").hidden = true;
    $("outcomes").hidden = true;
    const ol = $("panel-doors");
    ol.innerHTML = "";
    for (const d of doors) {
      const li = document.createElement("li");
      li.appendChild(doorRow(d));
      ol.appendChild(li);
    }
    ol.hidden = false;
    $("panel").hidden = false;
    const first = ol.querySelector("button");
    if (first) first.focus({ preventScroll: true });
  }

  function closePanel() { $("panel").hidden = true; state.selected = null; }

  async function record(outcome, wholeBuilding) {
    const d = state.selected;
    if (!d || !state.session) return;
    const flatSel = $("flat");
    const flat = !wholeBuilding && d.households > 1 && flatSel.value ? flatSel.value : null;
    const visit = {
      id: Porte.uuid(), campaign_id: state.session.campaign_id,
      assignment_id: state.session.assignment_id, address_id: d.id, outcome, flat,
      visited_at: new Date().toISOString(), state: "queued",
    };
    // The door turns grey at once; the server agrees later (or says why not).
    d.status = outcome === "do_not_knock" ? "flagged" : "visited";
    refreshDoor(d);
    state.cursor = d;
    closePanel();
    await PorteStore.putVisit(visit);
    await updateQueueBadge();
    toast(navigator.onLine ? t("toast.recorded") : t("toast.recorded_offline"));
    sync();
  }

  // ------------------------------------------------------------------ sync
  async function updateQueueBadge() {
    const all = await PorteStore.allVisits();
    const n = all.filter((v) => v.state === "queued").length;
    const q = $("queue");
    q.hidden = n === 0;
    q.textContent = t("queue.waiting", { n });
    q.dataset.count = String(n);
    return n;
  }

  /** The API's visit (docs/field.md): no other field, no note, no opinion. */
  function toApiVisit(v) {
    const out = { id: v.id, door: v.address_id, outcome: v.outcome, visited_at: v.visited_at };
    if (v.flat) out.flat = v.flat;
    if (v.assignment_id) out.assignment_id = v.assignment_id;
    return out;
  }

  // ------------------------------------------------------------------ retries
  // When the server cannot take visits now (503 or 429 with Retry-After: restarting, database
  // down or busy), the queue waits as long as it was asked, plus up to half as long again
  // at random, so that phones told the same thing do not all come back in the same second.
  // A network failure or another server error backs off from 2 s, doubling up to 5 min, with
  // the same jitter; coming back online retries at once. Nothing leaves the queue meanwhile.
  const RETRY_BASE_MS = 2000, RETRY_MAX_MS = 5 * 60 * 1000, JITTER = 0.5;
  state.retryAt = 0;      // ms: no sync before this
  state.retryKind = null; // "server" (it said when) or "network"
  state.failures = 0;
  state.retryTimer = null;

  /** How long to wait after a failure (ms): the server's Retry-After, else exponential. */
  function retryDelay(err, failures) {
    const asked = err && Number.isFinite(err.retryAfter) ? err.retryAfter * 1000 : null;
    const base = asked != null ? asked
      : Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** Math.min(Math.max(failures - 1, 0), 12));
    return Math.round(base * (1 + Math.random() * JITTER));
  }

  function scheduleRetry(err, kind) {
    state.failures++;
    state.retryKind = kind;
    const wait = retryDelay(err, state.failures);
    state.retryAt = Date.now() + wait;
    document.body.dataset.retryIn = String(wait);
    clearTimeout(state.retryTimer);
    state.retryTimer = setTimeout(() => { state.retryTimer = null; state.retryAt = 0; sync(); }, wait);
    if (kind === "server") toast(t("toast.retry", { s: Math.ceil(wait / 1000) }));
  }

  function retried() {
    state.failures = 0; state.retryAt = 0; state.retryKind = null;
    clearTimeout(state.retryTimer); state.retryTimer = null;
    delete document.body.dataset.retryIn;
  }

  /** Send queued visits in batches of 200; keep them queued on any failure, and try again when
   * the server said (Retry-After) or after a jittered backoff. */
  async function sync() {
    if (!state.session) return;
    if (state.syncing) { state.syncAgain = true; return; } // visits recorded meanwhile
    if (Date.now() < state.retryAt) return; // the scheduled retry sends them
    state.syncing = true;
    state.syncAgain = false;
    try {
      const all = await PorteStore.allVisits();
      const queued = all.filter((v) => v.state === "queued"
        && v.campaign_id === state.session.campaign_id);
      let sent = 0, rejected = 0, lastDetail = "";
      for (let i = 0; i < queued.length; i += 200) {
        const batch = queued.slice(i, i + 200);
        let resp;
        try {
          resp = await Porte.api(`/campaigns/${state.session.campaign_id}/visits`, {
            method: "POST", token: state.session.token,
            body: { visits: batch.map(toApiVisit) },
          });
        } catch (e) {
          if (e instanceof Porte.ApiError && refusedForGood(e.status)) {
            state.refused = e.status;
            break;
          }
          if (!(e instanceof Porte.ApiError)) { scheduleRetry(e, "network"); break; }
          if (e.status === 503 || e.status === 429 || e.status >= 500) {
            scheduleRetry(e, e.retryAfter != null ? "server" : "network");
            break;
          }
          if (e instanceof Porte.ApiError && e.status === 401) notice(t("notice.expired"), true);
          if (e instanceof Porte.ApiError && e.status === 422 && batch.length === 1) {
            batch[0].state = "rejected"; batch[0].error = e.message;
            await PorteStore.putVisit(batch[0]);
            rejected++; lastDetail = e.message;
          }
          break; // network down or server refusing: keep the rest queued
        }
        retried();
        const results = new Map();
        for (const r of (resp && resp.results) || []) results.set(r.id, r);
        for (const v of batch) {
          const r = results.get(v.id);
          if (r && r.result === "rejected") {
            v.state = "rejected"; v.error = r.message || r.reason;
            rejected++; lastDetail = v.error;
            const d = state.byId.get(v.address_id);
            if (d && d.serverStatus) { d.status = d.serverStatus; refreshDoor(d); }
          } else {
            v.state = "sent";
            sent++;
          }
          await PorteStore.putVisit(v);
        }
      }
      if (sent) toast(t("toast.sent", { n: sent }));
      if (rejected) toast(t("toast.rejected", { n: rejected, detail: lastDetail }));
    } finally {
      state.syncing = false;
      await updateQueueBadge();
      if (state.refused && !state.ending) endSession(state.refused === 403 ? "ended" : "revoked");
      else if (state.syncAgain && navigator.onLine) sync();
    }
  }

  /** The server will never take this session's visits again: an invite revoked or expired
   * (401), an assignment ended (403) or gone (404). A signed-in account's 401 only means its
   * token expired: it signs in again and keeps its queue. */
  function refusedForGood(status) {
    if (status === 403 || status === 404) return true;
    return status === 401 && state.session && state.session.kind === "invite";
  }

  /** Send what can still be sent, then wipe the turf, the queue, the stored basemap tiles and
   * the session from this phone, and say why (the reason survives the reload, nothing else). */
  async function endSession(reason) {
    if (state.ending) return;
    state.ending = true;
    if (navigator.onLine && !state.refused) {
      try { await sync(); } catch (e) { /* nothing more can be sent */ }
    }
    let lost = 0;
    try { lost = (await PorteStore.allVisits()).filter((v) => v.state === "queued").length; }
    catch (e) { /* storage already gone */ }
    await wipeLocal();
    sessionStorage.setItem(ENDED_KEY, JSON.stringify({ reason, lost }));
    location.replace("/m/");
  }

  async function wipeLocal() {
    localStorage.removeItem(SESSION_KEY);
    if (window.caches) {
      for (const k of await caches.keys()) {
        if (k.endsWith("-data") || k.endsWith("-tiles")) await caches.delete(k);
      }
    }
    await PorteStore.destroy();
  }

  function checkEnd() {
    if (state.endsAt != null && Date.now() >= state.endsAt && !state.ending) endSession("ended");
  }

  // ------------------------------------------------------------------ loading
  const STATUS = { p: "pending", v: "visited", f: "flagged",
                   pending: "pending", visited: "visited", flagged: "flagged" };

  /** Doors from GET /assignments/{id}/doors (docs/field.md: short property names q, n, v, h, s). */
  function normalise(fc) {
    const streets = (fc && fc.streets) || [];
    const doors = [];
    for (const f of (fc && fc.features) || []) {
      const p = f.properties || {};
      if (!f.geometry || f.geometry.type !== "Point") continue;
      const street = p.v != null ? streets[p.v] : "";
      const status = STATUS[p.s] || "pending";
      doors.push({
        id: Number(f.id), seq: p.q != null ? p.q : null,
        label: [p.n, street].filter((x) => x != null && x !== "").join(" ") || `#${f.id}`,
        households: Number(p.h || 1), status, serverStatus: status,
        lon: f.geometry.coordinates[0], lat: f.geometry.coordinates[1],
      });
    }
    doors.sort((a, b) => (a.seq == null ? 1e9 : a.seq) - (b.seq == null ? 1e9 : b.seq));
    return { doors, name: (fc && fc.turf) || "" };
  }

  /** The turf outline drawn on the phone: the convex hull of its doors (what a cut turf's outline
   * is, docs/field.md), computed here so that it needs no extra request and works offline. */
  function hull(points) {
    const pts = points.map((p) => [p[1], p[0]]).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    if (pts.length < 3) return null;
    const cross = (o, a, b) => (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]);
    const lower = [], upper = [];
    for (const p of pts) {
      while (lower.length >= 2 && cross(lower[lower.length - 2], lower[lower.length - 1], p) <= 0) lower.pop();
      lower.push(p);
    }
    for (let i = pts.length - 1; i >= 0; i--) {
      const p = pts[i];
      while (upper.length >= 2 && cross(upper[upper.length - 2], upper[upper.length - 1], p) <= 0) upper.pop();
      upper.push(p);
    }
    const ring = lower.slice(0, -1).concat(upper.slice(0, -1));
    return ring.map((p) => [p[1], p[0]]);
  }

  async function fetchDoors() {
    const s = state.session;
    const url = `/campaigns/${s.campaign_id}/assignments/${s.assignment_id}/doors`;
    const key = "doors:" + s.assignment_id;
    try {
      const resp = await fetch(url, { headers: { Authorization: "Bearer " + s.token,
                                                  Accept: "application/geo+json, application/json" } });
      if (resp.status === 401 || resp.status === 403 || resp.status === 404) {
        if (refusedForGood(resp.status)) {
          await endSession(resp.status === 403 ? "ended" : "revoked");
          return null;
        }
        notice(t("notice.expired"), true);
        return null;
      }
      if (!resp.ok) throw new Error(resp.statusText);
      const fc = await resp.json();
      const fromCache = resp.headers.get("X-Porte-Offline") === "1";
      if (fromCache) notice(t("notice.offline_copy"), false, "offline");
      else {
        clearNotice("offline");
        try { await PorteStore.set(key, fc); } catch (e) { state.doorsNotSaved = true; }
        state.doorsFresh = true;
        // The server now knows every visit it acknowledged: forget them locally.
        for (const v of await PorteStore.allVisits()) {
          if (v.state === "sent" && v.assignment_id === s.assignment_id) await PorteStore.deleteVisit(v.id);
        }
      }
      return fc;
    } catch (e) {
      const fc = await PorteStore.get(key);
      if (fc) { notice(t("notice.offline_copy"), false, "offline"); return fc; }
      notice(t("notice.load_failed", { detail: e.message }), true);
      return null;
    }
  }

  /** Show as done every door with a visit recorded here and not yet reflected by the server. */
  async function overlayLocalVisits() {
    for (const v of await PorteStore.allVisits()) {
      if (v.state === "rejected" || v.assignment_id !== state.session.assignment_id) continue;
      const d = state.byId.get(v.address_id);
      if (!d) continue;
      if (v.outcome === "do_not_knock") d.status = "flagged";
      else if (d.status === "pending") d.status = "visited";
    }
  }

  async function loadAssignment() {
    if (!state.session.assignment_id) { notice(t("notice.no_assignment"), true); return; }
    const fc = await fetchDoors();
    if (!fc) return;
    state.endsAt = endOf(fc);
    checkEnd();
    if (state.ending) return;
    if (state.endsAt != null && state.endsAt - Date.now() < 2 ** 31 - 1) {
      setTimeout(checkEnd, state.endsAt - Date.now() + 250);
    }
    const { doors, name } = normalise(fc);
    state.doors = doors;
    state.byId = new Map(doors.map((d) => [d.id, d]));
    state.turfName = name;
    if (name) { $("turf-name").textContent = name; document.title = name + " — Porte-à-porte"; }
    await overlayLocalVisits();
    if (turfLayer) turfLayer.remove();
    const ring = hull(doors.map((d) => [d.lat, d.lon]));
    if (ring) {
      turfLayer = L.polygon(ring, { interactive: false, color: "#0047ab", weight: 4,
                                    dashArray: "8 6", fill: false, className: "turf-outline" })
        .addTo(map);
    }
    const pts = doors.map((d) => [d.lat, d.lon]);
    // room at the bottom right for the zoom buttons
    const pad = { paddingTopLeft: [30, 30], paddingBottomRight: [50, 40], maxZoom: 18 };
    if (turfLayer) map.fitBounds(turfLayer.getBounds(), pad);
    else if (pts.length) map.fitBounds(L.latLngBounds(pts), pad);
    drawWalk();
    drawDoors();
    document.body.dataset.loaded = "1";
    if (state.doorsFresh) saveTurfOffline(fc);
    else showSaved();
  }

  /** When the session stops: the invite's expiry or the assignment's end, the earlier. */
  function endOf(fc) {
    const ends = [state.session.expires_at, fc && fc.ends_at]
      .filter(Boolean).map((x) => Date.parse(x)).filter((x) => !isNaN(x));
    return ends.length ? Math.min(...ends) : null;
  }

  function turfBounds() {
    if (turfLayer) return turfLayer.getBounds();
    return L.latLngBounds(state.doors.map((d) => [d.lat, d.lon]));
  }

  function mb(bytes) {
    return (bytes / 1e6).toLocaleString(Porte.lang, { maximumFractionDigits: 1,
                                                      minimumFractionDigits: 1 });
  }

  /** Keep the basemap tiles of the turf (plus a margin) at the zooms a volunteer walks at
   * (display 13-19: data tiles up to the archive's last zoom, over-zoomed beyond), within a
   * budget and what the phone grants. The doors are stored first (IndexedDB and the service
   * worker), so a refusal only ever costs map tiles; the page says how much is saved. */
  async function saveTurfOffline(fc) {
    const doorsBytes = JSON.stringify(fc).length;
    const bm = state.cfg && state.cfg.basemap;
    const report = { doors: !state.doorsNotSaved, bytes: doorsBytes, tiles: 0, wanted: 0,
                     refused: null, version: bm ? bm.version : null };
    if (bm && window.caches && state.doors.length) {
      const b = turfBounds();
      const margin = Math.max(0.003, 0.25 * Math.max(b.getNorth() - b.getSouth(),
                                                     b.getEast() - b.getWest()));
      const area = L.latLngBounds([b.getSouth() - margin, b.getWest() - margin * 1.5],
                                  [b.getNorth() + margin, b.getEast() + margin * 1.5]);
      const tiles = PorteBasemap.tilesFor(bm, area, 13, 19);
      report.wanted = tiles.length;
      let budget = TILE_BUDGET;
      try {
        if (navigator.storage && navigator.storage.estimate) {
          const est = await navigator.storage.estimate();
          if (est.quota) budget = Math.min(budget, Math.max(0, (est.quota - est.usage) / 2));
        }
        if (navigator.storage && navigator.storage.persist) navigator.storage.persist();
      } catch (e) { /* no estimate: the fixed budget */ }
      const cache = await caches.open(TILE_CACHE);
      for (const req of await cache.keys()) {
        if (!req.url.includes("v=" + bm.version)) await cache.delete(req); // an older archive
      }
      let next = 0;
      const worker = async () => {
        while (next < tiles.length && !report.refused) {
          const tile = tiles[next++];
          try {
            let resp = await cache.match(tile.url);
            let size;
            if (resp) size = (await resp.arrayBuffer()).byteLength;
            else {
              resp = await fetch(tile.url);
              if (!resp.ok) continue;
              const body = await resp.clone().arrayBuffer();
              size = body.byteLength;
              if (report.bytes - doorsBytes + size > budget) { report.refused = "budget"; break; }
              await cache.put(tile.url, resp);
            }
            report.bytes += size;
            report.tiles++;
          } catch (e) {
            if (e && e.name === "QuotaExceededError") report.refused = "quota";
            else if (!navigator.onLine) break;
          }
        }
      };
      await Promise.all([worker(), worker(), worker(), worker()]);
    }
    try { await PorteStore.set("offline:" + state.session.assignment_id, report); }
    catch (e) { /* the report itself could not be kept */ }
    showSaved(report, true);
  }

  async function showSaved(report, fresh) {
    if (!report) {
      try { report = await PorteStore.get("offline:" + state.session.assignment_id); }
      catch (e) { report = null; }
    }
    const el = $("offline-status");
    if (!report) { el.hidden = true; return; }
    let msg;
    if (!report.doors) msg = t("offline.doors_refused");
    else if (report.refused || report.tiles < report.wanted) {
      const pct = report.wanted ? Math.floor(100 * report.tiles / report.wanted) : 0;
      msg = t("offline.partial", { size: mb(report.bytes), pct });
    } else if (!report.wanted) msg = t("offline.doors_only", { size: mb(report.bytes) });
    else msg = t("offline.saved", { size: mb(report.bytes) });
    el.textContent = msg;
    el.hidden = false;
    el.dataset.bytes = String(report.bytes);
    el.dataset.tiles = String(report.tiles);
    el.dataset.wanted = String(report.wanted);
    if (fresh) toast(msg);
  }

  // ------------------------------------------------------------------ ui helpers
  let toastTimer = null;
  function toast(msg) {
    const el = $("toast");
    el.textContent = msg;
    el.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { el.hidden = true; }, 3500);
  }
  function notice(msg, important, key) {
    const el = $("notice");
    el.textContent = msg;
    el.hidden = false;
    el.dataset.key = key || "";
    el.classList.toggle("important", !!important);
    map.invalidateSize();
  }
  function clearNotice(key) {
    const el = $("notice");
    if (el.dataset.key === key) { el.hidden = true; map.invalidateSize(); }
  }
  function setOnline() {
    $("net").hidden = navigator.onLine;
    if (navigator.onLine) {
      clearNotice("offline");
      if (state.retryKind === "network") retried(); // the network is back: try now
      sync();
    }
  }

  function locate() {
    if (!navigator.geolocation) { toast(t("toast.no_location")); return; }
    navigator.geolocation.getCurrentPosition((pos) => {
      const ll = [pos.coords.latitude, pos.coords.longitude];
      if (meMarker) meMarker.remove();
      meMarker = L.circleMarker(ll, { radius: 10, color: "#fff", weight: 3, fillColor: "#0047ab",
                                      fillOpacity: 1 }).addTo(map);
      map.setView(ll, Math.max(map.getZoom(), 17));
      toast(t("toast.located", { m: Math.round(pos.coords.accuracy) }));
    }, () => toast(t("toast.no_location")), { enableHighAccuracy: true, timeout: 10000 });
  }

  /** Remove the session, the queue and the cached turf from this phone (asks first when
   * visits still wait to be sent: they would be lost). */
  async function forget() {
    const waiting = await updateQueueBadge();
    const msg = waiting ? t("forget.confirm_waiting", { n: waiting }) : t("forget.confirm");
    if (!window.confirm(msg)) return;
    await wipeLocal();
    location.replace("/m/");
  }

  function toggleView() {
    state.listView = !state.listView;
    $("list-view").hidden = !state.listView;
    $("map").hidden = state.listView;
    $("btn-view").textContent = state.listView ? t("tool.map") : t("tool.list");
    $("btn-view").setAttribute("aria-pressed", String(state.listView));
    if (!state.listView) map.invalidateSize();
  }

  // ------------------------------------------------------------------ start
  async function start() {
    Porte.translatePage(t);
    $("map").setAttribute("aria-label", t("map.label"));
    $("panel-close").addEventListener("click", closePanel);
    $("notice").addEventListener("click", () => { $("notice").hidden = true; map.invalidateSize(); });
    $("outcomes").addEventListener("click", (ev) => {
      const b = ev.target.closest("[data-outcome]");
      if (b) record(b.dataset.outcome, false);
    });
    $("panel-building").addEventListener("click", (ev) => {
      const b = ev.target.closest("[data-outcome]");
      if (b) record(b.dataset.outcome, true);
    });
    $("btn-locate").addEventListener("click", locate);
    $("btn-next").addEventListener("click", nextDoor);
    $("btn-view").addEventListener("click", toggleView);
    $("btn-forget").addEventListener("click", forget);
    document.addEventListener("keydown", (ev) => { if (ev.key === "Escape") closePanel(); });
    window.addEventListener("online", setOnline);
    window.addEventListener("offline", setOnline);
    setInterval(() => { if (navigator.onLine) sync(); }, 30000);
    setInterval(checkEnd, 15000);

    if ("serviceWorker" in navigator) {
      navigator.serviceWorker.register("/m/sw.js", { scope: "/m/" }).catch(() => { /* no SW: IDB copy */ });
    }
    const cfg = await Porte.config();
    state.cfg = cfg;
    Porte.addBasemap(map, cfg, () => notice(t("notice.basemap"), false, "basemap"));

    const ended = sessionStorage.getItem(ENDED_KEY);
    if (ended) {
      sessionStorage.removeItem(ENDED_KEY);
      let why = {};
      try { why = JSON.parse(ended); } catch (e) { /* keep the default */ }
      notice(t(why.reason === "ended" ? "wiped.ended" : "wiped.revoked")
             + (why.lost ? " " + t("wiped.lost", { n: why.lost }) : ""), true, "wiped");
    }
    state.session = loadSession();
    await openInviteFromHash();
    if (!state.session) {
      $("signin").hidden = false;
      $("map").hidden = true;
      $("signin-form").addEventListener("submit", async (ev) => {
        ev.preventDefault();
        const f = ev.target;
        try {
          await signInWithAccount(f.email.value, f.password.value);
          $("signin").hidden = true;
          $("map").hidden = false;
          map.invalidateSize();
          await loadAssignment();
          setOnline();
        } catch (e) { $("signin-error").textContent = e.message; }
      });
      return;
    }
    $("btn-sheet").href = `/m/sheet.html?campaign=${state.session.campaign_id}&assignment=${state.session.assignment_id}`;
    await loadAssignment();
    await updateQueueBadge();
    setOnline();
  }

  window.PorteM = { state, sync, record, openPanel, nextDoor, drawDoors, retryDelay };
  start();
})();
