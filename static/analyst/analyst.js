/* Analyst map: district choropleth of the ranking score, aggregates >= k, and each district's
 * per-factor explanation on click. It requests the districts layer only: never doors or turfs. */
(function () {
  "use strict";
  const t = Porte.translator({
    fr: {
          hello: "Bonjour {name}", hello_anonymous: "Bonjour",
          role_admin: "administrateur", role_organiser: "organisateur", role_analyst: "analyste",
          role_volunteer: "bénévole", campaign_label: "Campagne", map_label: "Carte",
          page_title: "Porte-à-porte — analyse",
          title: "Priorités par bureau de vote", signout: "Se déconnecter", signin: "Connexion",
          email: "E-mail", password: "Mot de passe", totp: "Code à deux facteurs (si activé)",
          submit: "Se connecter", click_help: "Touchez un bureau pour voir pourquoi il est classé ainsi.",
          top: "Premiers bureaux", k_help: "Les effectifs inférieurs au seuil k sont masqués.",
          no_campaign: "Aucune campagne où vous pouvez voir le classement.",
          basemap: "Fond de carte injoignable : les bureaux restent affichés.",
          score: "Score", rank: "Rang", factor: "Facteur", value: "Valeur", contribution: "Contribution",
          no_score: "Pas encore de score", hidden: "masqué (< k)", doors: "Portes",
          supporters: "Sympathisants", visited_doors: "Portes faites", households: "Ménages",
          legend: "Score (plus haut = plus prioritaire)", no_ranking: "Classement indisponible : {detail}",
          commune: "Commune ({n} bureaux) : score moyen {score}, meilleur rang {rank}. Zoomez pour voir ses bureaux." },
    en: {
          hello: "Hello {name}", hello_anonymous: "Hello",
          role_admin: "admin", role_organiser: "organiser", role_analyst: "analyst",
          role_volunteer: "volunteer", campaign_label: "Campaign", map_label: "Map",
          page_title: "Door to door — analysis",
          title: "Priorities by polling station", signout: "Sign out", signin: "Sign in",
          email: "E-mail", password: "Password", totp: "Two-factor code (if enabled)", submit: "Sign in",
          click_help: "Tap a station to see why it ranks where it does.", top: "Top stations",
          k_help: "Counts below the k threshold are hidden.",
          no_campaign: "No campaign where you may see the ranking.",
          basemap: "Background map unreachable: stations are still shown.",
          score: "Score", rank: "Rank", factor: "Factor", value: "Value", contribution: "Contribution",
          no_score: "No score yet", hidden: "hidden (< k)", doors: "Doors", supporters: "Supporters",
          visited_doors: "Doors done", households: "Households",
          legend: "Score (higher = higher priority)", no_ranking: "Ranking unavailable: {detail}",
          commune: "Commune ({n} stations): mean score {score}, best rank {rank}. Zoom in to see its stations." },
  });
  const $ = (id) => document.getElementById(id);
  // ColorBrewer RdYlBu (reversed), colour-blind safe: blue = low priority, red = high.
  const CLASSES = [
    [-Infinity, -1, "#4575b4"], [-1, -0.3, "#91bfdb"], [-0.3, 0.3, "#ffffbf"],
    [0.3, 1, "#fc8d59"], [1, Infinity, "#d73027"],
  ];
  const colour = (score) => {
    if (score == null) return "#bdbdbd";
    for (const [lo, hi, c] of CLASSES) if (score >= lo && score < hi) return c;
    return "#bdbdbd";
  };
  const fmt = (v) => (v == null ? "—" : typeof v === "number" ? (Math.abs(v) >= 100 ? Math.round(v).toLocaleString(Porte.lang) : v.toFixed(2)) : Porte.escapeHtml(v));

  function legend() {
    $("legend").innerHTML = `<strong>${t("legend")}</strong><br>` + CLASSES.map(([lo, hi, c]) =>
      `<span><i style="background:${c}"></i>${lo === -Infinity ? "< " + hi : hi === Infinity ? "≥ " + lo : lo + " … " + hi}</span>`).join("<br>")
      + `<br><span><i style="background:#bdbdbd"></i>${t("no_score")}</span>`;
  }

  async function explain(s, code) {
    const box = $("detail");
    try {
      const data = await Porte.api(`/campaigns/${s.campaign_id}/districts/${encodeURIComponent(code)}`, { token: s.token });
      const d = data.district || data;
      const max = Math.max(0.01, ...(d.contributions || []).map((c) => Math.abs(c.contribution)));
      const counts = d.counts || {};
      box.innerHTML = `<h2>${Porte.escapeHtml(d.name || d.code)} <small>${Porte.escapeHtml(d.code)}</small></h2>
        <p>${t("rank")} ${d.rank ?? "—"} · ${t("score")} <strong>${fmt(d.score)}</strong></p>
        <table><tbody>${["doors", "households", "supporters", "visited_doors"].map((k) =>
          `<tr><td>${t(k)}</td><td class="num">${counts[k] == null ? (counts[k + "_suppressed"] ? t("hidden") : "—") : fmt(counts[k])}</td></tr>`).join("")}</tbody></table>
        <table><thead><tr><th>${t("factor")}</th><th class="num">${t("value")}</th><th>${t("contribution")}</th></tr></thead>
        <tbody>${(d.contributions || []).map((c) => `<tr><td>${Porte.escapeHtml(c.label || c.factor)}</td>
          <td class="num">${c.suppressed ? t("hidden") : fmt(c.value)}</td>
          <td><span class="bar ${c.contribution < 0 ? "neg" : "pos"}" style="width:${Math.round(60 * Math.abs(c.contribution) / max)}px"></span> ${c.contribution >= 0 ? "+" : ""}${fmt(c.contribution)}</td></tr>`).join("")}</tbody></table>`;
    } catch (e) { box.innerHTML = `<p class="error">${Porte.escapeHtml(e.message)}</p>`; }
  }

  async function start() {
    Porte.translatePage(t);
    legend();
    const s = await PorteStaff.ensureSession(t, ["admin", "organiser", "analyst"]);
    const map = L.map("map").setView([46.6, 2.4], 6);
    Porte.addBasemap(map, await Porte.config(), () => {
      $("notice").hidden = false; $("notice").textContent = t("basemap"); });
    // The ranking first: it fills the cache the district tiles read their scores from.
    let first = null;
    try {
      const r = await Porte.api(`/campaigns/${s.campaign_id}/ranking?limit=10`, { token: s.token });
      const ol = $("top");
      for (const d of r.districts || []) {
        const li = document.createElement("li");
        li.innerHTML = `<a href="#${encodeURIComponent(d.code)}">${Porte.escapeHtml(d.name || d.code)}</a> — ${fmt(d.score)}`;
        li.querySelector("a").addEventListener("click", (ev) => { ev.preventDefault(); explain(s, d.code); });
        ol.appendChild(li);
      }
      first = (r.districts || [])[0];
      if (r.empty) {  // nothing to rank: the server says why and what to do (its language)
        $("notice").hidden = false; $("notice").textContent = `${r.empty.detail} ${r.empty.action}`;
      }
    } catch (e) {
      $("notice").hidden = false; $("notice").textContent = t("no_ranking", { detail: e.message });
    }
    const layer = PorteStaff.mvtLayer(s, "districts", {
      districts: (p) => ({ color: "#222", weight: 1, fill: true, fillOpacity: 0.7, fillColor: colour(p.score) }),
    });
    layer.on("click", (ev) => {
      const p = ev.layer.properties;
      if (p.kind === "commune") {  // national map below zoom 9: districts merged by commune
        $("detail").innerHTML = `<h2>${Porte.escapeHtml(p.name || p.code)}</h2><p>${Porte.escapeHtml(
          t("commune", { n: p.districts ?? "—", score: fmt(p.score), rank: p.rank ?? "—" }))}</p>`;
        map.setView(ev.latlng, Math.max(map.getZoom() + 2, 9));
        return;
      }
      explain(s, p.code);
    });
    layer.addTo(map);
    PorteStaff.keepFresh(s, () => {
      layer.options.fetchOptions.headers.Authorization = "Bearer " + s.token;
      layer.redraw();
    });
    if (first) {
      try {
        const d = await Porte.api(`/districts/${encodeURIComponent(first.code)}`);
        const geom = d.geometry || (d.features && d.features[0] && d.features[0].geometry);
        if (geom) map.fitBounds(L.geoJSON(geom).getBounds(), { maxZoom: 13 });
        else if (d.bbox) map.fitBounds([[d.bbox[1], d.bbox[0]], [d.bbox[3], d.bbox[2]]], { maxZoom: 13 });
      } catch (e) { /* stay on the default view */ }
    }
    document.body.dataset.loaded = "1";
  }

  start().catch((e) => { $("notice").hidden = false; $("notice").textContent = e.message; });
})();
