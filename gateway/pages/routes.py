"""The pages' routes: /board and /admin (their HTML), /pages/static/… (scripts, styles, vendored pieces)."""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Message, Receive, Scope, Send

from gateway.pages.security import PAGE_HEADERS, STATIC_HEADERS

STATIC = Path(__file__).parent / "static"
#: the pages themselves, apart from the static files: only ever sent with `PAGE_HEADERS`
HTML = Path(__file__).parent / "html"
STATIC_PATH = "/pages/static"


class StaticWithHeaders:
    """Starlette's StaticFiles, each answer sent with `STATIC_HEADERS`."""

    def __init__(self, directory: Path) -> None:
        self.files = StaticFiles(directory=directory)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message["headers"], *((k.encode(), v.encode()) for k, v in STATIC_HEADERS.items())]
            await send(message)

        await self.files(scope, receive, with_headers)


def page(filename: str) -> Route:
    async def endpoint(request: Request) -> Response:
        return FileResponse(HTML / filename, media_type="text/html; charset=utf-8", headers=PAGE_HEADERS)

    return Route(f"/{filename.removesuffix('.html')}", endpoint, methods=["GET"])


def page_routes() -> list[BaseRoute]:
    return [page("board.html"), page("admin.html"), Mount(STATIC_PATH, app=StaticWithHeaders(STATIC))]
