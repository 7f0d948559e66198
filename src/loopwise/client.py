"""``loopwise.Client``: the loop over HTTP, with the same verbs as the in-process ``Loop``.

Errors come back as the same exception types the service raises (``NotFound``,
``Conflict``, ``InvalidInput`` ...), so code works unchanged against either.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any, NoReturn

import httpx

from loopwise.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    LoopwiseError,
    NotFound,
    TooLarge,
    Unauthorized,
)
from loopwise.loop import Project

_BY_STATUS: dict[int, type[LoopwiseError]] = {
    401: Unauthorized, 403: Forbidden, 404: NotFound, 409: Conflict, 413: TooLarge,
    422: InvalidInput,
}


class Client:
    """A loopwise server at ``url``, acting as the holder of ``token``.

    >>> client = Client("http://127.0.0.1:8000", token="lw_...")   # doctest: +SKIP
    >>> triage = client.project("triage")  # doctest: +SKIP
    >>> triage.submit([{"data": {"x": 1}}], proba=[[0.97, 0.03]])  # doctest: +SKIP
    """

    def __init__(self, url: str, *, token: str, timeout: float = 60.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        self._http = httpx.Client(
            base_url=url.rstrip("/"), timeout=timeout, transport=transport,
            headers={"Authorization": f"Bearer {token}"},
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        r = self._http.request(method, f"/api/v1{path}", **kwargs)
        if r.status_code >= 400:
            _raise_for(r)
        return r.json()

    # -- projects and people
    def create_project(self, name: str, *, labels: list[str], input: str = "tabular",
                       sensitive: list[str] | None = None,
                       policy: dict[str, Any] | None = None) -> Project:
        self._call("POST", "/projects", json={
            "name": name, "labels": labels, "input": input, "sensitive": sensitive or [],
            "policy": policy or {}})
        return Project(self, name)

    def project(self, name: str) -> Project:
        self._call("GET", f"/projects/{name}")
        return Project(self, name)

    def projects(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("GET", "/projects")
        return result

    def create_user(self, name: str, role: str = "reviewer") -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", "/users", json={"name": name, "role": role})
        return result

    # -- tasks
    def submit_task(self, task_id: int, label: str, *, comment: str | None = None,
                    seconds: float | None = None) -> dict[str, Any]:
        result: dict[str, Any] = self._call(
            "POST", f"/tasks/{task_id}/submit",
            json={"label": label, "comment": comment, "seconds": seconds})
        return result

    def release(self, task_id: int) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", f"/tasks/{task_id}/release")
        return result

    def escalate(self, task_id: int, comment: str | None = None) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", f"/tasks/{task_id}/escalate",
                                            json={"comment": comment})
        return result

    # -- audit and jobs
    def audit_events(self, **filters: Any) -> list[dict[str, Any]]:
        params = {k: v for k, v in filters.items() if v is not None}  # None: no filter
        result: list[dict[str, Any]] = self._call("GET", "/audit", params=params)["events"]
        return result

    def verify_audit(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/audit/verify")
        return result

    def export_audit(self) -> Iterator[str]:
        """The audit trail as JSONL lines (admin), verifiable without the database."""
        with self._http.stream("GET", "/api/v1/audit/export") as r:
            if r.status_code >= 400:
                r.read()
                _raise_for(r)
            for line in r.iter_lines():
                yield line + "\n"

    def job(self, job_id: int) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", f"/jobs/{job_id}")
        return result

    # -- Backend
    def _project_info(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", f"/projects/{name}")
        return result

    def _submit(self, name: str, records: list[dict[str, Any]],
                proba: list[list[float]] | None) -> list[dict[str, Any]]:
        if proba is not None:
            if len(proba) != len(records):
                raise InvalidInput(
                    f"proba: has {len(proba)} rows for {len(records)} records")
            records = [{**r, "proba": p} for r, p in zip(records, proba, strict=True)]
        result: list[dict[str, Any]] = self._call(
            "POST", f"/projects/{name}/items", json={"items": records})["decisions"]
        return result

    def _item(self, name: str, item_id: int) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", f"/projects/{name}/items/{item_id}")
        return result

    def _claim(self, name: str, n: int) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call(
            "POST", f"/projects/{name}/tasks/claim", json={"n": n})["tasks"]
        return result

    def _metrics(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", f"/projects/{name}/metrics")
        return result

    def _train(self, name: str, estimator: Any | None, *, poll: float = 0.2,
               timeout: float = 600.0) -> dict[str, Any]:
        """Start a training job and wait for it; the new model version."""
        if estimator is not None:
            raise InvalidInput("a custom estimator can only be trained in-process (Loop)")
        job = self._call("POST", f"/projects/{name}/train")
        deadline = time.monotonic() + timeout
        while job["state"] in ("queued", "running"):
            if time.monotonic() > deadline:
                raise LoopwiseError(f"training job {job['job_id']} still {job['state']}")
            time.sleep(poll)
            job = self.job(job["job_id"])
        if job["state"] == "failed":
            raise InvalidInput(f"training failed: {job['error']}")
        version = job["result"]["model_version"]
        return next(m for m in self._models(name) if m["version"] == version)

    def _models(self, name: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("GET", f"/projects/{name}/models")
        return result

    def _update_policy(self, name: str, changes: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self._call("PATCH", f"/projects/{name}/policy", json=changes)
        return result

    def _override(self, name: str, item_id: int, label: str, reason: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call(
            "POST", f"/projects/{name}/items/{item_id}/override",
            json={"label": label, "reason": reason})
        return result

    def _query_pool(self, name: str, n: int, strategy: str | None) -> dict[str, Any]:
        body: dict[str, Any] = {"n": n} if strategy is None else {"n": n, "strategy": strategy}
        result: dict[str, Any] = self._call("POST", f"/projects/{name}/pool/query", json=body)
        return result

    def _rollback(self, name: str, version: int) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", f"/projects/{name}/models/{version}/rollback")
        return result

    def _export(self, name: str, format: str, decided_only: bool = False) -> Iterator[str]:
        with self._http.stream("GET", f"/api/v1/projects/{name}/export",
                               params={"format": format,
                                       "decided_only": str(decided_only).lower()}) as r:
            if r.status_code >= 400:
                r.read()
                _raise_for(r)
            yield from r.iter_text()

    def _mark_gold(self, name: str, marks: list[dict[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", f"/projects/{name}/gold",
                                            json={"items": marks})
        return result

    def _reviewers(self, name: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("GET", f"/projects/{name}/reviewers")
        return result

    def _resume_reviewer(self, name: str, user: str, reason: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call(
            "POST", f"/projects/{name}/reviewers/{user}/resume", json={"reason": reason})
        return result

    def _fairness(self, name: str, positive: str | None) -> dict[str, Any]:
        params = {} if positive is None else {"positive": positive}
        result: dict[str, Any] = self._call("GET", f"/projects/{name}/fairness", params=params)
        return result

    def _drift(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", f"/projects/{name}/drift")
        return result

    def _alerts(self, name: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("GET", f"/projects/{name}/alerts")
        return result

    def _report(self, name: str, format: str) -> dict[str, Any] | str:
        r = self._http.get(f"/api/v1/projects/{name}/report", params={"format": format})
        if r.status_code >= 400:
            _raise_for(r)
        if format == "json":
            result: dict[str, Any] = r.json()
            return result
        return r.text


def _raise_for(r: httpx.Response) -> NoReturn:
    """The loopwise error of an error response (its message and listed errors)."""
    try:
        body = r.json()
    except ValueError:
        body = {"detail": r.text}
    detail = body.get("detail") if isinstance(body, dict) else body
    errors = body.get("errors") if isinstance(body, dict) else None
    if isinstance(detail, list):  # FastAPI's own validation errors
        errors, detail = detail, "; ".join(str(e.get("msg")) for e in detail)
    exc_type = _BY_STATUS.get(r.status_code, LoopwiseError)
    raise exc_type(f"{r.status_code}: {detail}", errors=errors)
