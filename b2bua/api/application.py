"""The FastAPI application: one router per concern, every route through the domain (never the store).
Handlers are async on purpose: they touch call state, which lives on the event loop thread."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from b2bua import __version__
from b2bua.api import calls, desks, events, operators, presence, profiles, sessions, users, voicemail
from b2bua.api.context import ApiContext, document_problems_as_sent, install_problem_handlers


class _Api(FastAPI):
    def openapi(self) -> dict[str, Any]:
        fresh = self.openapi_schema is None
        schema = super().openapi()
        if fresh:
            document_problems_as_sent(schema)
        return schema


def create_app(context: ApiContext) -> FastAPI:
    app = _Api(title="b2bua", version=__version__,
               description="SIP B2BUA for telecommuter bridging: management, callback calls, live events.")
    app.state.context = context
    install_problem_handlers(app)
    for module in (operators, users, sessions, desks, voicemail, calls, events, profiles, presence):
        app.include_router(module.router)
    return app
