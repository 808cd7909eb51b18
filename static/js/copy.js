// Copy buttons: <button data-copy="text" hidden>: shown only when the clipboard is usable, and say "Copied".
(function () {
  "use strict";
  function init(root) {
    root.querySelectorAll("button[data-copy]").forEach(function (button) {
      if (!navigator.clipboard || button.dataset.copyReady) return;
      button.dataset.copyReady = "1";
      button.hidden = false;
      var label = button.textContent;
      button.addEventListener("click", function () {
        navigator.clipboard.writeText(button.dataset.copy).then(function () {
          button.textContent = "Copied";
          button.setAttribute("aria-live", "polite");
          setTimeout(function () { button.textContent = label; }, 1500);
        });
      });
    });
  }
  document.addEventListener("DOMContentLoaded", function () { init(document); });
  document.addEventListener("htmx:afterSwap", function (event) { init(event.target); });
})();
