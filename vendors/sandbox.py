"""The sandbox vendor: a channel that posts to a local HTTP endpoint, for tests and demos.

Request: ``POST <url>`` with JSON ``{app_id, task_id, msg_id, kind, title, body, data, tokens}``.
Response 200: ``{"results": [{"token": ..., "status": "ok" | "invalid_token" | <error>}]}``,
one per token (partial success, as Huawei's batch API reports it). 429 asks to retry after the
``Retry-After`` seconds; 5xx is transient; any other status rejects the request.
"""

from __future__ import annotations

import httpx
import msgspec

from proto.envelopes import VendorJob
from vendors.client import TargetResult
from vendors.errors import RateLimitedError, RejectedError, TransientError


class _Result(msgspec.Struct):
    token: str
    status: str


class _Response(msgspec.Struct):
    results: list[_Result]


_response = msgspec.json.Decoder(_Response)


class SandboxClient:
    """``VendorClient`` for the sandbox channel."""

    name = "sandbox"

    def __init__(self, url: str, timeout_s: float) -> None:
        self._url = url
        self._http = httpx.AsyncClient(timeout=timeout_s)

    async def send(self, job: VendorJob) -> list[TargetResult]:
        """See ``VendorClient.send``."""
        body = {"app_id": job.app_id, "task_id": job.task_id, "msg_id": job.msg_id,
                "kind": job.kind, "title": job.title, "body": job.body, "data": job.data,
                "tokens": [t.token for t in job.targets]}
        try:
            response = await self._http.post(self._url, content=msgspec.json.encode(body),
                                             headers={"content-type": "application/json"})
        except httpx.TransportError as exc:
            raise TransientError(f"{type(exc).__name__}: {exc}") from None
        if response.status_code == 429:
            after = response.headers.get("retry-after", "")
            raise RateLimitedError("rate limited",
                                   retry_after_s=float(after) if after.isdigit() else None)
        if response.status_code >= 500:
            raise TransientError(f"HTTP {response.status_code}")
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
