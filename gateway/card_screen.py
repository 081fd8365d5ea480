"""The one card-number screen: everything a client sends is looked at before anything acts on it.

What a card number looks like is gateway/card_numbers.py's; where it is looked for is here:

- a GraphQL operation (over HTTP, WebSocket or SSE), before a persisted query is stored, the
  document parsed or a resolver runs (`refuse_card_numbers`): every token of the document
  (strings, names, numbers and comments: a document is stored by APQ and quoted by errors), every
  variable (values and keys, numbers too), `operationName` and `extensions` — except the APQ hash,
  which the gateway checks against the document itself;
- the URL of every HTTP request and WebSocket (path and query string, percent-decoded:
  `CardNumberURLs`), since paths reach logs and, through ids, vendors' URLs.

No header a client sends is forwarded to a vendor; the credentials headers are read only as keys.
A refusal is BAD_USER_INPUT with `extensions.reason` CARD_NUMBER_REFUSED and where it was found
(`argument` when it is an argument of the operation, else `where`), never the value; nothing has
happened when it is answered. A request with more digits in long runs than the screen may look
at is refused too (reason TOO_MANY_DIGITS): no argument takes that many.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, unquote

import orjson
from graphql import (
    ArgumentNode,
    DocumentNode,
    GraphQLError,
    ListValueNode,
    ObjectValueNode,
    Source,
    Token,
    TokenKind,
    ValueNode,
    VariableNode,
    parse,
)
from graphql.language import Lexer
from graphql.language.visitor import Visitor, visit
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.card_numbers import (
    MAX_SCREENED_DIGITS,
    Budget,
    ScreenExhausted,
    card_number_path,
    looks_like_card_number,
    may_hold_card,
)
from gateway.errors import ErrorCode, RequestError
from gateway.text_cache import TextCache

CARD_NUMBER_REFUSED = "CARD_NUMBER_REFUSED"
TOO_MANY_DIGITS = "TOO_MANY_DIGITS"
_TEXT_TOKENS = frozenset({TokenKind.NAME, TokenKind.STRING, TokenKind.BLOCK_STRING, TokenKind.INT, TokenKind.FLOAT,
                          TokenKind.COMMENT})


def refuse_card_numbers(payload: dict[str, Any]) -> None:
    """A RequestError when a GraphQL request's parameters hold something like a card number."""
    budget = Budget()
    try:
        query = payload.get("query")
        if isinstance(query, str) and _document_holds_card(query):
            raise refused(_argument_in_document(query) or {"where": "query"})
        variables = payload.get("variables")
        path = card_number_path(variables, "", budget) if isinstance(variables, dict) else None
        if path is not None:
            raise refused(_argument_of_variable(query, path))
        name = payload.get("operationName")
        if isinstance(name, str) and looks_like_card_number(name, budget):
            raise refused({"where": "operationName"})
        extensions = payload.get("extensions")
        if isinstance(extensions, dict):
            checked = {**extensions, "persistedQuery": _without_hash(extensions.get("persistedQuery"))}
            path = card_number_path(checked, "extensions", budget)
            if path is not None:
                raise refused({"where": path})
    except ScreenExhausted:
        raise RequestError(ErrorCode.BAD_USER_INPUT,
                           f"The request holds more than {MAX_SCREENED_DIGITS} digits in long runs of numbers; no "
                           "argument takes that many, and each would have to be screened for card numbers.",
                           extensions={"reason": TOO_MANY_DIGITS}) from None


def refused(where: dict[str, str]) -> RequestError:
    place = where.get("argument") or where.get("where")
    return RequestError(
        ErrorCode.BAD_USER_INPUT,
        f"`{place}` holds what looks like a card number (13 to 19 digits passing the Luhn check, however they "
        "are separated). Card numbers must never be sent to parkgate: pay with your payment processor's token. "
        "Nothing was done. (A random id or key trips this about once in 7,000: choose another.)",
        extensions={"reason": CARD_NUMBER_REFUSED, **where})


def _without_hash(persisted: Any) -> Any:
    """The APQ parameters without the hash: the gateway checks it is the document's SHA-256, and
    hex digests are made of just the digit runs the screen looks for."""
    if isinstance(persisted, dict):
        return {k: v for k, v in persisted.items() if k != "sha256Hash"}
    return persisted


_screened: TextCache[bool] = TextCache()  # hot documents are screened once


def _document_holds_card(query: str) -> bool:
    """Whether any token of the document (comments included) holds a card number. A document
    that does not lex is screened as plain text."""
    known = _screened.get(query)
    if known is None:
        known = _tokens_hold_card(query)
        _screened.put(query, known)
    return known


