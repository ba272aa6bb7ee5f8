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
  var create = window.htmx && htmx.createWebSocket;
  if (window.htmx) {
    htmx.createWebSocket = function (url) {
      var match = /\/ws\/runs\/(\d+)\//.exec(url);
      if (match) url = url.replace(/([?&]after=)\d*/, "$1" + lastSeq(match[1]));
      return create ? create(url) : new WebSocket(url);
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
