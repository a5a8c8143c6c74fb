/* Porte-à-porte: helpers shared by the map pages (no framework, no build step).
 * API calls with the bearer token, problem+json messages, sign-in, language, basemap. */
(function (global) {
  "use strict";

  // The language of the pages: ?lang=fr|en (remembered), else the one chosen before with the
  // switch, else the browser's first of French and English, else French.
  const LANGS = ["fr", "en"];
  const LANG_KEY = "porte.lang";
  const lang = (function () {
    try {
      const asked = new URLSearchParams(location.search).get("lang");
      if (asked && LANGS.includes(asked)) { localStorage.setItem(LANG_KEY, asked); return asked; }
      const kept = localStorage.getItem(LANG_KEY);
      if (kept && LANGS.includes(kept)) return kept;
    } catch (e) { /* storage refused: follow the browser */ }
    const prefs = (navigator.languages && navigator.languages.length)
      ? navigator.languages : [navigator.language || "fr"];
    for (const p of prefs) {
      const code = String(p).slice(0, 2).toLowerCase();
      if (LANGS.includes(code)) return code;
    }
    return "fr";
  })();

  /** Switch the pages to another language (remembered on this device) and reload. */
  function setLang(code) {
    if (!LANGS.includes(code) || code === lang) return;
    try { localStorage.setItem(LANG_KEY, code); } catch (e) { /* kept for this page only */ }
    const url = new URL(location.href);
    url.searchParams.set("lang", code);
    location.replace(url.toString());
  }

  /** FR | EN buttons in `el`, the current language pressed. */
  function langSwitch(el) {
    if (!el) return;
    el.innerHTML = "";
    el.setAttribute("role", "group");
    el.setAttribute("aria-label", lang === "fr" ? "Langue" : "Language");
    for (const code of LANGS) {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = code.toUpperCase();
      b.lang = code;
      b.title = code === "fr" ? "Français" : "English";
      b.setAttribute("aria-pressed", String(code === lang));
      b.dataset.lang = code;
      b.addEventListener("click", () => setLang(code));
      el.appendChild(b);
    }
  }

  /** Translate with a {fr: {...}, en: {...}} table; {name} placeholders are replaced. */
  function translator(messages) {
    return function t(key, vars) {
      let s = (messages[lang] && messages[lang][key]) || (messages.en && messages.en[key]) || key;
      if (vars) for (const k of Object.keys(vars)) s = s.split("{" + k + "}").join(String(vars[k]));
      return s;
    };
  }

  /** Fill every [data-i18n] element's text ([data-i18n-title] titles, [data-i18n-aria] labels). */
  function translatePage(t, root) {
    (root || document).querySelectorAll("[data-i18n]").forEach((el) => {
      el.textContent = t(el.getAttribute("data-i18n"));
    });
    (root || document).querySelectorAll("[data-i18n-title]").forEach((el) => {
      el.title = t(el.getAttribute("data-i18n-title"));
      el.setAttribute("aria-label", el.title);
    });
    (root || document).querySelectorAll("[data-i18n-aria]").forEach((el) => {
      el.setAttribute("aria-label", t(el.getAttribute("data-i18n-aria")));
    });
    document.documentElement.lang = lang;
  }

  function uuid() {
    if (global.crypto && crypto.randomUUID) return crypto.randomUUID();
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40; b[8] = (b[8] & 0x3f) | 0x80;
    const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }

  class ApiError extends Error {
    constructor(status, message, body, retryAfter) {
      super(message); this.status = status; this.body = body;
      this.retryAfter = retryAfter; // seconds the server asked to wait (503, 429), or null
    }
  }

  /** Seconds from a Retry-After header (a number of seconds, or an HTTP date), else null. */
  function retryAfterSeconds(value) {
    if (value == null || value === "") return null;
    if (/^\s*\d+\s*$/.test(value)) return Number(value);
    const at = Date.parse(value);
    return isNaN(at) ? null : Math.max(0, Math.ceil((at - Date.now()) / 1000));
  }

  // A page with a refresh token registers how to get a new access token: a 401 on a call made
  // with a token (the account signed out elsewhere, or changed its password) is retried once.
  let refresher = null;
  function setRefresher(fn) { refresher = fn; }

  /** fetch() against the API; throws ApiError with the problem's detail on 4xx/5xx. */
  async function api(path, opts) {
    opts = opts || {};
    if (opts.token && refresher && !opts.retried) {
      try { return await api(path, Object.assign({}, opts, { retried: true })); }
      catch (e) {
        if (!(e instanceof ApiError) || e.status !== 401) throw e;
        const token = await refresher();
        if (!token) throw e;
        return api(path, Object.assign({}, opts, { token, retried: true }));
      }
    }
    // The API answers (errors, explanations) in the page's language.
    const headers = Object.assign({ Accept: "application/json", "Accept-Language": lang },
                                  opts.headers || {});
    if (opts.token) headers.Authorization = "Bearer " + opts.token;
    let body = opts.body;
    if (body !== undefined && !(body instanceof URLSearchParams) && typeof body !== "string") {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(body);
    }
    const resp = await fetch(path, { method: opts.method || "GET", headers, body,
                                     cache: opts.cache || "default" });
    if (!resp.ok) {
      let detail = resp.statusText, data = null;
      try { data = await resp.json(); detail = data.detail || data.title || detail; } catch (e) { /* not json */ }
      let wait = retryAfterSeconds(resp.headers.get("Retry-After"));
      if (wait == null && data && Number.isFinite(data.retry_after)) wait = data.retry_after;
      throw new ApiError(resp.status, detail, data, wait);
    }
    if (resp.status === 204) return null;
    const type = resp.headers.get("content-type") || "";
    return type.includes("json") ? resp.json() : resp;
  }

  let configPromise = null;
  /** Public settings of the map pages: which basemap to draw (static/shared/basemap.js). */
  function config() {
    if (!configPromise) {
      configPromise = fetch("/m/config.json").then((r) => r.json()).catch(() => ({
        basemap: null, raster_url: null,
      }));
    }
    return configPromise;
  }

  /** Add the basemap (the service's own vector tiles; a raster URL only when set explicitly);
   * with none, call onMissing once (doors and turfs are drawn by us, not by the basemap). */
  function addBasemap(map, cfg, onMissing) {
    return global.PorteBasemap ? PorteBasemap.add(map, cfg, onMissing) : null;
  }

  // ---- staff sign-in (organiser and analyst pages), kept in sessionStorage
  const STAFF_KEY = "porte.staff";
  function staffSession() {
    try { return JSON.parse(sessionStorage.getItem(STAFF_KEY) || "null"); } catch (e) { return null; }
  }
  function setStaffSession(s) {
    if (s) sessionStorage.setItem(STAFF_KEY, JSON.stringify(s));
    else sessionStorage.removeItem(STAFF_KEY);
  }
  /** POST /auth/token (OAuth2 password form); returns {access_token, ...}. */
  async function signIn(email, password, totp) {
    const form = new URLSearchParams({ username: email, password: password });
    if (totp) form.set("totp", totp);
    return api("/auth/token", {
      method: "POST", body: form,
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
    });
  }

  function escapeHtml(s) {
    return String(s == null ? "" : s).replace(/[&<>"']/g, (c) => ({
      "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;",
    })[c]);
  }

  global.Porte = {
    lang, setLang, langSwitch, translator, translatePage, uuid, api, ApiError, retryAfterSeconds,
    config, addBasemap,
    staffSession, setStaffSession, signIn, escapeHtml, setRefresher,
  };
})(window);