def _tokens_hold_card(query: str) -> bool:
    if "\\" not in query and not may_hold_card(query):
        return False  # no token can hold what the whole text does not (escapes aside: \n, \u…): no need to lex
    budget = Budget()
    try:
        lexer = Lexer(Source(query))
        token: Token | None = lexer.token
        while lexer.advance().kind is not TokenKind.EOF:
            pass
        while token is not None:  # the chain of tokens holds the comments too (advance() skips them)
            if token.kind in _TEXT_TOKENS and token.value and looks_like_card_number(token.value, budget):
                return True
            token = token.next
        return False
    except GraphQLError:
        return looks_like_card_number(query, Budget())


def _argument_in_document(query: str) -> dict[str, str] | None:
    """{"argument": path} of the first argument literal in the document holding a card number."""
    document = _parsed(query)
    if document is None:
        return None
    found: list[str] = []

    class Finder(Visitor):
        def enter_argument(self, node: ArgumentNode, *_: Any) -> Any:
            path = _literal_path(node.value, node.name.value)
            if path is not None:
                found.append(path)
                return Visitor.BREAK
            return None

    visit(document, Finder())
    return {"argument": found[0]} if found else None


def _literal_path(value: ValueNode, path: str) -> str | None:
    if isinstance(value, ObjectValueNode):
        for field in value.fields:
            found = _literal_path(field.value, f"{path}.{field.name.value}")
            if found is not None:
                return found
        return None
    if isinstance(value, ListValueNode):
        for index, item in enumerate(value.values):
            found = _literal_path(item, f"{path}.{index}")
            if found is not None:
                return found
        return None
    text = getattr(value, "value", None)
    return path if isinstance(text, str) and looks_like_card_number(text) else None


def _argument_of_variable(query: Any, path: str) -> dict[str, str]:
    """{"argument": …} naming the argument the variable at `path` is passed to, when the document
    says; else {"where": "variables.<path>"}."""
    name, _, rest = path.partition(".")
    document = _parsed(query) if isinstance(query, str) else None
    usage = _variable_usages(document).get(name) if document is not None else None
    if usage is None:
        return {"where": f"variables.{path}"}
    return {"argument": f"{usage}.{rest}" if rest else usage}


def _variable_usages(document: DocumentNode) -> dict[str, str]:
    """Variable name → the argument path of its first use (`input`, `input.paymentToken`…)."""
    usages: dict[str, str] = {}

    def walk(value: ValueNode, path: str) -> None:
        if isinstance(value, VariableNode):
            usages.setdefault(value.name.value, path)
        elif isinstance(value, ObjectValueNode):
            for field in value.fields:
                walk(field.value, f"{path}.{field.name.value}")
        elif isinstance(value, ListValueNode):
            for index, item in enumerate(value.values):
                walk(item, f"{path}.{index}")

    class Uses(Visitor):
        def enter_argument(self, node: ArgumentNode, *_: Any) -> None:
            walk(node.value, node.name.value)

    visit(document, Uses())
    return usages


def _parsed(query: str) -> DocumentNode | None:
    try:
        return parse(query, max_tokens=5000)
    except GraphQLError:
        return None


class CardNumberURLs:
    """ASGI middleware: refuse an HTTP request or WebSocket whose URL (path or query string,
    percent-decoded) holds something like a card number, before any route sees it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or not _url_holds_card(scope):
            await self.app(scope, receive, send)
            return
        error = refused({"where": "url"})
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 4400, "reason": "card number in the URL"})
            return
        body = orjson.dumps({"errors": error.formatted()})
        await send({"type": "http.response.start", "status": 400,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


#: a digit, or an escape that could decode to one: a URL with neither holds no card number, decoded or not
_DIGIT_OR_ESCAPE = re.compile(r"[\d%]")
_ASCII_DIGIT_OR_ESCAPE = re.compile(rb"[0-9%]")  # the query string's bytes (latin-1: its only \d are 0-9)


def _url_holds_card(scope: Scope) -> bool:
    path: str = scope.get("path", "")
    raw_query: bytes = scope.get("query_string", b"")
    if _DIGIT_OR_ESCAPE.search(path) is None and _ASCII_DIGIT_OR_ESCAPE.search(raw_query) is None:
        return False  # most URLs (`/graphql`): nothing to decode or screen
    budget = Budget()
    try:
        if looks_like_card_number(unquote(path), budget):
            return True
        query = raw_query.decode("latin-1")
        return any(looks_like_card_number(part, budget)
                   for pair in parse_qsl(query, keep_blank_values=True) for part in pair)
    except ScreenExhausted:
        return True  # more digits than any URL of the API holds: refused, without looking further
