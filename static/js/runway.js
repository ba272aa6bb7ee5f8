// Runway's small client: toasts, dialogs, elapsed timers, drag and drop, live reconnects.
// The page only observes the pipeline; every change goes through a server endpoint.
(function () {
  "use strict";

  function toast(message, level, featureId) {
    const box = document.getElementById("toasts");
    if (!box) return;
    const item = document.createElement("div");
    item.className = "toast toast-" + (level || "info");
    item.setAttribute("role", "status");
    const text = document.createElement("span");
    text.textContent = message;
    item.appendChild(text);
    if (level !== "error") item.dataset.autoclose = "";
    const close = document.createElement("button");
    close.type = "button";
    close.className = "close";
    close.setAttribute("aria-label", "Dismiss");
    close.textContent = "×";
    item.appendChild(close);
    box.appendChild(item);
    scheduleClose(item);
  }

  function scheduleClose(item) {
    if (item.dataset.autoclose === undefined || item.dataset.scheduled) return;
    item.dataset.scheduled = "1";
    setTimeout(function () { item.remove(); }, 6000);
  }

  document.addEventListener("toast", function (event) {
    const d = event.detail || {};
    toast(d.message, d.level, d.feature_id);
  });

  document.addEventListener("click", function (event) {
    const target = event.target.closest("[data-open-dialog], [data-close-dialog], .toast .close");
    if (!target) return;
    if (target.matches(".toast .close")) { target.closest(".toast").remove(); return; }
    if (target.dataset.openDialog) {
      const dialog = document.getElementById(target.dataset.openDialog);
      if (dialog) { dialog.showModal(); const first = dialog.querySelector("input, textarea"); if (first) first.focus(); }
    } else {
      const dialog = document.getElementById(target.dataset.closeDialog);
      if (dialog) dialog.close();
    }
  });

  document.addEventListener("closeDialog", function (event) {
    const dialog = document.getElementById(event.detail.value || event.detail);
    if (!dialog) return;
    const form = dialog.querySelector("form");
    if (form) form.reset();
    dialog.close();
  });

  // Elapsed counters tick every second from the run's start time.
  function pad(n) { return n < 10 ? "0" + n : "" + n; }
  setInterval(function () {
    document.querySelectorAll("time.elapsed[data-since]").forEach(function (el) {
      const seconds = Math.max(0, Math.floor((Date.now() - Date.parse(el.dataset.since)) / 1000));
      const h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
      el.textContent = (h ? h + ":" + pad(m) : m) + ":" + pad(s);
    });
  }, 1000);

  // Drag and drop: Sortable moves the card in the page, the server decides where it really is
  // (the response redraws both columns from the database).
  function moveUrl(cardId) {
    const page = document.querySelector("[data-move-url-template]");
    return page.dataset.moveUrlTemplate.replace("/0/", "/" + cardId + "/");
  }

  function initSortable(root) {
    if (typeof Sortable === "undefined") return;
    root.querySelectorAll(".cards[data-sortable]").forEach(function (list) {
      if (list.dataset.sortableReady) return;
      list.dataset.sortableReady = "1";
      Sortable.create(list, {
        group: "board-" + list.dataset.sortable,
        animation: 120,
        // Pointer events rather than native HTML5 drag: works the same with mouse and touch.
        forceFallback: true,
        filter: "button, select, a, input",
        preventOnFilter: false,
        onEnd: function (evt) {
          if (evt.from === evt.to && evt.oldIndex === evt.newIndex) return;
          htmx.ajax("POST", moveUrl(evt.item.dataset.cardId), {
            source: evt.item,
            swap: "none",
            values: { stage: evt.to.dataset.stageId, position: evt.newIndex },
          });
        },
      });
    });
  }

  // htmx carries the attributes of an element being replaced over to its replacement with the
  // same id while it settles; a style attribute left by Sortable's animation would then be
  // applied as an inline style, which the Content-Security-Policy blocks. Drop them first.
  function dropInlineStyles(event) {
    const target = event.detail && event.detail.target;
    if (!(target instanceof Element)) return;
    if (target.id) target.removeAttribute("style");
    target.querySelectorAll("[id][style]").forEach(function (el) { el.removeAttribute("style"); });
  }
  document.addEventListener("htmx:beforeSwap", dropInlineStyles);
  document.addEventListener("htmx:oobBeforeSwap", dropInlineStyles);

  // A card redrawn in a new column may still sit in the old one after a missed event.
  function dropDuplicates(root) {
    root.querySelectorAll(".card[id]").forEach(function (card) {
      document.querySelectorAll("#" + card.id).forEach(function (other) {
        if (other !== card && !root.contains(other)) other.remove();
      });
    });
  }

  // Progress bars carry their width as data-progress: the Content-Security-Policy forbids
  // style attributes in markup, but not setting a style property from our own script.
  function sizeBars(root) {
    const bars = Array.from(root.querySelectorAll ? root.querySelectorAll(".bar[data-progress]") : []);
    if (root.matches && root.matches(".bar[data-progress]")) bars.push(root);
    bars.forEach(function (bar) {
      const fill = bar.querySelector("span");
      const percent = Math.max(0, Math.min(100, parseInt(bar.dataset.progress, 10) || 0));
      if (fill) fill.style.width = percent + "%";
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    initSortable(document);
    sizeBars(document);
    if (typeof htmx === "undefined") return;
    htmx.onLoad(function (element) {
      if (!(element instanceof Element)) return;
      sizeBars(element);
      initSortable(element.matches(".cards") ? element.parentElement : element);
      if (element.matches(".column, #board-body")) dropDuplicates(element);
      if (element.matches(".toast")) scheduleClose(element);
      element.querySelectorAll && element.querySelectorAll(".toast").forEach(scheduleClose);
    });
  });

  // Live updates: show the socket's state, and re-sync the whole board after a reconnect so
  // whatever happened while we were away is on screen.
  let opened = false;
  document.addEventListener("htmx:wsOpen", function () {
    const live = document.getElementById("live-status");
    if (live) live.classList.add("on");
    const page = document.querySelector("[data-board-url]");
    if (opened && page) {
      htmx.ajax("GET", page.dataset.boardUrl, { target: "#board-body", swap: "outerHTML" });
    }
    opened = true;
  });
  document.addEventListener("htmx:wsClose", function () {
    const live = document.getElementById("live-status");
    if (live) live.classList.remove("on");
  });

  window.runwayToast = toast;
})();
