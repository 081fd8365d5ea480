"""The headers of every page: what a page may load, run and connect to.

No inline script and no inline style: every script and style sheet is a file under /pages/static/,
so an injected `<script>` or `style=` in a vendor's data has nothing to run. `connect-src 'self'`
covers the page's own origin over HTTP and WebSocket (CSP Level 3), where /graphql and its
subscriptions are; nothing else is reachable. The page cannot be framed (clickjacking) nor send
its address on (it holds no secret, but says which page an admin had open).
"""

from __future__ import annotations

DIRECTIVES = (
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",  # GraphiQL's style sheet draws icons as data: URIs
    "font-src 'self' data:",
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",  # the sign-in form is handled by script, never submitted
    "frame-ancestors 'none'",
)
CONTENT_SECURITY_POLICY = "; ".join(DIRECTIVES)

PAGE_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cache-control": "no-store",
}

#: static files: versioned by the package, so a browser may keep them for a while
STATIC_HEADERS = {
    "x-content-type-options": "nosniff",
    "cache-control": "public, max-age=3600",
}
