/* Sign-in and campaign choice shared by the organiser and analyst pages. */
(function (global) {
  "use strict";

  /** Resolve a signed-in session with a chosen campaign, showing the sign-in card if needed. */
  async function ensureSession(t, wantedRoles) {
    Porte.langSwitch(document.getElementById("lang"));
    let s = Porte.staffSession();
    if (s && s.token) {
      try { await pickCampaign(s, t, wantedRoles); greet(s, t); return s; }
      catch (e) { if (!(e instanceof Porte.ApiError) || e.status !== 401) throw e; }
    }
    const card = document.getElementById("signin");
    card.hidden = false;
    document.querySelector(".layout").hidden = true;
    return new Promise((resolve) => {
      document.getElementById("signin-form").addEventListener("submit", async (ev) => {
        ev.preventDefault();
        const f = ev.target;
        try {
          const tok = await Porte.signIn(f.email.value, f.password.value, f.totp ? f.totp.value : "");
          s = { token: tok.access_token, refresh_token: tok.refresh_token,
                expires_in: tok.expires_in };
          await pickCampaign(s, t, wantedRoles);
          greet(s, t);
          card.hidden = true;
          document.querySelector(".layout").hidden = false;
          resolve(s);
        } catch (e) { document.getElementById("signin-error").textContent = e.message; }
      });
    });
  }

  /** "Bonjour Camille" (the account's display name, else its e-mail) in the header. */
  async function greet(s, t) {
    const el = document.getElementById("greeting");
    if (!el) return;
    try {
      const me = await Porte.api("/auth/me", { token: s.token });
      el.textContent = t("hello", { name: me.display_name || me.email });
    } catch (e) { el.textContent = t("hello_anonymous"); }
  }

  /** A campaign role as people read it (t's role_* keys; the code when unknown). */
  function roleName(t, role) {
    const key = "role_" + role;
    const said = t(key);
    return said === key ? role : said;
  }

  async function pickCampaign(s, t, wantedRoles) {
    const data = await Porte.api("/campaigns", { token: s.token });
    const list = Array.isArray(data) ? data : (data.items || data.campaigns || []);
    const ok = list.filter((c) => !wantedRoles || wantedRoles.includes(c.role));
    if (!ok.length) throw new Error(t("no_campaign"));
    const params = new URLSearchParams(location.search);
    const wanted = params.get("campaign") || s.campaign_id;
    const chosen = ok.find((c) => (c.id || c.campaign_id) === wanted) || ok[0];
    s.campaign_id = chosen.id || chosen.campaign_id;
    s.role = chosen.role;
    s.campaign_name = chosen.name;
    Porte.setStaffSession(s);
    const sel = document.getElementById("campaign");
    sel.innerHTML = "";
    for (const c of ok) {
      const id = c.id || c.campaign_id;
      sel.add(new Option(`${c.name} (${roleName(t, c.role)})`, id, false, id === s.campaign_id));
    }
    sel.onchange = () => { s.campaign_id = sel.value; Porte.setStaffSession(s); location.search = "?campaign=" + sel.value; };
    document.getElementById("signout").onclick = async () => {
      // End the sign-in on the server too: its refresh token, and the account's access tokens.
      if (s.refresh_token) {
        try { await Porte.api("/auth/logout", { method: "POST", body: { refresh_token: s.refresh_token } }); }
        catch (e) { /* offline: the local session is dropped anyway */ }
      }
      Porte.setStaffSession(null);
      location.reload();
    };
    return s;
  }

  /** Renew the access token before it expires (POST /auth/refresh, rotating refresh token),
   * and at once when a call answers 401 (signed out elsewhere: every access token of the account
   * ends, this sign-in goes on with a new one); `onToken` re-creates whatever holds the old
   * token. Sign in again when the refresh fails. */
  function keepFresh(s, onToken) {
    if (!s.refresh_token) return;
    let pending = null;
    async function renew() {
      if (pending) return pending;
      pending = (async () => {
        try {
          const tok = await Porte.api("/auth/refresh", { method: "POST",
                                                         body: { refresh_token: s.refresh_token } });
          s.token = tok.access_token; s.refresh_token = tok.refresh_token;
          s.expires_in = tok.expires_in;
          Porte.setStaffSession(s);
          onToken(s);
          return s.token;
        } catch (e) {
          if (e instanceof Porte.ApiError && e.status === 401) {
            Porte.setStaffSession(null);
            location.reload();
          }
          return null;
        } finally { pending = null; }
      })();
      return pending;
    }
    Porte.setRefresher(renew);
    const every = Math.max(60, (s.expires_in || 900) - 120) * 1000;
    setInterval(renew, every);
  }

  /** A Leaflet.VectorGrid layer of one of our MVT layers, with the bearer token. */
  function mvtLayer(s, layer, styles, opts) {
    return L.vectorGrid.protobuf(
      `/campaigns/${s.campaign_id}/tiles/${layer}/{z}/{x}/{y}.mvt`,
      Object.assign({
        vectorTileLayerStyles: styles, interactive: true, maxNativeZoom: 20, maxZoom: 20,
        getFeatureId: (f) => f.properties.id || f.properties.code,
        fetchOptions: { headers: { Authorization: "Bearer " + s.token }, cache: "no-cache" },
      }, opts || {}));
  }

  global.PorteStaff = { ensureSession, mvtLayer, keepFresh, roleName };
})(window);
