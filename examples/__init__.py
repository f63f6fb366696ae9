"""Runnable example sites for consentmw: Starlette, FastAPI and Django (ASGI).

Run one with ``python -m consentmw demo --site starlette|fastapi|django``, or with uvicorn from
the repository root, e.g. ``uvicorn examples.starlette_site.app:app``.
"""
