// Idle logout (ris/idle.py): warns before the server ends an unused session, then logs out with a POST
// to the logout view, so a shared front-desk PC left alone does not stay logged in.
//
// The server keeps the time of the last activity. This script reports the clerk's key presses, clicks
// and scrolling to it (at most every 30 s) and otherwise only asks how long is left, with the
// X-RIS-Background header, which the server does not count as activity (the day board's refresh sends
// it too). Asking before warning or logging out keeps a clerk busy in another tab logged in.
(() => {
  const body = document.body;
  const idleSeconds = Number(body.dataset.idleLogoutSeconds);
  const url = body.dataset.idleUrl;
  if (!idleSeconds || !url) return;
  const warnSeconds = Math.min(120, idleSeconds / 4);
  const reportEvery = Math.min(30, idleSeconds / 10) * 1000;
  const warning = document.getElementById("idle-warning");
  const countdown = warning && warning.querySelector("[data-idle-countdown]");
  let lastReport = Date.now();
  let deadline = Date.now() + idleSeconds * 1000;
  let timer = null;
  let ticker = null;

  function logOut() {
    const form = document.getElementById("logout-form");
    if (!form) return window.location.reload();
    // Back to this page after the next login.
    const next = document.createElement("input");
    next.type = "hidden";
    next.name = "next";
    next.value = `${body.dataset.loginUrl}?${new URLSearchParams({ next: location.pathname + location.search })}`;
    form.appendChild(next);
    form.submit();
  }

  // The server ended the session already (its clock ran out before ours): posting the logout form now
  // would only be sent to log in with the logout as the page to return to. Go to log in, back here.
  function toLogin() {
    window.location.assign(
      `${body.dataset.loginUrl}?${new URLSearchParams({ next: location.pathname + location.search })}`,
    );
  }

  // remaining seconds from the server; null when the session is already gone (a redirect to log in).
  async function remaining(background) {
    const headers = { Accept: "application/json" };
    if (background) headers["X-RIS-Background"] = "1";
    try {
      const response = await fetch(url, { headers, cache: "no-store" });
      if (response.redirected || !response.ok) return response.redirected ? null : undefined;
      return (await response.json()).remaining;
    } catch (error) {
      return undefined; // offline for a moment: keep the local estimate
    }
  }

  function hideWarning() {
    if (warning) warning.hidden = true;
    clearInterval(ticker);
    ticker = null;
  }

  function showWarning() {
    if (!warning || ticker) return;
    warning.hidden = false;
    const tick = () => {
      if (countdown) countdown.textContent = String(Math.max(0, Math.round((deadline - Date.now()) / 1000)));
    };
    tick();
    ticker = setInterval(tick, 1000);
  }

  function schedule(left) {
    deadline = Date.now() + left * 1000;
    clearTimeout(timer);
    const untilWarning = left - warnSeconds;
    if (untilWarning > 0) {
      hideWarning();
      timer = setTimeout(check, untilWarning * 1000);
    } else {
      showWarning();
      timer = setTimeout(check, Math.max(0, left) * 1000 + 250);
    }
  }

  async function check() {
    const left = await remaining(true);
    if (left === null) return toLogin();
    if (left === 0) return logOut();
    if (left === undefined) return schedule(Math.max(0, (deadline - Date.now()) / 1000));
    schedule(left);
  }

  async function report() {
    lastReport = Date.now();
    const left = await remaining(false);
    if (left === null) return toLogin();
    if (left !== undefined) schedule(left);
  }

  function activity() {
    if (Date.now() - lastReport >= reportEvery) report();
  }

  ["keydown", "pointerdown", "wheel", "touchstart"].forEach((name) =>
    document.addEventListener(name, activity, { passive: true, capture: true }),
  );
  const stay = warning && warning.querySelector("[data-idle-stay]");
  if (stay) stay.addEventListener("click", report);
  schedule(idleSeconds);
})();
