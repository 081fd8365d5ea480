// GraphiQL over parkgate: queries and mutations over HTTP, subscriptions over graphql-transport-ws
// at the same path. The first query and headers come from the page's data- attributes.
(function () {
  "use strict";
  var root = document.getElementById("graphiql");
  var endpoint = root.dataset.endpoint;
  var socketScheme = window.location.protocol === "https:" ? "wss:" : "ws:";
  var fetcher = GraphiQL.createFetcher({
    url: endpoint,
    // the Headers tab is sent as the connection_init payload: {"Authorization": "Bearer …"}
    subscriptionUrl: socketScheme + "//" + window.location.host + endpoint,
  });
  root.textContent = "";
  ReactDOM.createRoot(root).render(React.createElement(GraphiQL, {
    fetcher: fetcher,
    defaultQuery: root.dataset.query,
    defaultHeaders: root.dataset.headers,
    shouldPersistHeaders: false, // a key typed in stays in this tab, never in localStorage
  }));
})();
