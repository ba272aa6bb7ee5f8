// Runway's small client: toasts, dialogs, elapsed timers, drag and drop, live reconnects.
// The page only observes the pipeline; every change goes through a server endpoint.
(function () {
  "use strict";

  // One toast per card (or batch): a newer toast about it replaces the older one, so a
  // "Generating…" never outlives the Stop or the failure that followed it.
  function replaceOlder(item) {
    const key = item.dataset.toastKey;
    if (!key) return;
    document.querySelectorAll("#toasts .toast").forEach(function (other) {
      if (other !== item && other.dataset.toastKey === key) other.remove();
    });
  }

  function toast(d) {
    const box = document.getElementById("toasts");
    if (!box || !d.message) return;
    const level = d.level || "info";
    const item = document.createElement("div");
    item.className = "toast toast-" + level;
    item.setAttribute("role", level === "error" ? "alert" : "status");
    if (d.toast_key) item.dataset.toastKey = d.toast_key;
    else if (d.batch_id) item.dataset.toastKey = "batch-" + d.batch_id;
    else if (d.feature_id) item.dataset.toastKey = "card-" + d.feature_id;
    const text = document.createElement("span");
    text.textContent = d.message;
    item.appendChild(text);
    if (d.stop_url) {
      const stop = document.createElement("button");
      stop.type = "button";
      stop.textContent = "Stop";
      stop.setAttribute("hx-post", d.stop_url);
      stop.setAttribute("hx-swap", "none");
      item.appendChild(stop);
    }
    if (level !== "error" && !d.stop_url) item.dataset.autoclose = "";
    const close = document.createElement("button");
    close.type = "button";
    close.className = "close";
    close.setAttribute("aria-label", "Dismiss");
    close.textContent = "×";
    item.appendChild(close);
    box.appendChild(item);
    replaceOlder(item);
    if (d.stop_url && typeof htmx !== "undefined") htmx.process(item);
    scheduleClose(item);
  }

  function scheduleClose(item) {
    if (item.dataset.autoclose === undefined || item.dataset.scheduled) return;
    item.dataset.scheduled = "1";
    setTimeout(function () { item.remove(); }, 6000);
  }

  document.addEventListener("toast", function (event) {
    toast(event.detail || {});
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

  // A drag in progress is never redrawn under the pointer: live updates wait until the drop.
  let dragging = false, deferred = false, droppedAt = 0;
  document.addEventListener("htmx:wsBeforeMessage", function (event) {
    if (dragging && event.target.matches("[data-board-url]")) {
      deferred = true;
      event.preventDefault();
    }
  });
  // A drag that ends over the card's own title must not also follow the link.
  document.addEventListener("click", function (event) {
    if (Date.now() - droppedAt < 400 && event.target.closest(".card a.title")) {
      event.preventDefault();
    }
  }, true);

  function resync() {
    const page = document.querySelector("[data-board-url]");
    if (page) htmx.ajax("GET", page.dataset.boardUrl, { target: "#board-body", swap: "outerHTML" });
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
        draggable: ".card",
        // The whole card is a handle, title included; its controls stay clickable.
        filter: "button, select, input, label",
        preventOnFilter: false,
        onStart: function () { dragging = true; },
        onEnd: function (evt) {
          dragging = false;
          droppedAt = Date.now();
          const moved = !(evt.from === evt.to && evt.oldIndex === evt.newIndex);
          const request = moved ? htmx.ajax("POST", moveUrl(evt.item.dataset.cardId), {
            source: evt.item,
            swap: "none",
            values: { stage: evt.to.dataset.stageId, position: evt.newIndex },
          }) : Promise.resolve();
          // Updates that arrived during the drag were held back: redraw once, after the move.
          if (deferred) {
            deferred = false;
            request.then(resync, resync);
          }
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
      const toasts = element.matches(".toast") ? [element] : Array.from(element.querySelectorAll(".toast"));
      toasts.forEach(function (item) { replaceOlder(item); scheduleClose(item); });
    });
  });

  // Live updates: show the socket's state, and re-sync the whole board after a reconnect so
  // whatever happened while we were away is on screen.
  let opened = false;
  document.addEventListener("htmx:wsOpen", function () {
    const live = document.getElementById("live-status");
    if (live) live.classList.add("on");
    // Only a real reconnect (the socket had been open and closed) redraws, once.
    if (opened) resync();
    opened = true;
  });
  document.addEventListener("htmx:wsClose", function () {
    const live = document.getElementById("live-status");
    if (live) live.classList.remove("on");
  });

  window.runwayToast = function (message, level, featureId) {
    toast({ message: message, level: level, feature_id: featureId });
  };
})();
