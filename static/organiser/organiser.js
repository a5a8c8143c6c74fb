/* Organiser map: turfs coloured by progress, doors by status (vector tiles, refreshed every
 * 20 s so doors turn grey as visits arrive), and the list of turfs with their assignments. */
(function () {
  "use strict";
  const t = Porte.translator({
    fr: {
          hello: "Bonjour {name}", hello_anonymous: "Bonjour",
          role_admin: "administrateur", role_organiser: "organisateur", role_analyst: "analyste",
          role_volunteer: "bénévole", campaign_label: "Campagne", map_label: "Carte",
          page_title: "Porte-à-porte — organisation",
          title: "Organisation du porte-à-porte", signout: "Se déconnecter", signin: "Connexion",
          email: "E-mail", password: "Mot de passe", totp: "Code à deux facteurs (si activé)",
          submit: "Se connecter", pending: "À faire", visited: "Faite (tour en cours)",
          flagged: "Ne pas frapper", grid_help: "Jusqu'au zoom 14, les portes sont comptées par carré.",
          turfs: "Secteurs", turf: "Secteur", progress: "Avancement", assignment: "Attribution",
          assigned: "attribué", free: "libre", sheet: "feuille", doors: "portes",
          no_campaign: "Aucune campagne où vous êtes organisateur ou administrateur.",
          basemap: "Fond de carte injoignable : secteurs et portes restent affichés.",
          cell: "{doors} portes : {pending} à faire, {visited} faites, {flagged} à ne pas frapper",
          door: "Porte n° {id} : {status}", no_turfs: "Aucun secteur pour l'instant." },
    en: {
          hello: "Hello {name}", hello_anonymous: "Hello",
          role_admin: "admin", role_organiser: "organiser", role_analyst: "analyst",
          role_volunteer: "volunteer", campaign_label: "Campaign", map_label: "Map",
          page_title: "Door to door — organiser",
          title: "Canvassing organiser", signout: "Sign out", signin: "Sign in", email: "E-mail",
          password: "Password", totp: "Two-factor code (if enabled)", submit: "Sign in",
          pending: "To do", visited: "Done (current round)", flagged: "Do not knock",
          grid_help: "Up to zoom 14, doors are counted per square.", turfs: "Turfs", turf: "Turf",
          progress: "Progress", assignment: "Assignment", assigned: "assigned", free: "free",
          sheet: "sheet", doors: "doors",
          no_campaign: "No campaign where you are an organiser or admin.",
          basemap: "Background map unreachable: turfs and doors are still shown.",
          cell: "{doors} doors: {pending} to do, {visited} done, {flagged} do not knock",
          door: "Door #{id}: {status}", no_turfs: "No turf yet." },
  });
  const $ = (id) => document.getElementById(id);
  const COLORS = { pending: "#c8102e", visited: "#6e6e6e", flagged: "#111111" };

  function turfStyle(p) {
    const prog = p.progress == null ? 0 : p.progress;
    // from red (nothing done) to grey (all done): the same meaning as the doors
    const r = Math.round(200 - 90 * prog), g = Math.round(16 + 94 * prog), b = Math.round(46 + 64 * prog);
    return { color: "#0047ab", weight: p.assignments > 0 ? 3 : 2, dashArray: p.assignments > 0 ? null : "6 4",
             fill: true, fillColor: `rgb(${r},${g},${b})`, fillOpacity: 0.25 };
  }

  function doorStyle(p, zoom) {
    if (p.doors != null && p.status == null) { // aggregated cell
      const done = (p.visited + p.flagged) / Math.max(p.doors, 1);
      return { radius: Math.min(4 + Math.sqrt(p.doors) * 1.3, 16), weight: 1.5, color: "#fff",
               fill: true, fillOpacity: 0.85, fillColor: done >= 0.5 ? COLORS.visited : COLORS.pending };
    }
    if (p.status === "flagged") {
      return { radius: 6, weight: 3, color: "#ffd400", fill: true, fillColor: COLORS.flagged, fillOpacity: 1 };
    }
    return { radius: zoom >= 17 ? 7 : 5, weight: 2, color: "#fff", fill: true, fillOpacity: 1,
             fillColor: COLORS[p.status] || COLORS.pending };
  }

  async function start() {
    Porte.translatePage(t);
    const s = await PorteStaff.ensureSession(t, ["admin", "organiser"]);
    const map = L.map("map").setView([46.6, 2.4], 6);
    Porte.addBasemap(map, await Porte.config(), () => {
      $("notice").hidden = false; $("notice").textContent = t("basemap"); });
    let turfs = null;
    function addTurfs() {
      const layer = PorteStaff.mvtLayer(s, "turfs", { turfs: turfStyle }, { pane: "overlayPane" });
      layer.on("click", (ev) => {
        const p = ev.layer.properties;
        L.popup().setLatLng(ev.latlng).setContent(
          `<strong>${Porte.escapeHtml(p.name)}</strong><br>${p.doors} ${t("doors")} · ${
            Math.round((p.progress || 0) * 100)} %`).openOn(map);
      });
      layer.addTo(map);
      if (turfs) map.removeLayer(turfs);
      turfs = layer;
    }
    addTurfs();
    let doors = null;
    function addDoors() {
      const layer = PorteStaff.mvtLayer(s, "doors", { doors: doorStyle }, { minZoom: 10 });
      layer.on("click", (ev) => {
        const p = ev.layer.properties;
        const text = p.status ? t("door", { id: p.id, status: t(p.status) }) : t("cell", p);
        L.popup().setLatLng(ev.latlng).setContent(Porte.escapeHtml(text)).openOn(map);
      });
      layer.addTo(map);
      if (doors) map.removeLayer(doors);
      doors = layer;
    }
    addDoors();
    // doors turn grey as visits arrive: reload the tiles (304 when nothing changed)
    setInterval(() => { if (map.getZoom() >= 10) addDoors(); turfs.redraw(); }, 20000);
    PorteStaff.keepFresh(s, () => { addTurfs(); addDoors(); });
    await loadTurfs(s, map);
    document.body.dataset.loaded = "1";
  }

  async function loadTurfs(s, map) {
    const body = $("turfs");
    let turfs = [], assignments = [];
    try {
      const data = await Porte.api(`/campaigns/${s.campaign_id}/turfs`, { token: s.token });
      turfs = Array.isArray(data) ? data : (data.turfs || data.items || data.features || []);
      const a = await Porte.api(`/campaigns/${s.campaign_id}/assignments`, { token: s.token });
      assignments = Array.isArray(a) ? a : (a.assignments || a.items || []);
    } catch (e) {
      body.innerHTML = `<tr><td colspan="3" class="error">${Porte.escapeHtml(e.message)}</td></tr>`;
      return;
    }
    body.innerHTML = "";
    if (!turfs.length) { body.innerHTML = `<tr><td colspan="3">${t("no_turfs")}</td></tr>`; return; }
    const bounds = L.latLngBounds([]);
    for (const tf of turfs) {
      const p = tf.properties || tf;
      const id = p.id || tf.id;
      // GET /turfs (docs/field.md): door_count, visited and flagged in the current round
      const total = p.door_count || 0;
      const done = (p.visited || 0) + (p.flagged || 0);
      const active = assignments.filter((a) => a.turf_id === id && (a.active != null ? a.active : !a.ended_at));
      const tr = document.createElement("tr");
      const links = active.map((a) => `<a href="/m/sheet.html?campaign=${s.campaign_id}&assignment=${a.id}">${t("sheet")}</a>`).join(" ");
      tr.innerHTML = `<td>${Porte.escapeHtml(p.name)}</td>
        <td class="num">${done}/${total}</td>
        <td>${active.length ? t("assigned") + " " + links : t("free")}</td>`;
      body.appendChild(tr);
      const geom = tf.geometry || p.geometry;
      if (geom) { try { bounds.extend(L.geoJSON(geom).getBounds()); } catch (e) { /* skip */ } }
    }
    if (bounds.isValid()) map.fitBounds(bounds, { padding: [20, 20] });
  }

  start().catch((e) => { $("notice").hidden = false; $("notice").textContent = e.message; });
})();
