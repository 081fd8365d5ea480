"""One HTTP exchange of the GraphQL endpoint, on the ASGI messages themselves.

What the endpoint reads of a request (`Incoming`: the method, the few headers it uses, the query
string, the body) is taken from the ASGI scope in one pass over its headers, and an answer
(`Outgoing`) is sent as the two ASGI messages with its headers encoded once. Starlette's
`Request` and `Response` objects did the same with more steps (a headers mapping built per
request, a body stream, a header list rebuilt and searched): on a response-cache hit they were
a fifth of the endpoint's time. The bytes on the wire are Starlette's: lower-case header names,
`content-length` (not for 304), `content-type` as given.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope, Send

#: header names as sent (lower case, encoded), for the names the endpoint uses; others are encoded as met
_NAMES: dict[str, bytes] = {}


def _name(header: str) -> bytes:
    encoded = _NAMES.get(header)
    if encoded is None:
        encoded = header.lower().encode("latin-1")
        if len(_NAMES) < 256:  # the endpoint's own few names; a bound all the same
            _NAMES[header] = encoded
    return encoded


class BodyTooLarge(Exception):
    """The body went past the endpoint's limit while it was read."""


#: the request headers the endpoint reads, by the `Incoming` attribute each one fills
_READ_HEADERS = {b"accept": "accept", b"content-type": "content_type", b"content-length": "content_length",
                 b"authorization": "authorization", b"x-api-key": "api_key", b"if-none-match": "if_none_match"}


@dataclass(slots=True)
class Incoming:
    """The parts of a request the endpoint reads (each header's first occurrence, as Starlette's `get`)."""

    method: str
    query_string: bytes = b""
    accept: str = ""
    content_type: str = ""
    content_length: str | None = None
    authorization: str | None = None
    api_key: str | None = None
    if_none_match: str = ""

    @classmethod
    def of(cls, scope: Scope) -> Incoming:
        incoming = cls(scope["method"], scope.get("query_string", b""))
        for name, value in reversed(scope["headers"]):  # backwards: the first occurrence is written last
            attribute = _READ_HEADERS.get(name)
            if attribute is not None:
                setattr(incoming, attribute, value.decode("latin-1"))
        return incoming


async def read_body(receive: Receive, limit: int) -> bytes:
    """The whole body; `BodyTooLarge` as soon as it is past `limit` bytes (the rest is never read)."""
    message = await receive()
    if message["type"] == "http.request" and not message.get("more_body", False):
        body = message.get("body", b"")  # the usual case: the whole body in one message
        if len(body) > limit:
            raise BodyTooLarge
        return body
    buffer = bytearray()
    while True:
        if message["type"] == "http.disconnect":
            raise ClientDisconnect
        buffer += message.get("body", b"")
        if len(buffer) > limit:
            raise BodyTooLarge
        if not message.get("more_body", False):
            return bytes(buffer)
        message = await receive()


@dataclass(slots=True)
class Outgoing:
    """An answer: status, body, `content_type` (None: none, as for 304) and the other headers."""

    status: int
    body: bytes
    content_type: str | None
    headers: dict[str, str] = field(default_factory=dict)

    async def send(self, send: Send) -> None:
        raw = [(_name(k), v.encode("latin-1")) for k, v in self.headers.items()]
        if self.status >= 200 and self.status not in (204, 304):
            raw.append((b"content-length", str(len(self.body)).encode("latin-1")))
        if self.content_type is not None:
            raw.append((b"content-type", self.content_type.encode("latin-1")))
        await send({"type": "http.response.start", "status": self.status, "headers": raw})
        await send({"type": "http.response.body", "body": self.body})
