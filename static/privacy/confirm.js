/* The confirmation link carries its code in the fragment (#code=...), which browsers never send
 * to the server: it stays out of access logs and proxies. Fill the form with it, then drop it
 * from the address bar. The person still confirms with the button (nothing happens on opening). */
(function () {
  "use strict";
  var match = /(?:^|[#&])code=([^&]+)/.exec(window.location.hash);
  if (!match) return;
  var field = document.getElementById("code");
  if (field) field.value = decodeURIComponent(match[1]);
  if (window.history && window.history.replaceState) {
    window.history.replaceState(null, "", window.location.pathname);
  }
})();
