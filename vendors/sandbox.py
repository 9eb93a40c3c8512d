"""The sandbox vendor: a channel that posts to a local HTTP endpoint, for tests and demos.

Request: ``POST <url>`` with JSON ``{app_id, task_id, msg_id, message, tokens}``, where
``message`` is ``proto.message.Message`` as JSON; a revoke (``can_revoke``, a recall) is the
same request with ``"revoke": true``.
Response 200: ``{"results": [{"token": ..., "status": "ok" | "invalid_token" | <error>}]}``,
one per token (partial success, as Huawei's batch API reports it). 429 asks to retry after the
``Retry-After`` seconds; 5xx is transient; any other status rejects the request.
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from proto.envelopes import VendorJob
from vendors.client import BaseClient, TargetResult
from vendors.errors import RejectedError, TransientError
from vendors.http import call, new_client


class _Result(msgspec.Struct):
    token: str
    status: str


class _Response(msgspec.Struct):
    results: list[_Result]


_response = msgspec.json.Decoder(_Response)


class SandboxClient(BaseClient):
    """``VendorClient`` for the sandbox channel: no credentials; revokes, so that tests can
    follow a recall through a vendor."""

    name = "sandbox"
    max_batch = 1000
    needs_credentials = False
    can_revoke = True

    def __init__(self, url: str, timeout_s: float) -> None:
        self._url = url
        self._http = new_client(timeout_s=timeout_s)

    async def send(self, job: VendorJob, credentials: Mapping[str, str]) -> list[TargetResult]:
        """See ``VendorClient.send``."""
        return await self._post(job, revoke=False)

    async def revoke(self, job: VendorJob, credentials: Mapping[str, str]) -> None:
        """See ``VendorClient.revoke``: the whole request succeeds or raises."""
        failed = [r.error for r in await self._post(job, revoke=True) if r.error]
        if failed:
            raise RejectedError(f"revoke refused: {', '.join(sorted(set(failed)))}")

    async def _post(self, job: VendorJob, *, revoke: bool) -> list[TargetResult]:
        body: dict[str, object] = {"app_id": job.app_id, "task_id": job.task_id,
                                   "msg_id": job.msg_id, "message": job.message,
                                   "tokens": [t.token for t in job.targets]}
        if revoke:
            body["revoke"] = True
        response = await call(self._http, "POST", self._url, content=msgspec.json.encode(body),
                              headers={"content-type": "application/json"})
        if response.status_code != 200:
            raise RejectedError(f"HTTP {response.status_code}: {response.text[:200]}")
        try:
            results = {r.token: r.status for r in _response.decode(response.content).results}
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise TransientError(f"unreadable response: {exc}") from None
        return [_outcome(t.registration_id, results.get(t.token, "missing from response"))
                for t in job.targets]

    async def close(self) -> None:
        """See ``VendorClient.close``."""
        await self._http.aclose()


def _outcome(registration_id: str, status: str) -> TargetResult:
    if status == "ok":
        return TargetResult(registration_id)
    return TargetResult(registration_id, error=status, token_invalid=status == "invalid_token")
