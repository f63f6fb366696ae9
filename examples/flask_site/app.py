"""The Flask example: the same small site with GA4 and Naver Analytics, on WSGI.

    CONSENTMW_SECRET_KEY=... gunicorn examples.flask_site.app:app
    CONSENTMW_SECRET_KEY=... flask --app examples.flask_site.app run
"""

from __future__ import annotations

from flask import Flask, Response, request

from consentmw.core.store import ConsentStore
from consentmw.wsgi import ConsentMiddleware

from ..common import Pages, chosen_theme, secret_key, site_policy, store_url, theme_cookie

POLICY = site_policy("kakao-enterprise")
PAGES = Pages(title="consentmw 예제 · Flask", lang="ko", policy=POLICY)


def create_app(*, secret_key: str, store: str | ConsentStore | None = None) -> Flask:
    app = Flask(__name__)

    @app.get("/")
    def home() -> str:
        return PAGES.home(request.environ["consentmw.consent"], theme=chosen_theme(request.cookies))

    @app.get("/preferences")
    def preferences() -> Response:
        requested = request.args.get("theme")
        theme = chosen_theme(request.cookies, requested)
        chosen = requested == theme
        response = Response(PAGES.preferences(request.environ["consentmw.consent"], theme=theme, chosen=chosen))
        if chosen:
            # Set whatever the visitor chose; consentmw drops it on the way out unless its category is allowed.
            response.set_cookie(**theme_cookie(theme))
        return response

    # The one line a Flask site adds: everything else is the site's own.
    app.wsgi_app = ConsentMiddleware(app.wsgi_app, secret_key=secret_key, policy=POLICY, store=store)  # type: ignore[method-assign]
    return app


app = create_app(secret_key=secret_key(), store=store_url())
