// Refresh the free start times when room, date or procedure change on a booking or reschedule form.
// Without JavaScript the "Show free times" button posts the form back, which re-renders it with the
// slots and books nothing. The query here holds only room, date, procedure and order: no patient data.
document.querySelectorAll("form[data-slots-url]").forEach((form) => {
  const slot = form.elements.namedItem("slot");
  const value = (name) => form.elements.namedItem(name)?.value || form.dataset[name] || "";
  // Typing a date changes it at every digit, and the answers can arrive out of order: keep only the
  // answer to the latest question, or a partial date's "choose first" can replace the real slots.
  let latest = 0;
  // The date box asks at every key and again when it loses the focus: the second, same question would
  // replace the slots, and the start time chosen meanwhile, with the same list.
  let asked = "";

  async function refresh() {
    const query = new URLSearchParams({
      room: value("room"),
      date: value("date"),
      procedure: value("procedure"),
      order: form.dataset.order || "",
    });
    if (query.toString() === asked) return;
    asked = query.toString();
    const ticket = ++latest;
    slot.replaceChildren(new Option("…", ""));
    if (!value("room") || !value("date") || !value("procedure")) {
      slot.replaceChildren(new Option(form.dataset.chooseFirst, ""));
      return;
    }
    const response = await fetch(`${form.dataset.slotsUrl}?${query}`, { headers: { Accept: "application/json" } });
    if (ticket !== latest) return;
    if (!response.ok) {
      slot.replaceChildren(new Option(form.dataset.chooseFirst, ""));
      return;
    }
    const { slots } = await response.json();
    if (ticket !== latest) return;
    if (slots.length === 0) {
      slot.replaceChildren(new Option(form.dataset.noneFree, ""));
      return;
    }
    slot.replaceChildren(new Option("---------", ""), ...slots.map((hhmm) => new Option(hhmm, hhmm)));
  }

  ["room", "date", "procedure"].forEach((name) => form.elements.namedItem(name)?.addEventListener("change", refresh));
  // The date is a text box (dd/mm/yyyy in the page's era): ask at every key too, so the slots follow
  // the date being typed without leaving the field; an unfinished date gets "choose first".
  form.elements.namedItem("date")?.addEventListener("input", refresh);
});
