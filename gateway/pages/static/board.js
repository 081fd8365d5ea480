// The live occupancy board: every facility the credential may see, refreshed by parkgate's own
// occupancyChanged subscriptions and re-read every REFRESH_MS (freshness, sources, the day's curve).
// Everything shown is set as text: a facility's name is a vendor's data, never markup.
(function () {
  "use strict";
  var pg = window.parkgate;
  // ?refresh=SECONDS (at least 2) for a display that wants it sooner; 10 s otherwise
  var asked = Number(new URLSearchParams(window.location.search).get("refresh"));
  var REFRESH_MS = asked >= 2 ? asked * 1000 : 10000;
  var DAY_S = 24 * 3600;
  var HISTORY_INTERVAL_S = 120;
  var HISTORY_EVERY_MS = 60000; // the curve moves a bucket a minute: read it once a minute

  var BOARD = "query Board {\n" +
    "  facilities(first: 100) { totalCount edges { node { id name city timeZone\n" +
    "    occupancy { capacity occupied free percentOccupied status trend freshness ageSeconds served discrepancy\n" +
    "      counted { source occupied free freshness ageSeconds } sensed { source occupied free freshness ageSeconds } }\n" +
    "    sources { id kind status } } } } }";
  var HISTORY = "query Day($from: DateTime!, $to: DateTime!, $interval: Int!) {\n" +
    "  facilities(first: 100) { edges { node { id\n" +
    "    occupancyHistory(from: $from, to: $to, interval: $interval) { at series { source method percentOccupied } } } } } }";
  var ONE = "query Facility($id: ID!) { facility(id: $id) { id\n" +
    "  occupancy { capacity occupied free percentOccupied status trend freshness ageSeconds served discrepancy\n" +
    "    counted { source occupied free freshness ageSeconds } sensed { source occupied free freshness ageSeconds } }\n" +
    "  sources { id kind status } } }";
  var CHANGED = "subscription Changed($id: String!) { occupancyChanged(facilityId: $id) { facilityId zoneId source occupied free capacity } }";

  var grid = document.getElementById("facilities");
  var connection = document.getElementById("connection");
  var updated = document.getElementById("updated");
  var problem = document.getElementById("problem");
  var form = document.getElementById("sign-in");
  var cards = {};        // facility id -> {root, parts, chart, data}
  var socket = null;
  var unsubscribers = {};
  var timer = null;
  var historyTimer = null;
  var pending = {};

  function setConnection(state, text) {
    connection.dataset.state = state;
    connection.textContent = text;
  }

  function showProblem(text) {
    problem.hidden = !text;
    problem.textContent = text || "";
  }

  function stop(message) {
    Object.keys(unsubscribers).forEach(function (id) { unsubscribers[id](); });
    unsubscribers = {};
    if (socket) { socket.dispose(); socket = null; }
    if (timer) { window.clearInterval(timer); timer = null; }
    if (historyTimer) { window.clearInterval(historyTimer); historyTimer = null; }
    pg.signIn(form, message, start);
  }

  // ---- one facility's card ------------------------------------------------------------------
  function makeCard(node) {
    var c = { data: node, parts: {} };
    c.name = pg.el("h2", { className: "name", data: { field: "name" } });
    c.city = pg.el("span", { className: "city" });
    c.badge = pg.el("span", { className: "badge", data: { field: "freshness" } });
    c.free = pg.el("span", { className: "free", data: { field: "free" } });
    c.percent = pg.el("span", { className: "percent", data: { field: "percent" } });
    c.fill = pg.el("div", { className: "meter-fill" });
    c.status = pg.el("b", { data: { field: "status" } });
    c.trend = pg.el("b", { data: { field: "trend" } });
    c.served = pg.el("b", { data: { field: "served" } });
    c.age = pg.el("b", { data: { field: "age" } });
    c.discrepancy = pg.el("b", { data: { field: "discrepancy" } });
    var body = pg.el("tbody");
    ["counted", "sensed"].forEach(function (method) {
      var row = { source: pg.el("td"), occupied: pg.el("td"), free: pg.el("td"),
                  state: pg.el("td", { className: "part-state", data: { field: method + "-freshness" } }) };
      row.tr = pg.el("tr", { data: { part: method }, children: [pg.el("th", { text: method }), row.source, row.occupied, row.free, row.state] });
      body.appendChild(row.tr);
      c.parts[method] = row;
    });
    c.sources = pg.el("div", { className: "sources" });
    c.chart = pg.el("div", { className: "chart" });
    c.root = pg.el("article", { className: "card", data: { facilityId: node.id }, children: [
      pg.el("header", { children: [c.name, c.city, c.badge] }),
      pg.el("div", { className: "figure", children: [c.free, pg.el("span", { text: "free" }), c.percent] }),
      pg.el("div", { className: "meter", children: [c.fill] }),
      pg.el("div", { className: "facts", children: [
        pg.el("span", { children: [document.createTextNode("status "), c.status] }),
        pg.el("span", { children: [document.createTextNode("trend "), c.trend] }),
        pg.el("span", { children: [document.createTextNode("served "), c.served] }),
        pg.el("span", { children: [document.createTextNode("observed "), c.age] }),
        pg.el("span", { children: [document.createTextNode("counted − sensed "), c.discrepancy] }),
      ] }),
      pg.el("table", { className: "parts", children: [
        pg.el("thead", { children: [pg.el("tr", { children: ["figure", "system", "occupied", "free", "freshness"].map(function (h) {
          return pg.el("th", { text: h }); }) })] }),
        body] }),
      c.sources, c.chart] });
    return c;
  }

  // What the card says at a glance: DOWN when a system that measures it failed with nothing to show,
  // STALE when a figure is old or a failing system's last one, else the served figure's freshness.
  function overall(node, failed) {
    var o = node.occupancy;
    if (!o) { return failed.counted || failed.sensed ? "DOWN" : "NO_DATA"; }
    var parts = [o.counted, o.sensed];
    if (failed.counted || failed.sensed || parts.some(function (p) { return p && p.freshness === "STALE"; })) { return "STALE"; }
    if ((node.sources || []).some(function (s) { return s.status === "DOWN"; })) { return "STALE"; }
    return o.freshness;
  }

  function render(c, node, failed) {
    c.data = node;
    c.failed = failed;
    var o = node.occupancy;
    var state = overall(node, failed);
    c.name.textContent = node.name;
    c.city.textContent = node.city || "";
    c.root.dataset.freshness = state;
    c.badge.dataset.value = state;
    c.badge.textContent = state;
    c.free.textContent = o && o.free !== null ? String(o.free) : "—";
    c.percent.textContent = o && o.percentOccupied !== null ? o.percentOccupied.toFixed(1) + " %" : "";
    c.fill.dataset.status = o ? o.status : "UNKNOWN";
    c.fill.style.width = (o && o.percentOccupied !== null ? Math.min(100, o.percentOccupied) : 0) + "%"; // CSSOM, not markup
    c.status.textContent = o ? o.status : "UNKNOWN";
    c.trend.textContent = o ? o.trend : "UNKNOWN";
    c.served.textContent = o && o.served ? o.served : "—";
    c.age.textContent = o ? pg.age(o.ageSeconds) : "—";
    c.discrepancy.textContent = o && o.discrepancy !== null ? String(o.discrepancy) : "—";
    ["counted", "sensed"].forEach(function (method) {
      var row = c.parts[method];
      var part = o ? o[method] : null;
      row.tr.hidden = !part && !failed[method];
      row.source.textContent = part ? part.source : "";
      row.occupied.textContent = part && part.occupied !== null ? String(part.occupied) : "—";
      row.free.textContent = part && part.free !== null ? String(part.free) : "—";
      var partState = failed[method] ? (part ? "STALE" : "DOWN") : (part ? part.freshness : "");
      row.state.dataset.value = partState;
      row.state.textContent = partState + (part && partState !== "DOWN" ? " · " + pg.age(part.ageSeconds) : "");
    });
    c.sources.replaceChildren.apply(c.sources, (node.sources || []).map(function (s) {
      return pg.el("span", { className: "source", data: { status: s.status }, text: s.id + " " + s.status });
    }));
  }

  // An event arrives before the re-read: show its figure at once where it is the served one.
  function applyEvent(update) {
    var c = cards[update.facilityId];
    if (!c || update.zoneId !== null || !c.data.occupancy) { return; }
    var o = c.data.occupancy;
    ["counted", "sensed"].forEach(function (method) {
      var part = o[method];
      if (!part || part.source !== update.source || update.occupied === null) { return; }
      var capacity = update.capacity !== null ? update.capacity : o.capacity;
      part.occupied = update.occupied;
      part.free = update.free !== null ? Math.max(0, update.free) : (capacity !== null ? Math.max(0, capacity - update.occupied) : null);
      part.ageSeconds = 0;
      if (o.served && o.served.toLowerCase() === method) {
        o.occupied = part.occupied;
        o.free = part.free;
        o.ageSeconds = 0;
        o.percentOccupied = capacity ? Math.round(update.occupied * 1000 / capacity) / 10 : o.percentOccupied;
      }
    });
    render(c, c.data, c.failed || {});
    refreshOne(update.facilityId);
  }

  function drawChart(c, history) {
    if (!history || !window.uPlot) { return; }
    // from the first bucket any system reported in: a gateway started this morning charts this morning
    var first = history.at.findIndex(function (_, i) {
      return history.series.some(function (s) { return s.percentOccupied[i] !== null; });
    });
    if (first < 0) { first = history.at.length - 1; }
    var xs = history.at.slice(first).map(function (t) { return Date.parse(t) / 1000; });
    var series = [{}];
    var data = [xs];
    var colours = { COUNTED: "#1f4b99", SENSED: "#b9770e" };
    history.series.forEach(function (s) {
      series.push({ label: (s.method || s.source).toLowerCase() + " %", stroke: colours[s.method] || "#5d6d7e", width: 2 });
      data.push(s.percentOccupied.slice(first));
    });
    var width = Math.max(200, c.chart.clientWidth || 300);
    if (c.plot && c.plotSeries === series.length) {
      c.plot.setData(data);
      return;
    }
    if (c.plot) { c.plot.destroy(); }
    c.plotSeries = series.length;
    c.plot = new window.uPlot({ width: width, height: 150, series: series, legend: { show: true },
                                scales: { y: { range: [0, 100] } }, axes: [{}, { size: 40 }] }, data, c.chart);
  }

  // ---- reading -------------------------------------------------------------------------------
  function failures(errors, prefixOf) {
    var failed = {};
    (errors || []).forEach(function (e) {
      var path = e.path || [];
      var key = prefixOf(path);
      if (key === null) { return; }
      var method = path.indexOf("counted") >= 0 ? "counted" : (path.indexOf("sensed") >= 0 ? "sensed" : null);
      if (path.indexOf("occupancy") >= 0 && method === null) { method = "counted"; failed[key] = failed[key] || {}; failed[key].sensed = true; }
      if (method) { failed[key] = failed[key] || {}; failed[key][method] = true; }
    });
    return failed;
  }

  async function refreshHistory() {
    var now = new Date();
    var from = new Date(now.getTime() - DAY_S * 1000);
    var answer;
    try {
      answer = await pg.graphql(HISTORY, { from: from.toISOString(), to: now.toISOString(), interval: HISTORY_INTERVAL_S });
    } catch (e) { return; }
    var data = answer.body && answer.body.data && answer.body.data.facilities;
    if (!data) { return; }
    data.edges.forEach(function (edge) {
      var c = cards[edge.node.id];
      if (c && edge.node.occupancyHistory) { c.history = edge.node.occupancyHistory; drawChart(c, c.history); }
    });
  }

  async function refreshAll() {
    var answer;
    try {
      answer = await pg.graphql(BOARD);
    } catch (e) {
      setConnection("offline", "offline — retrying");
      return;
    }
    if (answer.status === 401) { stop("The gateway refused this key or token (" + (pg.errorCode(answer.body) || "401") + "). Sign in again."); return; }
    if (!answer.body || !answer.body.data || !answer.body.data.facilities) {
      var code = pg.errorCode(answer.body) || ("HTTP " + answer.status);
      showProblem("The board could not be read: " + code + (answer.retryAfter ? " (retry in " + answer.retryAfter + " s)" : ""));
      if (answer.status >= 500 || answer.status === 0) { setConnection("offline", "offline — retrying"); }
      return;
    }
    showProblem("");
    var edges = answer.body.data.facilities.edges;
    var failed = failures(answer.body.errors, function (path) {
      return path[0] === "facilities" && typeof path[2] === "number" && edges[path[2]] ? edges[path[2]].node.id : null;
    });
    var seen = {};
    edges.forEach(function (edge) {
      var node = edge.node;
      seen[node.id] = true;
      var c = cards[node.id];
      if (!c) { c = cards[node.id] = makeCard(node); grid.appendChild(c.root); subscribe(node.id); }
      render(c, node, failed[node.id] || {});
    });
    Object.keys(cards).forEach(function (id) {
      if (!seen[id]) { cards[id].root.remove(); delete cards[id]; if (unsubscribers[id]) { unsubscribers[id](); delete unsubscribers[id]; } }
    });
    updated.textContent = "read " + new Date().toLocaleTimeString();
  }

  function refreshOne(id) {
    if (pending[id]) { return; }
    pending[id] = window.setTimeout(async function () {
      delete pending[id];
      var answer;
      try { answer = await pg.graphql(ONE, { id: id }); } catch (e) { return; }
      var node = answer.body && answer.body.data && answer.body.data.facility;
      var c = cards[id];
      if (!node || !c) { return; }
      var failed = failures(answer.body.errors, function (path) { return path[0] === "facility" ? id : null; });
      render(c, Object.assign({}, c.data, node), failed[id] || {});
    }, 250);
  }

  function subscribe(id) {
    if (!socket || unsubscribers[id]) { return; }
    unsubscribers[id] = socket.subscribe({ query: CHANGED, variables: { id: id } }, {
      next: function (message) { if (message.data) { applyEvent(message.data.occupancyChanged); } },
      error: function () { delete unsubscribers[id]; },
      complete: function () { delete unsubscribers[id]; },
    });
  }

  function start() {
    showProblem("");
    setConnection("connecting", "connecting…");
    var wasLive = false;
    socket = pg.subscriptions(function (state) {
      if (state === "live") {
        setConnection("live", "live");
        if (wasLive) { refreshAll().then(refreshHistory); } // back after an outage or a restart: read everything again
        wasLive = true;
      } else if (state === "refused") {
        stop("The gateway refused this key or token. Sign in again.");
      } else {
        setConnection("reconnecting", "reconnecting…");
      }
    });
    Object.keys(cards).forEach(subscribe);
    refreshAll().then(refreshHistory);
    timer = window.setInterval(refreshAll, REFRESH_MS);
    historyTimer = window.setInterval(refreshHistory, HISTORY_EVERY_MS);
  }

  document.getElementById("sign-out").addEventListener("click", function () {
    pg.signOut();
    Object.keys(cards).forEach(function (id) { cards[id].root.remove(); });
    cards = {};
    stop("");
  });

  if (pg.credential() === null) { pg.signIn(form, "", start); } else { start(); }
})();
