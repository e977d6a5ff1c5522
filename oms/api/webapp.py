"""The trading web app's built files (``web/dist``), served by ``oms serve`` at ``/``.

Served by a middleware rather than routes: the router holds exactly the API that the OpenAPI
document lists (a test compares the two), and a file is looked up only for a GET that no route
matched and that is not under ``/api`` or ``/ws`` (those keep their problem+json 404).

Cache headers follow Vite's output: files under ``assets/`` carry a content hash in their name,
so they never change and are cached for a year (``immutable``); ``index.html`` and the other
unhashed files are revalidated on every load (``no-cache``), so a new build is picked up at once.
Every file carries a Content-Security-Policy that allows only this origin: the bundle needs no
inline script or style attribute, and the app talks only to its own ``/api`` and ``/ws``.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler, Middleware

from oms.api.problems import Problem
from oms.config import Settings

CHECKOUT = Path(__file__).resolve().parents[2]  # the directory holding oms/ and web/
DEFAULT_DIST = Path("web") / "dist"
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
# 'self' in connect-src covers ws:// and wss:// to this host (CSP level 3).
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
_SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
_API_PREFIXES = ("/api/", "/ws/")


def dist_dir(settings: Settings) -> Path:
    """Where the built files are: ``web_dist_dir``, relative paths taken from the checkout."""
    configured = Path(settings.web_dist_dir) if settings.web_dist_dir else DEFAULT_DIST
    return (CHECKOUT / configured).resolve()


class WebAssets:
    """The files of one build directory, looked up by URL path (never outside the directory)."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def file_for(self, path: str) -> Path | None:
        """The file a GET of ``path`` serves, or None (then the request is the router's)."""
        if path.startswith(_API_PREFIXES) or path in ("/api", "/ws"):
            return None
        name = "index.html" if path == "/" else path.lstrip("/")
        candidate = (self.root / name).resolve()
        if not candidate.is_relative_to(self.root) or not candidate.is_file():
            return None
        return candidate

    def response(self, file: Path) -> web.FileResponse:
        """The file with its cache and security headers."""
        hashed = file.parent == self.root / "assets"
        headers = {**_SECURITY_HEADERS, hdrs.CACHE_CONTROL: IMMUTABLE if hashed else REVALIDATE}
        return web.FileResponse(file, headers=headers)


def not_built(root: Path) -> Problem:
    """404 for ``/`` when no build is there: say how to make one."""
    return Problem(
        404,
        "NOT_FOUND",
        "Not found",
        f"the web app is not built ({root / 'index.html'} is missing): run `make setup`",
    )


def web_app_middleware(settings: Settings) -> Middleware:
    """A middleware serving the build for GETs that no route matched."""
    assets = WebAssets(dist_dir(settings))

    @web.middleware
    async def serve_web_app(request: web.Request, handler: Handler) -> web.StreamResponse:
        unmatched = request.match_info.http_exception is not None
        if not unmatched or request.method not in (hdrs.METH_GET, hdrs.METH_HEAD):
            return await handler(request)
        file = assets.file_for(request.path)
        if file is not None:
            return assets.response(file)
        if request.path == "/":
            raise not_built(assets.root)
        return await handler(request)

    return serve_web_app
