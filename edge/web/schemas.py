"""Request bodies of the edge HTTP API, validated by pydantic (also the OpenAPI source)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

_NUMBER = {"ge": 1, "le": 9999, "description": "ticket number (1-9999)"}
_TOKEN = {"min_length": 8, "max_length": 64, "pattern": r"^[A-Za-z0-9_-]+$",
          "description": "the token scanned from the ticket's QR code"}


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class IssueBody(_Body):
    service: str = Field(min_length=1, max_length=8, description="service code, e.g. A")
    channel: Literal["kiosk", "web", "reservation"] = "kiosk"
    lang: str = Field(default="ja", pattern=r"^[a-z]{2}(-[A-Z]{2})?$")
    priority: bool = False
    kiosk: str | None = Field(default=None, pattern=r"^[A-Za-z0-9-]{1,16}$",
                              description="the kiosk asking; its printer prints the ticket")


class NumberBody(_Body):
    number: int = Field(**_NUMBER)  # type: ignore[call-overload]


class TicketRefBody(_Body):
    """A ticket given by typed number or by scanned token (exactly one)."""

    # the "exactly one" rule below, stated in the JSON schema too (OpenAPI = what is accepted)
    model_config = ConfigDict(json_schema_extra={"oneOf": [
        {"required": ["number"], "properties": {"number": {"type": "integer"}}},
        {"required": ["token"], "properties": {"token": {"type": "string"}}},
    ]})

    number: int | None = Field(default=None, **_NUMBER)  # type: ignore[call-overload]
    token: str | None = Field(default=None, **_TOKEN)  # type: ignore[call-overload]

    @model_validator(mode="after")
    def _one_of(self) -> TicketRefBody:
        if (self.number is None) == (self.token is None):
            raise ValueError("give exactly one of 'number' or 'token'")
        return self


class TransferBody(_Body):
    model_config = ConfigDict(json_schema_extra={"anyOf": [
        {"required": ["service"], "properties": {"service": {"type": "string"}}},
        {"required": ["counter"], "properties": {"counter": {"type": "string"}}},
    ]})

    service: str | None = Field(default=None, min_length=1, max_length=8)
    counter: str | None = Field(default=None, min_length=1, max_length=8)

    @model_validator(mode="after")
    def _target(self) -> TransferBody:
        if self.service is None and self.counter is None:
            raise ValueError("give 'service', 'counter' or both")
        return self


class CheckInBody(_Body):
    token: str = Field(**_TOKEN)  # type: ignore[call-overload]
    kiosk: str | None = Field(default=None, pattern=r"^[A-Za-z0-9-]{1,16}$")


class MenuBody(_Body):
    menu: str | None = Field(max_length=32, description="menu id; null returns to the schedule")


class LoginBody(_Body):
    """A login ID with its password, or the counter's PIN (exactly one way)."""

    model_config = ConfigDict(json_schema_extra={"oneOf": [
        {"required": ["login", "password"]}, {"required": ["pin"]}]})

    login: str | None = Field(default=None, min_length=1, max_length=64,
                              description="login ID (the hub's account)")
    password: str | None = Field(default=None, min_length=1, max_length=256)
    pin: str | None = Field(default=None, min_length=4, max_length=12, pattern=r"^[0-9]+$")

    @model_validator(mode="after")
    def _one_way(self) -> LoginBody:
        by_staff = self.login is not None or self.password is not None
        if by_staff == (self.pin is not None) or (by_staff and (
                self.login is None or self.password is None)):
            raise ValueError("give 'login' and 'password', or 'pin'")
        return self

