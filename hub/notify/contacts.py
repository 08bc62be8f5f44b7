"""Checking and normalising what a resident types as a contact (W5).

Why strict: the value goes into an SMTP header or to a paid SMS gateway, so anything with line
breaks, spaces, control characters or implausible shapes is refused before it is stored.
E-mail: an ASCII ``local@domain`` of at most 254 characters (RFC 5321 limits; IDN domains must
be given in their ``xn--`` form). Phone: Japanese mobile numbers (070/080/090/060, 11 digits),
domestic or ``+81``, full-width digits, spaces, hyphens and brackets allowed; stored as E.164.
"""

from __future__ import annotations

import re
import unicodedata

MAX_EMAIL = 254
MAX_INPUT = 320  # longer input is refused before any other work

_LOCAL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_LABEL = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_TLD = re.compile(r"[A-Za-z]{2,63}|xn--[A-Za-z0-9-]{1,59}")
_MOBILE = re.compile(r"0[6789]0\d{8}")
_PHONE_NOISE = re.compile(r"[\s\-()‐-―−ー]")


class InvalidContact(ValueError):
    """Refused; the message is safe to show (it never repeats the input)."""


def email(value: str) -> str:
    """A plausible e-mail address, with its domain in lower case."""
    if len(value) > MAX_INPUT:
        raise InvalidContact("too long")
    value = value.strip()
    local, at, domain = value.rpartition("@")
    if not at or len(value) > MAX_EMAIL or not 0 < len(local) <= 64:
        raise InvalidContact("not an e-mail address")
    if not _LOCAL.fullmatch(local):
        raise InvalidContact("not an e-mail address")
    labels = domain.split(".")
    if (len(labels) < 2 or len(domain) > 253 or not all(_LABEL.fullmatch(x) for x in labels)
            or not _TLD.fullmatch(labels[-1])):
        raise InvalidContact("not an e-mail address")
    return f"{local}@{domain.lower()}"


def phone(value: str) -> str:
    """A Japanese mobile number as E.164 (``+819012345678``)."""
    if len(value) > MAX_INPUT:
        raise InvalidContact("too long")
    digits = _PHONE_NOISE.sub("", unicodedata.normalize("NFKC", value))
    if digits.startswith("+81"):
        rest = digits[3:]
        digits = rest if rest.startswith("0") else "0" + rest
    if not _MOBILE.fullmatch(digits):
        raise InvalidContact("not a Japanese mobile phone number")
    return "+81" + digits[1:]


def normalise(channel: str, value: str) -> str:
    if channel == "email":
        return email(value)
    if channel == "sms":
        return phone(value)
    raise InvalidContact("channel must be email or sms")
