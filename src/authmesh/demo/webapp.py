"""The demo's **web app**: where alice signs in through the browser.

A server-side FastAPI app and a confidential OpenID Connect client (the
"backend for frontend" shape): tokens stay on the server, the browser holds
only an HttpOnly cookie naming its session here, and every page works without
JavaScript. A small script asks once every half second whether the session
still stands, so when an admin blocks alice the orders service refuses her
token, and the page signs her out within about a second.
Run by ``authmesh demo`` as ``python -m authmesh.demo.webapp``.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape

from authmesh.demo.oidc_client import LoginStart, OIDCClient, SignInFailed, Tokens
from authmesh.demo.service_common import demo_facts, host_port
from authmesh.jose import Key

__all__ = ["WebApp", "create_app", "main"]

COOKIE = "demo_webapp_session"
SCOPE = "openid profile orders:read orders:write catalog:read"
_STATIC = Path(__file__).parent / "static"
_CSP = "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self' {auth}"
_PRODUCTS = "{ products { id name price } }"


@dataclass
class Visit:
    """One browser's session in the web app."""

    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    pending: LoginStart | None = None
    tokens: Tokens | None = None
    notice: str | None = None


@dataclass
class WebApp:
    """The web app's parts: its OIDC client, the services it calls, its sessions."""

    oidc: OIDCClient
    orders_url: str
    catalog_url: str
    base_url: str
    visits: dict[str, Visit] = field(default_factory=dict)
    http: httpx.AsyncClient = field(default_factory=lambda: httpx.AsyncClient(timeout=5.0))

    async def call(self, visit: Visit, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """Call a service with the user's token; refresh once on a 401; sign out if that fails."""
        assert visit.tokens is not None
        for attempt in (1, 2):
            headers = self.oidc.authorization(visit.tokens, method, url)
            response = await self.http.request(method, url, headers=headers, **kwargs)
            if response.status_code != 401 or attempt == 2:
                break
            if not await self.oidc.refresh(visit.tokens):
                break
        if response.status_code == 401:
            visit.tokens = None
            visit.notice = "You were signed out: your session has ended."
        return response


def _same(presented: str, expected: str) -> bool:
    """Constant-time comparison that also takes non-ASCII input (an attacker's)."""
    return secrets.compare_digest(presented.encode("utf-8", "surrogatepass"), expected.encode())


def _templates() -> Environment:
    return Environment(
        loader=PackageLoader("authmesh.demo", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def create_app(web: WebApp) -> FastAPI:
    """The web app: ``/``, ``/login``, ``/callback``, ``/order``, ``/logout``, ``/api/session``."""
    templates = _templates()
    csp = _CSP.format(auth=web.oidc.issuer)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await web.http.aclose()
            await web.oidc.aclose()

    app = FastAPI(title="authmesh demo: web app", lifespan=lifespan, docs_url=None, redoc_url=None)

    def visit_of(request: Request) -> tuple[str, Visit]:
        sid = request.cookies.get(COOKIE, "")
        if sid not in web.visits:
            sid = secrets.token_urlsafe(24)
            web.visits[sid] = Visit()
        return sid, web.visits[sid]

    def with_cookie(response: Response, sid: str) -> Response:
        response.set_cookie(COOKIE, sid, httponly=True, samesite="lax", path="/")
        response.headers["Content-Security-Policy"] = csp
        response.headers["Cache-Control"] = "no-store"
        return response

    @app.get("/", response_class=HTMLResponse)
    async def home(request: Request) -> Response:
        sid, visit = visit_of(request)
        context: dict[str, Any] = {
            "visit": visit,
            "orders": [],
            "products": [],
            "account_url": f"{web.oidc.issuer}/account",
        }
        if visit.tokens is not None:
            orders = await web.call(visit, "GET", f"{web.orders_url}/orders")
            if orders.status_code == 200:
                context["orders"] = orders.json()
        if visit.tokens is not None:
            catalog = await web.call(
                visit, "POST", f"{web.catalog_url}/graphql", json={"query": _PRODUCTS}
            )
            if catalog.status_code == 200:
                context["products"] = (catalog.json().get("data") or {}).get("products", [])
        html = templates.get_template("webapp.html").render(**context)
        visit.notice = None
        return with_cookie(HTMLResponse(html), sid)

    @app.get("/login")
    async def login(request: Request) -> Response:
        sid, visit = visit_of(request)
        visit.pending = await web.oidc.start(SCOPE)
        return with_cookie(RedirectResponse(visit.pending.url, 303), sid)

    @app.get("/callback")
    async def callback(request: Request) -> Response:
        sid, visit = visit_of(request)
        params = request.query_params
        pending, visit.pending = visit.pending, None
        if params.get("error"):
            visit.notice = (
                f"Sign-in did not finish: {params.get('error_description', params['error'])}"
            )
        elif pending is None or not params.get("code"):
            visit.notice = "Sign-in did not finish: start again."
        else:
            try:
                visit.tokens = await web.oidc.finish(
                    pending, code=params["code"], state=params.get("state", "")
                )
            except SignInFailed as exc:
                visit.notice = f"Sign-in failed: {exc}"
        return with_cookie(RedirectResponse("/", 303), sid)

    @app.post("/order")
    async def order(request: Request, product_id: str = Form(), csrf: str = Form()) -> Response:
        sid, visit = visit_of(request)
        if visit.tokens is not None and _same(csrf, visit.csrf):
            placed = await web.call(
                visit,
                "POST",
                f"{web.orders_url}/orders",
                json={"product_id": product_id, "quantity": 1},
            )
            if placed.status_code != 201 and visit.tokens is not None:
                visit.notice = f"The order failed ({placed.status_code})."
        return with_cookie(RedirectResponse("/", 303), sid)

    @app.post("/logout")
    async def logout(request: Request, csrf: str = Form()) -> Response:
        sid, visit = visit_of(request)
        if visit.tokens is None or not _same(csrf, visit.csrf):
            return with_cookie(RedirectResponse("/", 303), sid)
        tokens, visit.tokens = visit.tokens, None
        return with_cookie(
            RedirectResponse(await web.oidc.logout_url(tokens, web.base_url + "/"), 303), sid
        )

    @app.get("/api/session")
    async def session_state(request: Request) -> JSONResponse:
        """Whether this browser is still signed in (the services still accept its token)."""
        sid = request.cookies.get(COOKIE, "")
        visit = web.visits.get(sid)
        if visit is None or visit.tokens is None:
            return JSONResponse({"signed_in": False}, headers={"Cache-Control": "no-store"})
        await web.call(visit, "GET", f"{web.orders_url}/orders")
        return JSONResponse(
            {"signed_in": visit.tokens is not None}, headers={"Cache-Control": "no-store"}
        )

    @app.get("/static/{name}")
    async def static(name: str) -> Response:
        types = {"webapp.js": "text/javascript", "webapp.css": "text/css"}
        if name not in types:
            return Response(status_code=404)
        return Response((_STATIC / name).read_bytes(), media_type=types[name])

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return app


def main() -> None:
    """Serve the web app on the port of ``WEBAPP_URL`` from the demo's facts."""
    import uvicorn

    facts = demo_facts()
    base = facts["WEBAPP_URL"]
    oidc = OIDCClient(
        issuer=facts["AUTHMESH_ISSUER"],
        client_id=facts["WEBAPP_CLIENT_ID"],
        client_secret=facts["WEBAPP_CLIENT_SECRET"],
        redirect_uri=f"{base}/callback",
        dpop_key=Key.generate("EdDSA"),
    )
    web = WebApp(oidc, facts["ORDERS_URL"], facts["CATALOG_URL"], base)
    host, port = host_port(base)
    uvicorn.run(create_app(web), host=host, port=port, log_level="warning")


if __name__ == "__main__":
    main()
