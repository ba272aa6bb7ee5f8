// The board's view: collapsed empty columns, filtered and grouped boards kept right under live
// updates, and a toast when a card lands in a column out of sight. Separate from runway.js
// (drag and drop, sockets) so each stays small.
(function () {
  "use strict";

  function page() { return document.querySelector(".board-page"); }
  function body() { return document.getElementById("board-body"); }

  // An empty column is a narrow strip with its count; its name opens it (to drop a card on).
  document.addEventListener("click", function (event) {
    const toggle = event.target.closest("[data-column-toggle]");
    if (!toggle) return;
    const column = toggle.closest(".column");
    const collapsed = column.classList.toggle("collapsed");
    toggle.setAttribute("aria-expanded", collapsed ? "false" : "true");
  });

  // The page's URL for a re-sync (runway.js reloads the board body from data-board-url after
  // a reconnect): it must keep the filters the board body was drawn with.
  function syncUrl() {
    const p = page(), b = body();
    if (!p || !b) return;
    const filters = b.dataset.filters || "";
    p.dataset.boardUrl = p.dataset.boardBase + (filters ? "?" + filters : "");
  }

  function narrowed() {
    const b = body();
    return !!(b && b.dataset.filters);
  }

  // Under filters or grouping, a column pushed by the socket is the unfiltered one: rather
  // than show it, redraw the board body from the server with the page's filters.
  let refetch = null;
  function resync() {
    clearTimeout(refetch);
    refetch = setTimeout(function () {
      const p = page();
      if (p && body()) htmx.ajax("GET", p.dataset.boardUrl, { target: "#board-body", swap: "outerHTML" });
    }, 250);
  }

  // Which cards each column held before a live redraw, to spot the ones that arrived, and which
  // cards the board held at all: only those moved here (a card made just now is not "moved";
  // the server's own toast tells what was added).
  let before = {};
  let onBoard = null;
  function ids(root) {
    return new Set(Array.from(root.querySelectorAll(".card[id]")).map(function (c) { return c.id; }));
  }
  document.addEventListener("htmx:oobBeforeSwap", function (event) {
    const target = event.detail && event.detail.target;
    if (!(target instanceof Element) || !target.matches(".column")) return;
    if (narrowed()) { event.preventDefault(); resync(); return; }
    if (onBoard === null) {
      // One message's columns swap in one task: the first sees the whole board as it was.
      onBoard = ids(document);
      setTimeout(function () { onBoard = null; }, 0);
    }
    before[target.id] = ids(target);
  });

  document.addEventListener("htmx:oobAfterSwap", function (event) {
    const target = event.detail && event.detail.target;
    if (!(target instanceof Element) || !target.id) return;
    const column = document.getElementById(target.id);
    if (!column || !column.matches(".column")) return;
    const had = before[target.id];
    delete before[target.id];
    if (!had) return;
    const known = onBoard;
    column.querySelectorAll(".card[id]").forEach(function (card) {
      if (!had.has(card.id) && known && known.has(card.id) && offScreen(card)) announce(card, column);
    });
  });

  function offScreen(card) {
    const r = card.getBoundingClientRect();
    const board = card.closest(".board");
    const box = board ? board.getBoundingClientRect() : { left: 0, right: window.innerWidth };
    const left = Math.max(box.left, 0), right = Math.min(box.right, window.innerWidth);
    return r.right <= left || r.left >= right || r.bottom <= 0 || r.top >= window.innerHeight;
  }

  function announce(card, column) {
    const box = document.getElementById("toasts");
    if (!box) return;
    const name = column.querySelector(".name");
    const item = document.createElement("div");
    item.className = "toast toast-info";
    item.setAttribute("role", "status");
    item.dataset.autoclose = "";
    const text = document.createElement("span");
    text.textContent = "“" + (card.dataset.title || "A card") + "” moved to " + (name ? name.textContent.trim() : "another column");
    const link = document.createElement("a");
    link.href = "#" + card.id;
    link.textContent = "Show";
    link.addEventListener("click", function (event) {
      event.preventDefault();
      const now = document.getElementById(card.id);
      if (now) { now.scrollIntoView({ behavior: "smooth", block: "center", inline: "center" }); now.classList.add("flash"); setTimeout(function () { now.classList.remove("flash"); }, 1600); }
    });
    const close = document.createElement("button");
    close.type = "button";
    close.className = "close";
    close.setAttribute("aria-label", "Dismiss");
    close.textContent = "×";
    item.append(text, link, close);
    box.appendChild(item);
    setTimeout(function () { item.remove(); }, 8000);
  }

  // Archiving from the board answers with the unfiltered column; a filtered board re-syncs.
  document.addEventListener("boardChanged", function () { if (narrowed()) resync(); });

  document.addEventListener("DOMContentLoaded", function () {
    syncUrl();
    if (typeof htmx === "undefined") return;
    htmx.onLoad(function (element) {
      if (element instanceof Element && element.id === "board-body") syncUrl();
    });
  });
  // A filter form swap may replace the body without a load event on it (outerHTML keeps htmx
  // processing the new element, but be sure).
  document.addEventListener("htmx:afterSettle", syncUrl);
})();
