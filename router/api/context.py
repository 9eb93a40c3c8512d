"""What every handler works with: settings, the store, the bus and the audience limits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from herald.bus import Bus
from herald.settings import ApiSettings
from herald.store import Store
from proto.audience import AudienceLimits


@dataclass(frozen=True, slots=True)
class Context:
    """The API's collaborators, made once by ``router.api.main``."""

    settings: ApiSettings
    store: Store
    bus: Bus
    limits: AudienceLimits


def context(request: Request) -> Context:
    """The context of the app that serves ``request``."""
    return request.app.state.context


#: A handler parameter that receives the ``Context``.
Ctx = Annotated[Context, Depends(context)]
