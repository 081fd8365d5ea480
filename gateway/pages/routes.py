"""The pages' routes: /board and /admin (their HTML), /pages/static/… (scripts, styles, vendored pieces).

Plain routes, no Redis, no credentials: a page is the same for everyone, and asks for a key itself.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.staticfiles import StaticFiles

from gateway.pages.security import PAGE_HEADERS, STATIC_HEADERS

STATIC = Path(__file__).parent / "static"
#: the pages themselves, apart from the static files: only ever sent with `PAGE_HEADERS`
HTML = Path(__file__).parent / "html"
STATIC_PATH = "/pages/static"

#: Starlette's file serving (content types, ETag, 304, refusing paths outside the folder)
_static_files = StaticFiles(directory=STATIC)


async def static_file(request: Request) -> Response:
    """One file under static/, sent with `STATIC_HEADERS`; 404 for anything else."""
    response = await _static_files.get_response(request.path_params["path"], request.scope)
    response.headers.update(STATIC_HEADERS)
    return response


def page(filename: str) -> Route:
    async def endpoint(request: Request) -> Response:
        return FileResponse(HTML / filename, media_type="text/html; charset=utf-8", headers=PAGE_HEADERS)

    return Route(f"/{filename.removesuffix('.html')}", endpoint, methods=["GET"])


def page_routes() -> list[BaseRoute]:
    return [page("board.html"), page("admin.html"), Route(STATIC_PATH + "/{path:path}", static_file, methods=["GET"])]
