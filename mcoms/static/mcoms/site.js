// Behaviour shared by every page, kept out of the HTML: the Content-Security-Policy allows
// scripts from our own static files only (no inline handlers).
(function () {
  "use strict";
  // <select data-autosubmit>: choosing an option submits its form (a filter).
  document.addEventListener("change", function (event) {
    var field = event.target;
    if (field && field.matches && field.matches("[data-autosubmit]") && field.form) {
      field.form.submit();
    }
  });
  // <textarea data-select-on-focus>: focusing selects it all (a token to copy).
  document.addEventListener("focusin", function (event) {
    var field = event.target;
    if (field && field.matches && field.matches("[data-select-on-focus]")) field.select();
  });
})();
