// The day board fetches a fresh copy of itself every few seconds, so two clerks see each other's
// bookings. It waits while the clerk is using the board (a menu open, typing a cancellation reason)
// so nothing half-typed is thrown away; the rest of the page is never touched.
(() => {
  const board = document.getElementById("board");
  if (!board) return;
  const seconds = Number(board.dataset.refreshSeconds) || 20;

  function busy() {
    return board.querySelector(".dropdown-menu.show") !== null || board.contains(document.activeElement);
  }

  async function refresh() {
    if (document.hidden || busy()) return;
    try {
      const response = await fetch(board.dataset.refreshUrl, { headers: { Accept: "text/html" } });
      // A redirect means the session ended (login page): keep what is shown rather than swap in a form.
      if (!response.ok || response.redirected) return;
      const html = await response.text();
      if (!busy()) {
        board.innerHTML = html;
        board.dataset.refreshedAt = new Date().toISOString();
      }
    } catch (error) {
      // Offline for a moment: try again at the next tick.
    }
  }

  setInterval(refresh, seconds * 1000);
})();
