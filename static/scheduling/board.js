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
      // X-RIS-Background: a refresh is not the clerk's activity, so an unattended board still reaches
      // the idle logout (ris/idle.py).
      const response = await fetch(board.dataset.refreshUrl, {
        headers: { Accept: "text/html", "X-RIS-Background": "1" },
      });
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

  // A block's menu is filled when it opens, from the board's one #board-menu template: the entries the
  // block lists in data-actions, with the order's id in place of the 0 in each address. Thousands of
  // blocks then carry no forms of their own, which keeps a busy day's board small and fast to render.
  board.addEventListener("show.bs.dropdown", (event) => {
    const block = event.target.closest(".board-block");
    const menu = block && block.querySelector(".board-actions");
    const template = board.querySelector("#board-menu");
    if (!menu || !template || menu.childElementCount) return;
    const pk = block.dataset.pk;
    const offered = new Set((block.dataset.actions || "").split(" ").filter(Boolean));
    const items = template.content.cloneNode(true);
    items.querySelectorAll("[data-action]").forEach((item) => {
      if (!offered.has(item.dataset.action)) item.remove();
    });
    items.querySelectorAll("[href], [action]").forEach((item) => {
      const name = item.hasAttribute("href") ? "href" : "action";
      item.setAttribute(name, item.getAttribute(name).replace("/0/", `/${pk}/`));
    });
    items.querySelectorAll("#cancel-reason").forEach((input) => {
      input.id = `cancel-${pk}`;
      input.closest("form").querySelector("label").htmlFor = input.id;
    });
    menu.appendChild(items);
  });

  setInterval(refresh, seconds * 1000);
})();
