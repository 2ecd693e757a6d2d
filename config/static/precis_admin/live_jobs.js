// Live job status on the admin's pages: every element with data-job-id (and data-field =
// status | progress | error) follows its job over /ws/events/, signed in by the admin's session.
// A socket that drops reconnects with ?since= (the server replays what was missed); a resync
// or a new summary offers a reload.
function precisLiveJobs() {
  "use strict";
  if (!document.querySelector("[data-job-id]")) return;
  var scheme = location.protocol === "https:" ? "wss" : "ws";
  var start = document.querySelector('meta[name="precis-events-since"]');
  var since = start ? start.getAttribute("content") : null; // the page's state is as of this event
  var delay = 1000;

  function notice(text) {
    var box = document.getElementById("precis-live-notice");
    if (!box) {
      box = document.createElement("p");
      box.id = "precis-live-notice";
      box.className = "precis-live-notice";
      var content = document.getElementById("content-main") || document.body;
      content.insertBefore(box, content.firstChild);
    }
    box.textContent = text + " ";
    var link = document.createElement("a");
    link.href = location.href;
    link.textContent = "Reload the page";
    box.appendChild(link);
  }

  function update(job) {
    var cells = document.querySelectorAll('[data-job-id="' + job.id + '"]');
    for (var i = 0; i < cells.length; i++) {
      var field = cells[i].getAttribute("data-field");
      if (field === "status") cells[i].textContent = job.status;
      else if (field === "progress") cells[i].textContent = job.progress + "%";
      else if (field === "error") cells[i].textContent = job.error ? job.error.code + ": " + job.error.detail : "";
    }
  }

  function connect() {
    var socket = new WebSocket(scheme + "://" + location.host + "/ws/events/" + (since ? "?since=" + since : ""));
    socket.onopen = function () { delay = 1000; };
    socket.onmessage = function (message) {
      var event = JSON.parse(message.data);
      if (event.id) since = event.id;
      if (!event.type) return;
      if (event.type.indexOf("job.") === 0) update(event.data);
      else if (event.type === "summary.created" && document.querySelector('[data-job-id="' + event.data.job + '"]')) {
        notice("A new summary is ready.");
      } else if (event.type === "resync") notice("Some updates were missed.");
    };
    socket.onclose = function (event) {
      if (event.code === 4401) return; // signed out: nothing to follow
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 30000);
    };
  }
  connect();
}
// The admin loads its media in <head>: start once the page's cells exist.
if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", precisLiveJobs);
else precisLiveJobs();
