"""The FastAPI example: the same kind of site, with the consent as a FastAPI dependency.

    CONSENTMW_SECRET_KEY=... uvicorn examples.fastapi_site.app:app
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import HTMLResponse

from consentmw import Consent, ConsentMiddleware
from consentmw.core.store import ConsentStore

from ..common import Pages, chosen_theme, secret_key, site_policy, store_url, theme_cookie

POLICY = site_policy("kakao-enterprise")
PAGES = Pages(title="consentmw 예제 · FastAPI", lang="ko", policy=POLICY)


def visitor_consent(request: Request) -> Consent:
    return request.scope["consent"]


VisitorConsent = Annotated[Consent, Depends(visitor_consent)]
router = APIRouter()


@router.get("/", response_class=HTMLResponse)
async def home(request: Request, consent: VisitorConsent) -> str:
    return PAGES.home(consent, theme=chosen_theme(request.cookies))


@router.get("/preferences", response_class=HTMLResponse)
async def preferences(request: Request, consent: VisitorConsent, theme: str | None = None) -> HTMLResponse:
    chosen_one = chosen_theme(request.cookies, theme)
    chosen = theme == chosen_one
    response = HTMLResponse(PAGES.preferences(consent, theme=chosen_one, chosen=chosen))
    if chosen:
        # Set whatever the visitor chose; consentmw drops it on the way out unless its category is allowed.
        response.set_cookie(**theme_cookie(chosen_one))
    return response


@router.get("/api/consent")
async def consent_summary(consent: VisitorConsent) -> dict[str, object]:
    """What an API handler sees: the same consent as the pages, for code that must branch on it."""
    return {"decided": consent.decided, "choices": consent.choices, "gpc": consent.gpc}


def create_app(*, secret_key: str, store: str | ConsentStore | None = None) -> FastAPI:
    app = FastAPI(title="consentmw example", docs_url=None, redoc_url=None, openapi_url=None)
    app.include_router(router)
    app.add_middleware(ConsentMiddleware, secret_key=secret_key, policy=POLICY, store=store)
    return app


app = create_app(secret_key=secret_key(), store=store_url())
