"""A small HTTP client for the control-plane API (what `counterpoint schedule ...` uses).

Every method returns the decoded JSON body; an error answer raises `ApiError` carrying the
API's own message and status, and an unreachable server raises `Unreachable` (an `ApiError` with
status None). Each carries the CLI's exit status for it, `exit_code`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

import httpx

from counterpoint import exit_codes

DEFAULT_URL = "http://127.0.0.1:8000"


class ApiError(Exception):
    """An error answer (`status`, the API's `detail` and body), or a request refused before it was
    sent (status None). `exit_code` is the CLI's exit status for it (`counterpoint.exit_codes`)."""

    def __init__(self, status: int | None, detail: str, body: dict | None = None, *, exit_code: int | None = None):
        super().__init__(f"{status} {detail}" if status else detail)
        self.status, self.detail, self.body = status, detail, body or {}
        self.exit_code = exit_codes.for_http_status(status) if exit_code is None else exit_code


class Unreachable(ApiError):
    """No answer at all: connection refused, a timeout, an unknown host."""

    def __init__(self, detail: str):
        super().__init__(None, detail, exit_code=exit_codes.UNREACHABLE)


class ControlPlaneClient:
    def __init__(
        self,
        url: str = DEFAULT_URL,
        token: str | None = None,
        *,
        timeout: float = 10.0,
        http: httpx.Client | None = None,
    ):
        """`http`: an httpx client to send through instead of a new one (tests pass FastAPI's TestClient)."""
        self.url = url.rstrip("/")
        self._owns_http = http is None
        self._http = http or httpx.Client(base_url=self.url, timeout=timeout)
        if token:
            self._http.headers["Authorization"] = f"Bearer {token}"

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> ControlPlaneClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- reads ---

    def runs(self) -> dict:
        return self._call("GET", "/v1/runs")

    def status(self, run: str) -> dict:
        return self._call("GET", f"/v1/runs/{_seg(run)}")

    def schedule(self, run: str, version: int | None = None) -> dict:
        return self._call("GET", f"/v1/runs/{_seg(run)}/schedule", params={"version": version} if version else None)

    def metrics(self, run: str, since: int = 0, limit: int = 1000) -> dict:
        return self._call("GET", f"/v1/runs/{_seg(run)}/metrics", params={"since": since, "limit": limit})

    def audit(self, run: str, since: int = 0) -> dict:
        return self._call("GET", f"/v1/runs/{_seg(run)}/audit", params={"since": since})

    # --- writes ---

    def replace_schedule(
        self,
        run: str,
        base_version: int,
        stages: Sequence[dict],
        *,
        reason: str = "",
        allow_stage_changes: bool = False,
    ) -> dict:
        body = {
            "base_version": base_version,
            "stages": list(stages),
            "reason": reason,
            "allow_stage_changes": allow_stage_changes,
        }
        return self._call("PUT", f"/v1/runs/{_seg(run)}/schedule", json=body)

    def reorder(self, run: str, order: Sequence[str], *, base_version: int | None = None, reason: str = "") -> dict:
        """Put the named stages in this order. Finished stages cannot move, so any left out of
        `order` are kept first; a stage named twice or left out otherwise is refused by the API."""
        view = self.schedule(run)
        by_name = {s["name"]: s for s in view["stages"]}
        unknown = [n for n in order if n not in by_name]
        if unknown:
            known = ", ".join(by_name)
            detail = f"unknown stage {unknown[0]!r}; the stages are {known}"
            raise ApiError(None, detail, exit_code=exit_codes.NOT_FOUND)
        finished = [p["name"] for p in view["progress"] if p["status"] == "finished" and p["name"] not in order]
        stages = [by_name[n] for n in [*finished, *order]]
        return self.replace_schedule(
            run, view["version"] if base_version is None else base_version, stages, reason=reason
        )

    def pause(self, run: str, stage: str | None = None, *, base_version: int | None = None, reason: str = "") -> dict:
        return self._call(
            "POST",
            f"/v1/runs/{_seg(run)}/pause",
            json=_drop_none(stage=stage, base_version=base_version, reason=reason),
        )

    def resume(self, run: str, stage: str | None = None, *, base_version: int | None = None, reason: str = "") -> dict:
        return self._call(
            "POST",
            f"/v1/runs/{_seg(run)}/resume",
            json=_drop_none(stage=stage, base_version=base_version, reason=reason),
        )

    def advance(self, run: str, *, base_version: int | None = None, reason: str = "") -> dict:
        return self._call(
            "POST", f"/v1/runs/{_seg(run)}/advance", json=_drop_none(base_version=base_version, reason=reason)
        )

    def set_domain(
        self,
        run: str,
        stage: str,
        domain: str,
        *,
        weight: float | None = None,
        entropy_target: float | None = None,
        clear_entropy_target: bool = False,
        base_version: int | None = None,
        reason: str = "",
    ) -> dict:
        body = _drop_none(weight=weight, entropy_target=entropy_target, base_version=base_version, reason=reason)
        if clear_entropy_target:
            body["entropy_target"] = None
        return self._call("PATCH", f"/v1/runs/{_seg(run)}/stages/{_seg(stage)}/domains/{_seg(domain)}", json=body)

    # --- plumbing ---

    def _call(self, method: str, path: str, *, json: Any = None, params: dict | None = None) -> dict:
        try:
            response = self._http.request(method, path, json=json, params=params)
        except httpx.TransportError as err:  # refused, timed out, unknown host, a dropped connection
            reason = " ".join(str(err).split()) or type(err).__name__
            raise Unreachable(f"cannot reach the control plane at {self.url}: {reason}") from None
        except httpx.HTTPError as err:
            raise ApiError(None, f"the control plane at {self.url}: {err}", exit_code=exit_codes.FAILURE) from None
        if response.status_code >= 400:
            try:
                body = response.json()
                detail = body.get("detail", response.reason_phrase) if isinstance(body, dict) else str(body)
            except ValueError:
                body, detail = None, response.text.strip() or response.reason_phrase
            raise ApiError(response.status_code, str(detail), body if isinstance(body, dict) else None)
        return response.json()


def _drop_none(**fields: Any) -> dict:
    return {k: v for k, v in fields.items() if v is not None and v != ""}


def _seg(name: str) -> str:
    """One URL path segment: a name with `/` or `?` in it stays one segment (and gets a clean 404)."""
    return quote(str(name), safe="")
