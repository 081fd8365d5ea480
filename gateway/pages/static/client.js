// What every parkgate page shares: the credential (kept in this tab's sessionStorage, never in a URL),
// GraphQL over HTTP, subscriptions over graphql-transport-ws, and building DOM from data as text.
(function () {
  "use strict";
  var STORAGE_KEY = "parkgate.credential";

  function credential() { return window.sessionStorage.getItem(STORAGE_KEY); }
  function authorization() { return "Bearer " + credential(); } // an API key and an OAuth token alike

  // POST one operation; resolves to {status, body, retryAfter} (body null when it was not JSON).
  async function graphql(query, variables) {
    var response = await window.fetch("/graphql", {
      method: "POST",
      cache: "no-store",
      headers: { "content-type": "application/json", "accept": "application/graphql-response+json, application/json",
                 "authorization": authorization() },
      body: JSON.stringify({ query: query, variables: variables || {} }),
    });
    var body = null;
    try { body = await response.json(); } catch (e) { body = null; }
    return { status: response.status, body: body, retryAfter: response.headers.get("retry-after") };
  }

  // One WebSocket for the page's subscriptions, reconnecting by itself (a restarted gateway, a lost
  // network) with a backoff capped at 2 s; `onState` hears "live", "reconnecting" and "refused".
  function subscriptions(onState) {
    var socketScheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    var refused = false;
    var client = window.graphqlWs.createClient({
      url: socketScheme + "//" + window.location.host + "/graphql",
      connectionParams: function () { return { Authorization: authorization() }; },
      lazy: false,
      keepAlive: 10000,
      retryAttempts: Infinity,
      retryWait: function (retries) {
        return new Promise(function (resolve) { window.setTimeout(resolve, Math.min(2000, 250 * Math.pow(2, retries))); });
      },
      // 4403: the credential was refused or revoked; asking again with it will not help
      shouldRetry: function (event) { refused = Boolean(event && event.code === 4403); return !refused; },
      on: {
        connected: function () { onState("live"); },
        closed: function () { onState(refused ? "refused" : "reconnecting"); },
      },
    });
    return client;
  }

  // An element with text children only: strings become text nodes, never markup.
  function el(tag, options) {
    var node = document.createElement(tag);
    var o = options || {};
    if (o.className) { node.className = o.className; }
    if (o.text !== undefined && o.text !== null) { node.textContent = String(o.text); }
    if (o.data) { Object.keys(o.data).forEach(function (k) { node.dataset[k] = o.data[k]; }); }
    if (o.attrs) { Object.keys(o.attrs).forEach(function (k) { node.setAttribute(k, o.attrs[k]); }); }
    (o.children || []).forEach(function (child) { if (child) { node.appendChild(child); } });
    return node;
  }

  // The sign-in form: shown without a credential, or after the gateway refused it.
  function signIn(form, message, onSignedIn) {
    var input = form.querySelector("input[name=credential]");
    var notice = form.querySelector("[data-role=notice]");
    form.hidden = credential() !== null && !message;
    notice.textContent = message || "";
    form.onsubmit = function (event) {
      event.preventDefault();
      var value = input.value.trim();
      if (!value) { return; }
      window.sessionStorage.setItem(STORAGE_KEY, value);
      input.value = "";
      form.hidden = true;
      onSignedIn();
    };
  }

  function signOut() { window.sessionStorage.removeItem(STORAGE_KEY); }

  function errorCode(body) {
    var e = body && body.errors && body.errors[0];
    return e && e.extensions ? e.extensions.code : null;
  }

  function age(seconds) {
    if (seconds === null || seconds === undefined) { return "—"; }
    if (seconds < 90) { return seconds + " s ago"; }
    if (seconds < 5400) { return Math.round(seconds / 60) + " min ago"; }
    return Math.round(seconds / 3600) + " h ago";
  }

  window.parkgate = { credential: credential, graphql: graphql, subscriptions: subscriptions, el: el, signIn: signIn,
                      signOut: signOut, errorCode: errorCode, age: age };
})();
