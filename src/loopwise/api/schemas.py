"""Request and response shapes (pydantic), kept apart from the store's tables."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class ProjectIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(description="unique, URL-safe: lower-case letters, digits, _ . -")
    labels: list[str] = Field(min_length=2)
    input: Literal["tabular", "text", "image"] = "tabular"
    sensitive: list[str] = Field(default_factory=list)
    policy: dict[str, Any] = Field(default_factory=dict)


class ItemIn(BaseModel):
    external_id: str | None = None
    data: dict[str, Any]
    meta: dict[str, Any] = Field(default_factory=dict)
    proba: list[float] | None = None


class SubmitIn(BaseModel):
    items: list[ItemIn]


class DecisionOut(BaseModel):
    item_id: int
    external_id: str | None
    route: str
    reason: str
    label: str | None
    confidence: float | None
    decided_by: str | None = None


class SubmitOut(BaseModel):
    decisions: list[DecisionOut]


class ClaimIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    n: int = 1


class ReviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    label: str
    comment: str | None = None
    seconds: float | None = None


class EscalateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    comment: str | None = None


class UserIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    role: Literal["admin", "expert", "reviewer", "service"] = "reviewer"


class UserOut(BaseModel):
    id: int
    name: str
    role: str
    token: str = Field(description="shown only in this reply; stored only as a hash")
