// Revocation, live: refresh the page's two tables from live.json once a second.
// Only DOM text is written (no HTML from data), so the page's strict CSP holds.
(function () {
  "use strict";
  var root = document.getElementById("live");
  if (!root) { return; }
  var source = root.getAttribute("data-source");
  var state = root.querySelector('[data-field="state"]');

  function when(epoch) {
    if (epoch === null || epoch === undefined) { return "—"; }
    return new Date(epoch * 1000).toISOString().slice(0, 19).replace("T", " ") + " UTC";
  }

  function row(cells) {
    var tr = document.createElement("tr");
    cells.forEach(function (text) {
      var td = document.createElement("td");
      td.textContent = String(text);
      tr.appendChild(td);
    });
    return tr;
  }

  function fill(name, rows, empty, span) {
    var body = root.querySelector('[data-rows="' + name + '"]');
    var fresh = document.createDocumentFragment();
    if (rows.length === 0) {
      var tr = row([empty]);
      tr.firstChild.colSpan = span;
      fresh.appendChild(tr);
    }
    rows.forEach(function (r) { fresh.appendChild(row(r)); });
    body.replaceChildren(fresh);
  }

  function render(view) {
    root.querySelector('[data-field="head"]').textContent = String(view.head);
    root.querySelector('[data-field="now"]').textContent = when(view.now);
    var followers = view.followers;
    fill("followers", followers.map(function (f) {
      return [f.client_id, f.replica, when(f.connected_at), f.cursor, f.behind_events,
              f.behind_ms, when(f.last_seen_at)];
    }), "No service follows the feed right now.", 7);
    fill("events", view.events.map(function (e) {
      var sent = [];
      e.received_ms.forEach(function (ms, i) {
        if (ms !== null) {
          sent.push(followers[i].client_id + " (" + followers[i].replica + ") +" + ms + " ms");
        }
      });
      return [e.cursor, e.kind, e.value, when(e.created_at), sent.join("; ")];
    }), "No revocation events yet.", 5);
  }

  function say(text) {
    if (state.textContent !== text) { state.textContent = text; }
  }

  function tick() {
    fetch(source, { credentials: "same-origin", cache: "no-store", redirect: "manual",
                    headers: { "Accept": "application/json" } })
      .then(function (response) {
        if (!response.ok) { throw new Error(response.status === 0 ? "signed out" : "refused"); }
        return response.json();
      })
      .then(function (view) {
        render(view);
        say("");
      })
      .catch(function (error) {
        say(error.message === "signed out"
          ? "Your session has ended: reload the page to sign in again."
          : "The server did not answer; retrying.");
      });
  }

  window.setInterval(tick, 1000);
})();
