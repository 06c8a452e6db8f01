"""The dashboard's pages, as a gateway and a relay serve them.

``/site`` is one site's dashboard (``?reservoir=<id>`` on a relay), ``/overview``
the cards of every site with the alerts across them, and ``/`` whichever is the
server's home: a gateway's is its own dashboard (it has one site), a relay's the
overview. The files are static (gateway/static/, no build step).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from aiohttp import web

STATIC_DIR = Path(__file__).parent.parent / "static"
PAGES = {"dashboard": "index.html", "overview": "overview.html"}


def page(name: str) -> web.FileResponse:
    return web.FileResponse(STATIC_DIR / PAGES[name], headers={"Cache-Control": "no-cache"})


def add_pages(
    app: web.Application, *, home: Literal["dashboard", "overview"], static: bool = True
) -> None:
    """``/overview`` and ``/site``; and ``/`` (``home``) and ``/static/`` unless the caller
    serves those itself (``static=False``: a gateway's server.py does)."""

    async def overview(request: web.Request) -> web.FileResponse:
        return page("overview")

    async def site(request: web.Request) -> web.FileResponse:
        return page("dashboard")

    async def index(request: web.Request) -> web.FileResponse:
        return page(home)

    app.router.add_get("/overview", overview)
    app.router.add_get("/site", site)
    if static:
        app.router.add_get("/", index)
        app.router.add_static("/static/", STATIC_DIR, append_version=False)
