/* Joining a campaign from an e-mailed invitation (/join/#invitation=<token>).
 * An address with an account signs in and accepts; an address without one chooses a password,
 * which creates the account and joins. The token stays in the fragment (never sent in a URL). */
(function () {
  "use strict";
  const t = Porte.translator({
    fr: {
      title: "Rejoindre une campagne",
      loading: "Lecture de l'invitation…",
      no_token: "Ce lien ne contient pas d'invitation : ouvrez le lien reçu par e-mail en entier.",
      offer: "La campagne « {campaign} » vous invite ({email}) comme {role}. Invitation valable jusqu'au {expires}.",
      signin_title: "Connectez-vous pour accepter",
      register_title: "Choisissez votre mot de passe",
      email: "E-mail", password: "Mot de passe", totp: "Code à deux facteurs (si activé)",
      new_password: "Mot de passe (10 caractères au moins)", again: "Le même, encore",
      accept: "Se connecter et accepter", create: "Créer mon compte et rejoindre",
      differ: "Les deux mots de passe diffèrent.",
      joined: "Vous avez rejoint « {campaign} » comme {role}.",
      next_staff: "Ouvrir la carte de la campagne", next_volunteer: "Ouvrir la carte bénévole",
      admin: "admin", organiser: "organisateur·rice", analyst: "analyste", volunteer: "bénévole",
    },
    en: {
      title: "Join a campaign",
      loading: "Reading the invitation…",
      no_token: "This link holds no invitation: open the whole link you received by e-mail.",
      offer: "The campaign \"{campaign}\" invites you ({email}) as {role}. The invitation is valid until {expires}.",
      signin_title: "Sign in to accept",
      register_title: "Choose your password",
      email: "E-mail", password: "Password", totp: "Two-factor code (if turned on)",
      new_password: "Password (10 characters or more)", again: "The same again",
      accept: "Sign in and accept", create: "Create my account and join",
      differ: "The two passwords differ.",
      joined: "You joined \"{campaign}\" as {role}.",
      next_staff: "Open the campaign's map", next_volunteer: "Open the volunteer map",
      admin: "admin", organiser: "organiser", analyst: "analyst", volunteer: "volunteer",
    },
  });
  Porte.translatePage(t);
  const $ = (id) => document.getElementById(id);
  const m = /(?:^|[#&])invitation=([^&]+)/.exec(location.hash);
  const token = m ? decodeURIComponent(m[1]) : null;
  let offer = null;

  function fail(e) { $("error").textContent = e && e.message ? e.message : String(e); }

  function finish(tok) {
    for (const id of ["offer", "signin", "register"]) $(id).hidden = true;
    $("done").hidden = false;
    $("done-text").textContent = t("joined", { campaign: offer.campaign_name, role: t(offer.role) });
    const next = $("next");
    if (offer.role === "volunteer") {
      next.href = "/m/";
      next.textContent = t("next_volunteer");
    } else {
      Porte.setStaffSession({ token: tok.access_token, refresh_token: tok.refresh_token,
                              expires_in: tok.expires_in, campaign_id: offer.campaign_id });
      next.href = (offer.role === "analyst" ? "/analyst/" : "/organiser/") +
                  "?campaign=" + encodeURIComponent(offer.campaign_id);
      next.textContent = t("next_staff");
    }
    history.replaceState(null, "", location.pathname);
  }

  function showSignIn() {
    $("register").hidden = true;
    $("signin").hidden = false;
    const f = $("signin-form");
    f.email.value = offer.email;
    f.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      $("error").textContent = "";
      try {
        const tok = await Porte.signIn(offer.email, f.password.value, f.totp.value);
        await Porte.api("/invitations/accept", { method: "POST", token: tok.access_token,
                                                 body: { token } });
        finish(tok);
      } catch (e) { fail(e); }
    });
  }

  function showRegister() {
    $("register").hidden = false;
    const f = $("register-form");
    f.email.value = offer.email;
    f.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      $("error").textContent = "";
      if (f.password.value !== f.again.value) { fail(t("differ")); return; }
      try {
        const tok = await Porte.api("/invitations/register", { method: "POST",
                                      body: { token, password: f.password.value } });
        finish(tok);
      } catch (e) {
        if (e instanceof Porte.ApiError && e.body && e.body.account_exists) showSignIn();
        fail(e);
      }
    });
  }

  async function start() {
    if (!token) { $("status").textContent = t("no_token"); return; }
    try {
      offer = await Porte.api("/invitations/preview", { method: "POST", body: { token } });
    } catch (e) { $("status").textContent = ""; fail(e); return; }
    const expires = new Date(offer.expires_at).toLocaleString(Porte.lang);
    $("status").textContent = t("offer", { campaign: offer.campaign_name, email: offer.email,
                                           role: t(offer.role), expires });
    if (offer.account_exists) showSignIn(); else showRegister();
  }
  start();
})();
