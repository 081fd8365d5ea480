"""The pages a browser opens: the live occupancy board (/board), the admin console (/admin) and
GraphiQL (/graphql, gateway/graphiql.py), served from this package with no request leaving it.

    routes.py     the routes: each page's HTML, and its static files under /pages/static/
    security.py   the headers every page is sent with: a strict Content-Security-Policy and friends
    static/       HTML, JavaScript and CSS of our own (no inline script anywhere) and, in vendor/,
                  the pinned front-end pieces they use (vendor/README.md says which and how fetched)

The pages are clients like any other: they call /graphql with the key or token the person types
in (kept in the tab's sessionStorage, never in a URL), subscribe over graphql-transport-ws, and
render what comes back as text (`textContent`), never as HTML.
"""
