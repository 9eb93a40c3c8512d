"""Path parameters. Their patterns are shown in the document, not enforced by FastAPI, so that a
malformed id gets the API's own code (``bad_registration_id``, ``bad_account``,
``bad_task_id``) from the handler."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path

from proto.limits import ACCOUNT_RE, ID_PATTERN

RegistrationId = Annotated[str, Path(description="A device's registration id.",
                                     json_schema_extra={"pattern": ID_PATTERN})]
AccountId = Annotated[str, Path(description="An account id of the app.",
                                json_schema_extra={"pattern": ACCOUNT_RE.pattern})]
TaskId = Annotated[str, Path(description="A push task's id.",
                             json_schema_extra={"pattern": ID_PATTERN})]
