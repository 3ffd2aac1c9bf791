"""The browser annotation tool on top of ``quadrat serve`` (issue 14).

:func:`install_ui` adds it to the service's FastAPI application: the signed session
cookie, the ``/ui`` pages and JSON endpoints (:mod:`.routes`), the static files, and a
redirect from ``/`` to the UI. Pages and scripts ship in ``static/`` (no Node toolchain).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import FastAPI

    from quadrat.service.settings import ServiceSettings

#: Headers every /ui response carries: no framing, no sniffing, no third-party anything.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; "
        "script-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def install_ui(app: FastAPI, settings: ServiceSettings, store: Any | None = None) -> None:
    """Add the UI to ``app``: session middleware, pages, JSON endpoints, static files.

    ``store``: the application's open :class:`quadrat.store.project.Store` (None: open
    ``settings.database``). Call before the application starts serving.
    """
    from fastapi import Request, Response
    from fastapi.responses import RedirectResponse
    from fastapi.staticfiles import StaticFiles
    from starlette.middleware.sessions import SessionMiddleware

    from quadrat.service.ui.actions import router as actions_router
    from quadrat.service.ui.insight import router as insight_router
    from quadrat.service.ui.labelling import router as labelling_router
    from quadrat.service.ui.review import router as review_router
    from quadrat.service.ui.routes import STATIC, router
    from quadrat.service.ui.session import SESSION_COOKIE, SESSION_SECONDS, session_secret
    from quadrat.service.ui.state import UiState
    from quadrat.service.ui.training import Trainer

    if store is None:
        from quadrat.store.project import Store

        store = Store.open(settings.database)
    secret = session_secret(store)
    app.state.quadrat_ui = UiState(
        store=store, settings=settings, secret=secret, trainer=Trainer(store)
    )

    @app.middleware("http")
    async def ui_headers(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        if request.url.path.startswith("/ui"):
            for name, value in SECURITY_HEADERS.items():
                response.headers.setdefault(name, value)
            if request.url.path.startswith("/ui/api/") and not request.url.path.endswith(
                ("/file", "/patch", "/thumbnail")
            ):
                response.headers["Cache-Control"] = "no-store"
        return response

    # Added last, so it runs first: every handler (and ui_headers) sees request.session.
    app.add_middleware(
        SessionMiddleware,
        secret_key=secret,
        session_cookie=SESSION_COOKIE,
        max_age=SESSION_SECONDS,
        same_site="strict",
        https_only=False,  # loopback http by default; a TLS proxy in front adds Secure
    )
    app.include_router(router)
    app.include_router(review_router)
    app.include_router(actions_router)
    app.include_router(insight_router)
    app.include_router(labelling_router)
    app.mount("/ui/static", StaticFiles(directory=STATIC), name="ui-static")

    if not any(getattr(route, "path", None) == "/" for route in app.routes):

        @app.get("/", include_in_schema=False)
        def root() -> RedirectResponse:
            return RedirectResponse("/ui/", status_code=303)
