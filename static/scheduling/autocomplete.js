// Patient suggestions as the clerk types, usable from the keyboard: Down/Up move through the list,
// Enter opens the highlighted patient, Escape closes the list. Without JavaScript the search form
// still works as a plain GET.
//
// <input data-autocomplete-url="/patients/autocomplete/" data-autocomplete-go="/orders/new/?patient=">
// data-autocomplete-go, when given, is where a choice leads (the patient's id is appended);
// otherwise a choice opens the patient's page.
document.querySelectorAll("input[data-autocomplete-url]").forEach((input, index) => {
  const list = document.createElement("ul");
  list.id = `ac-list-${index}`;
  list.className = "ac-list list-group shadow-sm d-none";
  list.setAttribute("role", "listbox");
  input.parentElement.style.position = "relative";
  input.parentElement.appendChild(list);
  input.setAttribute("role", "combobox");
  input.setAttribute("aria-autocomplete", "list");
  input.setAttribute("aria-controls", list.id);
  input.setAttribute("aria-expanded", "false");
  input.setAttribute("autocomplete", "off");

  let results = [];
  let active = -1;
  let timer = null;
  let latest = 0;

  const target = (item) => (input.dataset.autocompleteGo ? input.dataset.autocompleteGo + item.id : item.url);

  function close() {
    list.classList.add("d-none");
    input.setAttribute("aria-expanded", "false");
    input.removeAttribute("aria-activedescendant");
    active = -1;
  }

  function highlight(next) {
    active = next;
    [...list.children].forEach((li, i) => li.setAttribute("aria-selected", String(i === active)));
    if (active >= 0) {
      input.setAttribute("aria-activedescendant", list.children[active].id);
      list.children[active].scrollIntoView({ block: "nearest" });
    }
  }

  function show() {
    list.replaceChildren(
      ...results.map((item, i) => {
        const li = document.createElement("li");
        li.id = `${list.id}-${i}`;
        li.className = "list-group-item list-group-item-action";
        li.setAttribute("role", "option");
        li.textContent = item.label;
        li.addEventListener("mousedown", (event) => {
          event.preventDefault();
          window.location.assign(target(item));
        });
        return li;
      }),
    );
    if (results.length === 0) return close();
    list.classList.remove("d-none");
    input.setAttribute("aria-expanded", "true");
    highlight(-1);
  }

  async function lookup() {
    const q = input.value.trim();
    const ticket = ++latest;
    if (q.length < 1) {
      results = [];
      return close();
    }
    const response = await fetch(`${input.dataset.autocompleteUrl}?${new URLSearchParams({ q })}`, {
      headers: { Accept: "application/json" },
    });
    // Answers can arrive out of order: keep only the newest.
    if (!response.ok || ticket !== latest) return;
    results = (await response.json()).results;
    show();
  }

  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(lookup, 150);
  });
  input.addEventListener("keydown", (event) => {
    const open = !list.classList.contains("d-none");
    if (event.key === "ArrowDown" && results.length) {
      event.preventDefault();
      if (!open) show();
      highlight(Math.min(active + 1, results.length - 1));
    } else if (event.key === "ArrowUp" && open) {
      event.preventDefault();
      highlight(Math.max(active - 1, 0));
    } else if (event.key === "Enter" && open && active >= 0) {
      event.preventDefault();
      window.location.assign(target(results[active]));
    } else if (event.key === "Escape" && open) {
      event.preventDefault();
      close();
    }
  });
  input.addEventListener("blur", () => setTimeout(close, 100));
});
