// The portal's in-app browser guide (templates/inapp_guide.html): says so in words when the
// browser has no WebAuthn at all, and copies the page's link. Plain script, no bundle: the page
// works without it (the link can be selected and copied by hand).
(function () {
  "use strict";
  var ways = document.getElementById("inapp-ways");
  var note = document.getElementById("no-webauthn");
  if (!window.PublicKeyCredential || !navigator.credentials) {
    if (note) note.hidden = false;
    if (ways) ways.hidden = false;
  }
  var button = document.getElementById("inapp-copy");
  var field = document.getElementById("inapp-link");
  var done = document.getElementById("inapp-copied");
  if (!button || !field) return;
  button.hidden = false;
  function copied() {
    if (done) done.hidden = false;
  }
  button.addEventListener("click", function () {
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(field.value).then(copied, function () {
        field.select();
        document.execCommand("copy");
        copied();
      });
    } else {
      field.select();
      document.execCommand("copy");
      copied();
    }
  });
})();
