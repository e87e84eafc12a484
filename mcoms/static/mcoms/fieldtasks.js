/* Field task page: "Use my location" fills latitude, longitude and accuracy from the phone's
   GPS; the visit time follows the phone's clock until the agent changes it. The form works
   without either (the fields are plain inputs). */
(function () {
  "use strict";
  function pad(n) { return String(n).padStart(2, "0"); }
  function localNow() {
    var d = new Date();
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) +
      "T" + pad(d.getHours()) + ":" + pad(d.getMinutes());
  }
  function setUp(form) {
    var when = form.querySelector("input[name=visited_at]");
    if (when && !when.value) {
      when.value = localNow();
      when.dataset.auto = "1";
      when.addEventListener("change", function () { delete when.dataset.auto; });
      form.addEventListener("submit", function () {
        if (when.dataset.auto) when.value = localNow();
      }, true);
    }
    var button = form.querySelector("[data-locate]");
    var status = form.querySelector("[data-locate-status]");
    if (!button || !("geolocation" in navigator)) return;
    button.hidden = false;
    button.addEventListener("click", function () {
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
  }
  function init() {
    var form = document.getElementById("ft-visit");
    if (form) setUp(form);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
