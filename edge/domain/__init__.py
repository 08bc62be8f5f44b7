"""Pure queue model: commands -> events, events -> state. No I/O, no wall clock.

Where things happen:
- ``model``    site configuration (services, ranges, counters) as frozen dataclasses
- ``commands`` every operator/kiosk command and ``decide``: state + command -> events or Refused
- ``state``    ``State`` and ``apply``: the one fold from events to state
- ``views``    projections shown to people: waiting, second wait, now calling, backyard, stats
"""
