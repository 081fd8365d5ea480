"""The pages' files: every script and style sheet a page names is served from the package (nothing
from elsewhere, no inline script or style), and `pip install` brings every one of them along."""

from __future__ import annotations

import fnmatch
import re
import tomllib
from pathlib import Path

import pytest

from gateway.graphiql import graphiql_page
from gateway.pages.routes import HTML, STATIC
from gateway.pages.security import PAGE_HEADERS
from tests.support.bed import Bed

ROOT = Path(__file__).resolve().parents[2]
PAGES = {"board": (HTML / "board.html").read_text(), "admin": (HTML / "admin.html").read_text(), "graphql": graphiql_page()}
REFERENCE = re.compile(r'<(?:script|link)\b[^>]*?\b(?:src|href)="([^"]+)"')


@pytest.mark.parametrize("page", sorted(PAGES))
def test_a_page_names_only_its_own_files_and_has_no_inline_code(page: str) -> None:
    html = PAGES[page]
    references = REFERENCE.findall(html)
    assert references and all(ref.startswith("/pages/static/") for ref in references), references
    assert all((STATIC / ref.removeprefix("/pages/static/")).is_file() for ref in references)
    assert re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html) is None, "an inline script"
    assert "<style" not in html and re.search(r"<[^>]*\s(style|on[a-z]+)\s*=", html) is None, "inline style or handler"


def test_pip_install_brings_every_file_of_the_pages() -> None:
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["gateway"]
    files = [p.relative_to(ROOT / "gateway").as_posix() for p in (ROOT / "gateway" / "pages").rglob("*")
             if p.is_file() and p.suffix not in (".py", ".pyc")]
    unpackaged = [f for f in files if not any(fnmatch.fnmatch(f, g) for g in globs)]
    assert files and unpackaged == []


async def test_the_pages_are_served_with_the_policy_and_their_files_with_their_types(bed: Bed) -> None:
    for path in ("/board", "/admin"):
        response = await bed.http.get(f"{bed.url}{path}")
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
        assert {k: response.headers[k] for k in PAGE_HEADERS} == PAGE_HEADERS
    for ref in set(REFERENCE.findall(PAGES["board"]) + REFERENCE.findall(PAGES["admin"]) + REFERENCE.findall(PAGES["graphql"])):
        response = await bed.http.get(f"{bed.url}{ref}")
        assert response.status_code == 200, ref
        assert response.headers["x-content-type-options"] == "nosniff"
        expected = {".js": "javascript", ".css": "text/css", ".svg": "image/svg+xml"}[Path(ref).suffix]
        assert expected in response.headers["content-type"], (ref, response.headers["content-type"])
    assert (await bed.http.get(f"{bed.url}/pages/static/../routes.py")).status_code == 404
