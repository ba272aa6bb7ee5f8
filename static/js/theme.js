// Light or dark: the system's choice (prefers-color-scheme) until the person picks one with
// the toggle; the pick is kept in localStorage. Loaded in <head>, not deferred, so the page
// is drawn in the right theme from the first paint.
(function () {
  "use strict";
  const KEY = "runway-theme";
  function stored() {
    try { return localStorage.getItem(KEY); } catch (e) { return null; }
  }
  function apply(theme) {
    if (theme === "light" || theme === "dark") document.documentElement.dataset.theme = theme;
    else delete document.documentElement.dataset.theme;
  }
  apply(stored());

  function current() {
    const chosen = document.documentElement.dataset.theme;
    if (chosen) return chosen;
    return window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
  }

  document.addEventListener("click", function (event) {
    if (!event.target.closest("[data-theme-toggle]")) return;
    const next = current() === "dark" ? "light" : "dark";
    try { localStorage.setItem(KEY, next); } catch (e) { /* private mode: this page only */ }
    apply(next);
  });
})();
