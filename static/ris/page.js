// Small behaviours of every page, here rather than in onclick= / onchange= attributes, which the
// Content-Security-Policy refuses (ris/settings.py, RIS_CSP).
(() => {
  // The language switch sends itself as soon as a language is picked.
  document.querySelectorAll("select[data-submit-on-change]").forEach((select) => {
    select.addEventListener("change", () => select.form.submit());
  });
  // The appointment slip's Print button.
  document.querySelectorAll("[data-print]").forEach((button) => {
    button.addEventListener("click", () => window.print());
  });
})();
