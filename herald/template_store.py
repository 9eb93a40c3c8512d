"""The template store interface: each app's push templates (``proto.templates``).

``herald.redis_templates.RedisTemplates`` implements it on Redis. Templates are per app: every
call names the app, and no call reaches another app's templates.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum
from typing import Protocol

from proto.templates import Template


class Created(Enum):
    """What ``add_template`` did."""

    CREATED = "created"
    #: The app has a template of that id; nothing was stored.
    EXISTS = "exists"
    #: The app has ``MAX_TEMPLATES`` templates; nothing was stored.
    FULL = "full"


class TemplateStore(Protocol):
    """Apps' push templates."""

    async def add_template(self, app_id: str, template: Template, max_templates: int) -> Created:
        """Create the template unless the app has one of its id, or ``max_templates``."""

    async def replace_template(self, app_id: str, template: Template) -> bool:
        """Replace the app's template of that id; False, storing nothing, if it has none."""

    async def get_template(self, app_id: str, template_id: str) -> Template | None:
        """The app's template, or None if it has none of that id."""

    async def list_templates(self, app_id: str) -> list[Template]:
        """Every template of the app, by id."""

    async def delete_template(self, app_id: str, template_id: str) -> bool:
        """Remove the app's template; whether it had it."""

    async def get_templates(self, refs: Sequence[tuple[str, str]]) -> list[Template | None]:
        """The template of each (app id, template id), None where there is none (or a stored
        value that is not one), in one round trip."""
