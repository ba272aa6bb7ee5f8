// The command palette: ⌘K / Ctrl-K opens it; type a card's title or #id, pick the card with
// Enter, then pick an action (Launch, Stop, Open, Move to …) with Enter. The server lists what
// the member may do (/w/<slug>/palette); the actions are the board's own endpoints.
(function () {
  "use strict";

  let dialog, input, list, context;
  let cards = [], items = [], active = 0, chosen = null, timer = null, asked = 0;

  function open() {
    dialog = document.getElementById("palette");
    if (!dialog) return false;
    input = document.getElementById("palette-input");
    list = document.getElementById("palette-list");
    context = document.getElementById("palette-context");
    chosen = null;
    input.value = "";
    context.hidden = true;
    if (!dialog.open) dialog.showModal();
    input.focus();
    search("");
    return true;
  }

  function search(q) {
    const ticket = ++asked;
    fetch(dialog.dataset.searchUrl + "?q=" + encodeURIComponent(q), {
      headers: { Accept: "application/json" }, credentials: "same-origin",
    })
      .then(function (r) { return r.ok ? r.json() : { cards: [] }; })
      .then(function (data) {
        if (ticket !== asked || chosen) return; // an older answer, or a card already chosen
        cards = data.cards || [];
        show(cards.map(function (c) {
          return { label: c.title, detail: "#" + c.id + " · " + c.kind + " · " + c.stage, card: c };
        }));
      });
  }

  function show(entries) {
    items = entries;
    active = 0;
    list.replaceChildren();
    if (!entries.length) {
      const empty = document.createElement("li");
      empty.className = "muted";
      empty.textContent = chosen ? "No such action" : "No card matches";
      list.appendChild(empty);
    }
    entries.forEach(function (entry, index) {
      const li = document.createElement("li");
      li.setAttribute("role", "option");
      li.id = "palette-item-" + index;
      const label = document.createElement("span");
      label.textContent = entry.label;
      li.appendChild(label);
      if (entry.detail) {
        const detail = document.createElement("span");
        detail.className = "muted";
        detail.textContent = entry.detail;
        li.appendChild(detail);
      }
      li.addEventListener("mousedown", function (event) { event.preventDefault(); active = index; pick(); });
      list.appendChild(li);
    });
    highlight();
  }

  function highlight() {
    Array.from(list.children).forEach(function (li, index) {
      li.setAttribute("aria-selected", index === active ? "true" : "false");
    });
    if (items.length) {
      input.setAttribute("aria-activedescendant", "palette-item-" + active);
      const li = document.getElementById("palette-item-" + active);
      if (li) li.scrollIntoView({ block: "nearest" });
    }
  }

  function actionsOf(card, filter) {
    const f = filter.toLowerCase();
    return card.actions
      .filter(function (a) { return a.label.toLowerCase().indexOf(f) !== -1; })
      .map(function (a) { return { label: a.label, action: a }; });
  }

  function pick() {
    const entry = items[active];
    if (!entry) return;
    if (entry.card) {
      chosen = entry.card;
      input.value = "";
      input.placeholder = "Action: launch, stop, open, move…";
      context.textContent = "#" + chosen.id + " " + chosen.title;
      context.hidden = false;
      show(actionsOf(chosen, ""));
      return;
    }
    run(entry.action);
  }

  function run(action) {
    dialog.close();
    if (action.method === "GET") { window.location.href = action.url; return; }
    const values = action.stage ? { stage: action.stage } : {};
    // htmx sends the CSRF header from <body hx-headers> and shows the answer's toast.
    htmx.ajax("POST", action.url, { source: document.body, swap: "none", values: values });
  }

  function back() {
    chosen = null;
    input.placeholder = "Card title or #id";
    context.hidden = true;
    search(input.value);
  }

  document.addEventListener("keydown", function (event) {
    if ((event.metaKey || event.ctrlKey) && !event.altKey && event.key.toLowerCase() === "k") {
      if (document.getElementById("palette")) {
        event.preventDefault();
        open();
      }
      return;
    }
    if (!dialog || !dialog.open || event.target !== input) return;
    if (event.key === "ArrowDown") { event.preventDefault(); active = Math.min(active + 1, items.length - 1); highlight(); }
    else if (event.key === "ArrowUp") { event.preventDefault(); active = Math.max(active - 1, 0); highlight(); }
    else if (event.key === "Enter") { event.preventDefault(); pick(); }
    else if (event.key === "Backspace" && chosen && input.value === "") { event.preventDefault(); back(); }
  });

  document.addEventListener("input", function (event) {
    if (!dialog || event.target !== input) return;
    if (chosen) { show(actionsOf(chosen, input.value)); return; }
    clearTimeout(timer);
    timer = setTimeout(function () { search(input.value); }, 120);
  });

  document.addEventListener("click", function (event) {
    if (event.target.closest("[data-open-palette]")) open();
    // A click on the backdrop (outside the box) closes it.
    if (dialog && dialog.open && event.target === dialog) dialog.close();
  });
})();
