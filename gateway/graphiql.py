"""The GraphiQL page served at GET /graphql to browsers (turn it off with server.graphiql: false)."""

from __future__ import annotations

import json

FIRST_QUERY = """# Welcome to parkgate: one GraphQL API over every system of the operation.
# Every request needs a key: put yours in the Headers tab below as
#   {"Authorization": "Bearer pk_test_..."}
# (the sandbox writes its demo clients' keys with `parkgate sandbox --keys-file keys.json`).
# Then run this to see every facility, how full it is (counted at the gates and
# sensed per bay), and what it costs.
query Facilities {
  facilities(first: 10) {
    totalCount
    edges {
      node {
        id
        name
        city
        timeZone
        occupancy {
          free
          percentOccupied
          status
          freshness
          served
          counted { occupied reportedFree consistency observedAt }
          sensed { occupied observedAt }
          discrepancy
        }
        rates { currency lines { kind description amount { amount currency } } }
        sources { id kind status }
      }
    }
  }
}
"""

PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>parkgate · GraphiQL</title>
  <style>body {{ margin: 0; height: 100vh; }} #graphiql {{ height: 100vh; }}</style>
  <link rel="stylesheet" href="https://unpkg.com/graphiql@3/graphiql.min.css">
</head>
<body>
  <div id="graphiql">Loading GraphiQL…</div>
  <script src="https://unpkg.com/react@18/umd/react.production.min.js" crossorigin></script>
  <script src="https://unpkg.com/react-dom@18/umd/react-dom.production.min.js" crossorigin></script>
  <script src="https://unpkg.com/graphiql@3/graphiql.min.js" crossorigin></script>
  <script>
    const fetcher = GraphiQL.createFetcher({{ url: window.location.pathname }});
    ReactDOM.createRoot(document.getElementById("graphiql")).render(
      React.createElement(GraphiQL, {{
        fetcher,
        defaultQuery: {query},
        defaultHeaders: {headers},
      }})
    );
  </script>
</body>
</html>
"""


DEFAULT_HEADERS = '{"Authorization": "Bearer <your API key or access token>"}'


def graphiql_page(default_headers: str = DEFAULT_HEADERS) -> str:
    """The page, with the first query and the headers (e.g. where a key goes) filled in."""
    return PAGE.format(query=json.dumps(FIRST_QUERY), headers=json.dumps(default_headers))
