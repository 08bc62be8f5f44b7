"""What goes on a paper ticket (Q6, Q7), independent of any printer's command set."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class TicketPrint:
    """One ticket to print, already in the visitor's language."""

    number: int
    service_code: str
    service_name: str  # in ``lang``
    site_name: str  # in ``lang``
    issued_at: datetime  # aware, site time zone
    ahead: int  # people waiting before this ticket when it was issued
    estimate_min: tuple[int, int] | None  # wait range in minutes, None when unknown
    guidance: str  # e.g. "Please wait until your number is shown"; may be ""
    qr_payload: str  # the ticket's status URL (carries its unguessable token)
    lang: str  # ja | en | zh | ko
    two_part: bool = False  # visitor part + staff part after a partial cut (Q7)
