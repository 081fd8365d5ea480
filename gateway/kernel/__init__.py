"""The GraphQL kernel: what both the app (gateway/) and the resolvers (resolvers/) stand on.

    context.py       `RequestContext` (a request's principal, loaders, runtime, clock) and `Info`
    permissions.py   `@requiresScopes`: `needs(...)` on a field, `enforce_scopes` installs the checks
    costs.py         `@cost` and `@listSize`: what a field costs (read by gateway/cost.py)
    caching.py       `@cacheControl(maxAge:)`: how long an answer may be reused (gateway/response_cache.py)
    local_time.py    a facility's local day, and the window holding "today" everywhere
    pii.py           personal data masked for clients without `pii:read`
    eager.py         coroutines started eagerly: an async resolver over data in hand costs no task
    direct_resolvers.py  `(self, info)` resolvers called without strawberry's per-call wrapping
    selection.py     the fields a query selects below the current one (a page's read-ahead)

Errors stay in gateway/errors.py. The kernel imports from gateway/ and adapters/ only, never
from resolvers/: layers run one way (tests/test_layers.py).
"""
