"""``checkin_grace_min`` in a service's ``web = {…}`` table (edge/config.py): read, defaulted,
and refused when out of range, with the key named in the error."""

from __future__ import annotations

import pytest
from sync_support import site_toml

from edge.config import ConfigError, parse_site_config

WEB = 'web = { from = "08:30", to = "17:00", checkin_required = true{extra} }\n'


def toml(extra: str = "") -> str:
    return site_toml("grace").replace("handling_minutes = 3\n", "handling_minutes = 3\n"
                                      + WEB.replace("{extra}", extra), 1)


def test_grace_is_read_and_defaults_to_30_minutes() -> None:
    rules = parse_site_config(toml()).services["B"].web
    assert rules is not None
    assert rules.checkin_grace_min == 30
    rules = parse_site_config(toml(", checkin_grace_min = 12")).services["B"].web
    assert rules is not None
    assert rules.checkin_grace_min == 12


@pytest.mark.parametrize("bad", ["-1", "241", '"30"'])
def test_grace_out_of_range_is_refused(bad: str) -> None:
    with pytest.raises(ConfigError, match="checkin_grace_min"):
        parse_site_config(toml(f", checkin_grace_min = {bad}"))
