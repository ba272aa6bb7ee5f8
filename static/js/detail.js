// Card detail page: the run log follows new lines, and a reconnecting socket asks only for the
// lines after the last one on the page (the server replays them), so a dropped connection
// never leaves a gap or a duplicate.
(function () {
  "use strict";

  function lastSeq(runId) {
    var lines = document.querySelectorAll("#log-lines-" + runId + " [data-seq]");
    return lines.length ? lines[lines.length - 1].getAttribute("data-seq") : "0";
  }

  // The ws extension builds each (re)connection through htmx.createWebSocket with the URL it
  // read once from ws-connect; rewrite ?after= at every attempt from what the page holds now.
  // One socket per run log: a log panel swapped in by the card's socket is processed both as
  // the panel and as its ws-connect child, which opened two sockets and showed lines twice.
  var create = window.htmx && htmx.createWebSocket;
  var runSockets = {};
  if (window.htmx) {
    htmx.createWebSocket = function (url) {
      var match = /\/ws\/runs\/(\d+)\//.exec(url);
      if (match) url = url.replace(/([?&]after=)\d*/, "$1" + lastSeq(match[1]));
      var socket = create ? create(url) : new WebSocket(url);
      if (match) {
        var older = runSockets[match[1]];
        if (older && older.readyState <= 1) older.close();
        runSockets[match[1]] = socket;
      }
      return socket;
    };
  }

  function logIn(elt) {
    return elt && elt.querySelector ? elt.querySelector(".log") : null;
  }

  // Stay at the bottom only if the reader was there: scrolling up to read must not be undone.
  document.addEventListener("htmx:wsBeforeMessage", function (event) {
    var log = logIn(event.target);
    if (log) log.dataset.follow = log.scrollHeight - log.scrollTop - log.clientHeight < 40 ? "1" : "";
  });
  document.addEventListener("htmx:wsAfterMessage", function (event) {
    var log = logIn(event.target);
    if (log && log.dataset.follow) log.scrollTop = log.scrollHeight;
  });

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll(".live-log .log").forEach(function (log) {
      log.scrollTop = log.scrollHeight;
    });
  });
})();
