// The admin console: clients, their use against each quota, who was throttled, and the audit log,
// read and changed through the same admin GraphQL operations as `parkgate clients …` (no other way in).
// Re-read every REFRESH_MS. Everything shown is set as text.
(function () {
  "use strict";
  var pg = window.parkgate;
  var asked = Number(new URLSearchParams(window.location.search).get("refresh"));
  var REFRESH_MS = asked >= 1 ? asked * 1000 : 5000;
  var HISTORY_MINUTES = 30;

  var CONSOLE = "query Console($minutes: Int!) {\n" +
    "  clients { id name environment status plan scopes facilities quotaOverrides\n" +
    "    quota { requests cost windowSeconds } usage { requests cost refusals }\n" +
    "    usageHistory(minutes: $minutes) { at requests cost } }\n" +
    "  throttleEvents(first: 20) { at clientId refusedBy retryAfterSeconds }\n" +
    "  auditLog(first: 20) { at actor action clientId }\n" +
    "  plans { name requests cost windowSeconds } scopes { name description } }";
  var UPDATE = "mutation Update($id: ID!, $input: UpdateClientInput!) { updateClient(id: $id, input: $input) { id plan } }";
  var ROTATE = "mutation Rotate($id: ID!) { rotateClientKey(id: $id) { key client { id name } } }";
  var REVOKE = "mutation Revoke($id: ID!) { revokeClient(id: $id) { id status } }";
  var CREATE = "mutation Create($input: CreateClientInput!) { createClient(input: $input) { key client { id name } } }";

  var form = document.getElementById("sign-in");
  var main = document.getElementById("console");
  var problem = document.getElementById("problem");
  var connection = document.getElementById("connection");
  var updated = document.getElementById("updated");
  var clientsBody = document.querySelector("#clients tbody");
  var throttlesBody = document.querySelector("#throttles tbody");
  var auditBody = document.querySelector("#audit tbody");
  var newKey = document.getElementById("new-key");
  var timer = null;
  var names = {};
  var charts = {};
  var plansLoaded = false;
  var armed = {};  // client id -> its Revoke button was clicked once (survives a re-read)

  function showProblem(text) { problem.hidden = !text; problem.textContent = text || ""; }
  function when(iso) { return new Date(iso).toLocaleString(); }
  function td(text, className) { return pg.el("td", { text: text, className: className }); }

  function stop(message) {
    if (timer) { window.clearInterval(timer); timer = null; }
    main.hidden = true;
    pg.signIn(form, message, start);
  }

  // Run one admin operation; its data, or null with the problem shown.
  async function run(query, variables) {
    var answer;
    try { answer = await pg.graphql(query, variables); } catch (e) {
      connection.dataset.state = "offline"; connection.textContent = "offline — retrying"; return null;
    }
    if (answer.status === 401) { stop("The gateway refused this key or token. Sign in again."); return null; }
    var code = pg.errorCode(answer.body);
    if (code === "FORBIDDEN") { stop("This key or token lacks the admin scope: the console needs an admin client."); return null; }
    if (code) {
      var first = answer.body.errors[0];
      showProblem(code + ": " + first.message);
      return answer.body && answer.body.data ? answer.body.data : null;
    }
    if (!answer.body || !answer.body.data) { showProblem("HTTP " + answer.status); return null; }
    connection.dataset.state = "live"; connection.textContent = "live";
    return answer.body.data;
  }

  function showKey(issued) {
    newKey.querySelector("[data-field=client]").textContent = issued.client.name;
    newKey.querySelector("[data-field=key]").textContent = issued.key;
    newKey.hidden = false;
  }
  newKey.querySelector("[data-action=dismiss]").addEventListener("click", function () {
    newKey.querySelector("[data-field=key]").textContent = "";
    newKey.hidden = true;
  });

  function usageCell(used, limit, dimension) {
    var share = limit ? used / limit : 0;
    var fill = pg.el("div", { className: "usage-fill", data: { level: share >= 1 ? "over" : share >= 0.8 ? "high" : "ok" } });
    fill.style.width = Math.min(100, Math.round(share * 100)) + "%"; // CSSOM, not markup
    return pg.el("td", { data: { field: dimension }, children: [
      pg.el("div", { text: used + " / " + limit }), pg.el("div", { className: "usage-bar", children: [fill] })] });
  }

  function chart(client) {
    var holder = pg.el("div", { className: "usage-chart" });
    var xs = client.usageHistory.map(function (m) { return Date.parse(m.at) / 1000; });
    var data = [xs, client.usageHistory.map(function (m) { return m.requests; }),
                client.usageHistory.map(function (m) { return m.cost; })];
    var previous = charts[client.id];
    if (previous) { previous.destroy(); }
    // from zero, a little room below it: a quiet client draws a visible flat line, not nothing
    var fromZero = function (u, min, max) { var top = Math.max(1, max) * 1.1; return [-top * 0.08, top]; };
    charts[client.id] = new window.uPlot({ width: 180, height: 60, legend: { show: false }, cursor: { show: false },
      scales: { y: { range: fromZero }, cost: { range: fromZero } },
      axes: [{ show: false }, { show: false }, { show: false, scale: "cost" }],
      series: [{}, { label: "requests", stroke: "#1f4b99", fill: "#1f4b9922", width: 1.5 },
               { label: "cost", stroke: "#b9770e", width: 1, scale: "cost" }] },
      data, holder);
    return pg.el("td", { children: [holder] });
  }

  function planSelect(client, plans) {
    var select = pg.el("select", { attrs: { "aria-label": "plan of " + client.name }, data: { action: "plan" } });
    plans.forEach(function (p) {
      var option = pg.el("option", { text: p.name });
      option.value = p.name;
      option.selected = p.name === client.plan;
      select.appendChild(option);
    });
    select.disabled = client.status !== "ACTIVE";
    select.addEventListener("change", async function () {
      select.disabled = true;
      await run(UPDATE, { id: client.id, input: { plan: select.value } });
      select.blur();
      refreshNow();
    });
    return select;
  }

  function overridesForm(client) {
    var requests = pg.el("input", { attrs: { type: "number", min: "1", name: "requests", placeholder: "plan's" } });
    var cost = pg.el("input", { attrs: { type: "number", min: "1", name: "cost", placeholder: "plan's" } });
    var current = client.quotaOverrides || {};
    if (current.requests) { requests.value = current.requests; }
    if (current.cost) { cost.value = current.cost; }
    var save = pg.el("button", { text: "Save overrides", attrs: { type: "submit" } });
    var f = pg.el("form", { className: "inline", data: { action: "overrides" }, children: [
      pg.el("label", { children: [document.createTextNode("requests"), requests] }),
      pg.el("label", { children: [document.createTextNode("cost"), cost] }), save] });
    f.addEventListener("submit", async function (event) {
      event.preventDefault();
      var overrides = {};
      if (requests.value) { overrides.requests = Number(requests.value); }
      if (cost.value) { overrides.cost = Number(cost.value); }
      await run(UPDATE, { id: client.id, input: { quotaOverrides: overrides } });
      refreshNow();
    });
    return pg.el("details", { children: [pg.el("summary", { text: "overrides" }), f] });
  }

  // Revoking takes two clicks: the first arms the button, the second acts.
  function keyButtons(client) {
    var cell = pg.el("td");
    if (client.status !== "ACTIVE") { cell.textContent = client.status; return cell; }
    var rotate = pg.el("button", { text: "Rotate key", data: { action: "rotate" }, attrs: { type: "button" } });
    rotate.addEventListener("click", async function () {
      var data = await run(ROTATE, { id: client.id });
      if (data && data.rotateClientKey) { showKey(data.rotateClientKey); }
      refreshNow();
    });
    var revoke = pg.el("button", { text: armed[client.id] ? "Confirm revoke" : "Revoke", data: { action: "revoke" },
                                   attrs: { type: "button" } });
    revoke.addEventListener("click", async function () {
      if (!armed[client.id]) { armed[client.id] = true; revoke.textContent = "Confirm revoke"; return; }
      delete armed[client.id];
      await run(REVOKE, { id: client.id });
      refreshNow();
    });
    cell.append(rotate, document.createTextNode(" "), revoke);
    return cell;
  }

  function renderClients(data, throttledNow) {
    Object.keys(charts).forEach(function (id) { charts[id].destroy(); delete charts[id]; });
    clientsBody.replaceChildren.apply(clientsBody, data.clients.map(function (c) {
      var who = pg.el("td", { children: [
        pg.el("div", { text: c.name, data: { field: "name" } }),
        pg.el("div", { className: "city", text: c.environment + " · " + c.status + " · " + c.id }),
        throttledNow[c.id] ? pg.el("div", { className: "throttled", text: "throttled (429) in the last 5 min", data: { field: "throttled" } }) : null] });
      return pg.el("tr", { data: { clientId: c.id, status: c.status }, children: [
        who,
        pg.el("td", { children: [planSelect(c, data.plans), overridesForm(c)] }),
        usageCell(c.usage ? c.usage.requests : 0, c.quota.requests, "requests"),
        usageCell(c.usage ? c.usage.cost : 0, c.quota.cost, "cost"),
        chart(c),
        td(c.scopes.join(", ") + " · " + (c.facilities ? c.facilities.join(", ") : "all facilities")),
        keyButtons(c)] });
    }));
  }

  function render(data, force) {
    names = {};
    data.clients.forEach(function (c) { names[c.id] = c.name; });
    var throttledNow = {};
    data.throttleEvents.forEach(function (t) {
      if (Date.now() - Date.parse(t.at) < 60000 * 5) { throttledNow[t.clientId] = true; }
    });
    // someone is pointing at a row, choosing a plan or typing overrides: leave the rows be until they
    // are done (an action of theirs re-reads them at once, `force`)
    var focus = document.activeElement;
    var editing = !force && (clientsBody.matches(":hover") || (clientsBody.contains(focus) && focus.matches("select, input"))
                             || clientsBody.querySelector("details[open]") !== null);
    if (!editing) { renderClients(data, throttledNow); }
    throttlesBody.replaceChildren.apply(throttlesBody, data.throttleEvents.map(function (t) {
      return pg.el("tr", { data: { clientId: t.clientId }, children: [
        td(when(t.at)), td(names[t.clientId] || t.clientId), td(t.refusedBy), td(t.retryAfterSeconds + " s")] });
    }));
    auditBody.replaceChildren.apply(auditBody, data.auditLog.map(function (e) {
      return pg.el("tr", { children: [td(when(e.at)), td(e.actor), td(e.action), td(names[e.clientId] || e.clientId || "")] });
    }));
    if (!plansLoaded) { fillCreateForm(data.plans, data.scopes); plansLoaded = true; }
    updated.textContent = "read " + new Date().toLocaleTimeString();
  }

  function fillCreateForm(plans, scopes) {
    var select = document.querySelector("#create select[name=plan]");
    plans.forEach(function (p) {
      var option = pg.el("option", { text: p.name + " (" + p.requests + " req / " + p.windowSeconds + " s)" });
      option.value = p.name;
      option.selected = p.name === "standard";
      select.appendChild(option);
    });
    var box = document.getElementById("scopes");
    scopes.forEach(function (s) {
      var input = pg.el("input", { attrs: { type: "checkbox", name: "scope", value: s.name } });
      box.appendChild(pg.el("label", { attrs: { title: s.description }, children: [input, document.createTextNode(" " + s.name)] }));
    });
  }

  document.getElementById("create").addEventListener("submit", async function (event) {
    event.preventDefault();
    var f = event.target;
    var facilities = f.elements.facilities.value.split(",").map(function (s) { return s.trim(); }).filter(Boolean);
    var input = {
      name: f.elements.name.value.trim(), environment: f.elements.environment.value, plan: f.elements.plan.value,
      scopes: Array.prototype.map.call(f.querySelectorAll("input[name=scope]:checked"), function (i) { return i.value; }),
      facilities: facilities.length ? facilities : null,
    };
    var data = await run(CREATE, { input: input });
    if (data && data.createClient) { showKey(data.createClient); f.reset(); }
    refreshNow();
  });

  async function refresh(force) {
    var data = await run(CONSOLE, { minutes: HISTORY_MINUTES });
    if (data && data.clients) { showProblem(""); main.hidden = false; render(data, force === true); }
  }
  function refreshNow() { return refresh(true); }

  function start() {
    showProblem("");
    refresh();
    timer = window.setInterval(refresh, REFRESH_MS);  // called with no argument: not forced
  }

  document.getElementById("sign-out").addEventListener("click", function () { pg.signOut(); stop(""); });

  if (pg.credential() === null) { pg.signIn(form, "", start); } else { start(); }
})();
