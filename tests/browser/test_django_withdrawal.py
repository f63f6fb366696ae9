"""Withdrawal on Django, as a visitor's Chromium lives it: the example Django site under gunicorn,
visited on www.shop.localhost (Chromium sends every *.localhost name to 127.0.0.1). gtag.js keeps
_ga on the registrable domain and a host-only copy can exist beside it; withdrawing analytics must
remove both from the browser, though Django keeps one cookie per name."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import SECRET
from tests.demo_support import app_server, free_port

pytestmark = [pytest.mark.browser, pytest.mark.slow]

HOST = "www.shop.localhost"


def post_choice(page, body: str) -> int:
    return page.evaluate(
        "(body) => fetch('/_consent', {method: 'POST', headers: {'content-type': 'application/json'}, body}).then((r) => r.status)", body
    )


def test_withdrawing_analytics_on_django_removes_every_copy_of_ga_from_the_browser(chromium, tmp_path: Path) -> None:
    port = free_port()
    env = {"CONSENTMW_SECRET_KEY": SECRET, "CONSENTMW_STORE": "memory://", "DJANGO_ALLOWED_HOSTS": f"127.0.0.1,{HOST}"}
    with app_server("gunicorn", "examples.django_site.wsgi:application", port, tmp_path / "gunicorn.log", env):
        context = chromium.new_context(base_url=f"http://{HOST}:{port}")
        try:
            page = context.new_page()
            page.route("**/*", lambda route: route.continue_() if HOST in route.request.url else route.abort())
            page.goto("/", wait_until="load")
            assert post_choice(page, '{"accept": "all"}') == 200
            page.evaluate("() => { document.cookie = '_ga=GA1.1.1.1; domain=shop.localhost; path=/'; document.cookie = '_ga=GA1.1.2.2; path=/' }")
            ga = sorted(c["domain"] for c in context.cookies() if c["name"] == "_ga")
            assert ga == [".shop.localhost", HOST]  # the domain copy and the host-only one
            assert post_choice(page, '{"accept": "necessary"}') == 200
            assert [c for c in context.cookies() if c["name"] == "_ga"] == []
        finally:
            context.close()
