/* Field task page: "Use my location" fills latitude, longitude and accuracy from the phone's
   GPS, and a visit sent without a time gets the phone's clock at the moment it is sent (a
   form kept offline then carries when the agent was there, not when it reached the server).
   The form works without either. Listeners sit on the document, so they keep working when
   the field app swaps the page's main part after a form is sent. */
(function () {
  "use strict";
  function pad(n) { return String(n).padStart(2, "0"); }
  function localNow() {
    var d = new Date();
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) +
      "T" + pad(d.getHours()) + ":" + pad(d.getMinutes());
  }
  if ("geolocation" in navigator) document.documentElement.classList.add("ft-geo");

  // Capture phase: runs before the field app reads the form to send or keep it.
  document.addEventListener("submit", function (event) {
    var when = event.target.querySelector && event.target.querySelector("input[name=visited_at]");
    if (when && !when.value) when.value = localNow();
  }, true);

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-locate]");
    if (!button || !("geolocation" in navigator)) return;
    var form = button.form;
    var status = form.querySelector("[data-locate-status]");
    status.textContent = "Finding your position…";
    navigator.geolocation.getCurrentPosition(function (pos) {
      form.querySelector("input[name=latitude]").value = pos.coords.latitude.toFixed(6);
      form.querySelector("input[name=longitude]").value = pos.coords.longitude.toFixed(6);
      form.querySelector("input[name=accuracy_m]").value = Math.round(pos.coords.accuracy);
      status.textContent = "Position found (±" + Math.round(pos.coords.accuracy) + " m).";
    }, function (err) {
      status.textContent = "No position: " + (err.message || "the phone did not give one") +
        ". You can save the visit without it.";
    }, { enableHighAccuracy: true, timeout: 20000, maximumAge: 60000 });
  });
})();
