"""The GraphiQL page served at GET /graphql to browsers (turn it off with server.graphiql: false).

Its code is the package's own copy of GraphiQL 3 (gateway/pages/static/vendor/): nothing is loaded
from elsewhere. Subscriptions run in it over graphql-transport-ws at the same /graphql, the
Headers tab's credentials sent as the `connection_init` payload.
"""

from __future__ import annotations

import html

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

# No inline script or style (the page is sent with gateway/pages/security.py's policy): the
# query and headers ride in data- attributes, escaped, and gateway/pages/static/graphiql.js reads them.
PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>parkgate · GraphiQL</title>
  <link rel="icon" href="/pages/static/favicon.svg" type="image/svg+xml">
  <link rel="stylesheet" href="/pages/static/vendor/graphiql-3.9.0/graphiql.min.css">
  <link rel="stylesheet" href="/pages/static/graphiql.css">
</head>
<body>
  <div id="graphiql" data-endpoint="/graphql" data-query="{query}" data-headers="{headers}">Loading GraphiQL…</div>
  <script src="/pages/static/vendor/react-18.3.1/react.production.min.js"></script>
  <script src="/pages/static/vendor/react-dom-18.3.1/react-dom.production.min.js"></script>
  <script src="/pages/static/vendor/graphiql-3.9.0/graphiql.min.js"></script>
  <script src="/pages/static/graphiql.js"></script>
</body>
</html>
"""


DEFAULT_HEADERS = '{"Authorization": "Bearer <your API key or access token>"}'


def graphiql_page(default_headers: str = DEFAULT_HEADERS) -> str:
    """The page, with the first query and the headers (e.g. where a key goes) filled in."""
    return PAGE.format(query=html.escape(FIRST_QUERY, quote=True), headers=html.escape(default_headers, quote=True))
