/* Printable walk sheet of one assignment + bulk entry of the outcomes ticked on paper.
 * Each row gets a client UUID once, kept in sessionStorage: sending twice (a retry after a
 * network error) cannot record a door twice. */
(function () {
  "use strict";
  const t = Porte.translator(window.PORTE_MESSAGES);
  const $ = (id) => document.getElementById(id);
  const OUTCOMES = ["talked", "not_home", "refused", "moved", "no_access", "do_not_knock"];
  const params = new URLSearchParams(location.search);

  function session() {
    let s = null;
    try { s = JSON.parse(localStorage.getItem("porte.m.session") || "null"); } catch (e) { /* none */ }
    const staff = Porte.staffSession();
    const cid = params.get("campaign") || (s && s.campaign_id);
    const aid = params.get("assignment") || (s && s.assignment_id);
    // Staff pages keep their token in this tab's sessionStorage; volunteers in localStorage.
    const token = (staff && staff.campaign_id === cid && staff.token) || (s && s.token);
    return cid && aid && token ? { cid, aid, token } : null;
  }

  function rowIds(aid) {
    const key = "porte.sheet.ids." + aid;
    let ids = {};
    try { ids = JSON.parse(sessionStorage.getItem(key) || "{}"); } catch (e) { /* fresh */ }
    return { get: (door) => (ids[door] = ids[door] || Porte.uuid()),
             save: () => sessionStorage.setItem(key, JSON.stringify(ids)) };
  }

  async function start() {
    Porte.translatePage(t);
    $("print").addEventListener("click", () => window.print());
    const now = new Date();
    $("when").textContent = now.toLocaleDateString(Porte.lang);
    const local = new Date(now.getTime() - now.getTimezoneOffset() * 60000);
    $("visited-at").value = local.toISOString().slice(0, 16);
    const s = session();
    if (!s) { $("error").textContent = t("sheet.missing"); return; }
    let fc;
    try {
      fc = await Porte.api(`/campaigns/${s.cid}/assignments/${s.aid}/doors`, { token: s.token });
    } catch (e) { $("error").textContent = e.message; return; }
    const streets = fc.streets || [];
    $("turf").textContent = fc.turf || "";
    const head = $("head");
    head.innerHTML = `<th>${t("sheet.col_seq")}</th><th>${t("sheet.col_address")}</th>` +
      OUTCOMES.map((o) => `<th class="o">${Porte.escapeHtml(t("outcome." + o))}</th>`).join("") +
      `<th class="res">${t("sheet.col_result")}</th>`;
    const rows = $("rows");
    const pts = [];
    for (const f of fc.features || []) {
      const p = f.properties || {};
      const label = [p.n, p.v != null ? streets[p.v] : ""].filter(Boolean).join(" ");
      const done = p.s === "v" || p.s === "f";
      const tr = document.createElement("tr");
      tr.dataset.door = f.id;
      if (done) tr.className = "done";
      tr.innerHTML = `<td><span class="seqmark">${p.q != null ? p.q : ""}</span></td>
        <td class="addr">${Porte.escapeHtml(label)}${p.h > 1 ? " ▦ " + Math.round(p.h) : ""}${
          p.s === "f" ? " ✕" : p.s === "v" ? " ✓" : ""}</td>` +
        OUTCOMES.map((o) => `<td><input type="radio" name="d${f.id}" value="${o}"
          aria-label="${Porte.escapeHtml(label + " — " + t("outcome." + o))}"
          ${p.s === "f" ? "disabled" : ""}></td>`).join("") + `<td class="res"></td>`;
      rows.appendChild(tr);
      pts.push({ ll: [f.geometry.coordinates[1], f.geometry.coordinates[0]], q: p.q, s: p.s });
    }
    drawMinimap(pts);
    const ids = rowIds(s.aid);
    $("bulk").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const when = new Date($("visited-at").value);
      const visits = [];
      for (const tr of rows.querySelectorAll("tr")) {
        const checked = tr.querySelector("input:checked");
        if (!checked) continue;
        visits.push({ id: ids.get(tr.dataset.door), door: Number(tr.dataset.door),
                      outcome: checked.value, visited_at: when.toISOString(),
                      assignment_id: s.aid });
      }
      ids.save();
      if (!visits.length) { $("result").textContent = t("sheet.nothing"); return; }
      $("send").disabled = true;
      try {
        const resp = await Porte.api(`/campaigns/${s.cid}/visits`, {
          method: "POST", token: s.token, body: { visits } });
        const byId = new Map((resp.results || []).map((r) => [r.id, r]));
        let ok = 0, bad = 0;
        for (const v of visits) {
          const r = byId.get(v.id);
          const cell = rows.querySelector(`tr[data-door="${v.door}"] td.res`);
          if (r && r.result === "rejected") { bad++; cell.textContent = "✕ " + (r.message || r.reason); }
          else { ok++; cell.textContent = "✓"; }
        }
        $("result").textContent = t("sheet.sent", { n: ok, r: bad });
      } catch (e) {
        $("result").textContent = e.message;
      } finally { $("send").disabled = false; }
    });
  }

  async function drawMinimap(pts) {
    if (!pts.length) return;
    const map = L.map("minimap", { zoomControl: false, attributionControl: true,
                                   dragging: false, scrollWheelZoom: false });
    const cfg = await Porte.config();
    Porte.addBasemap(map, cfg, null);
    const line = L.polyline(pts.map((p) => p.ll), { color: "#000", weight: 1, opacity: 0.6 });
    line.addTo(map);
    for (const p of pts) {
      L.circleMarker(p.ll, { radius: 4, weight: 1, color: "#000",
        fillColor: p.s === "p" ? "#c8102e" : p.s === "v" ? "#6e6e6e" : "#111", fillOpacity: 1 })
        .addTo(map);
    }
    map.fitBounds(line.getBounds(), { padding: [10, 10] });
  }

  start();
})();
