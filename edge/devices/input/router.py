"""Which counter a keypad or scanner driving several counters acts for.

Why: the ward's device table has sections with fewer operator devices than counters (国民年金係:
one operator device, four counters with a display each). There one clerk calls visitors to
several booths, so the device is configured with ``counters = ["1", "2", "3", "4"]`` and this
rule picks the counter for each key press:

- a *call* (call next, call a typed number, call a held ticket back, clear an absence, or a
  ticket scanned) goes to the first counter in the configured order that serves nobody now, so
  the booths fill in a fixed, predictable order; when every counter is busy it goes to the one
  after the counter used last (round robin), and the queue engine treats it exactly as a press
  on that counter's own keypad;
- every other action (recall, absent, hold, finish, transfer, cancel) acts on the counter this
  device called to last, i.e. the visitor the clerk is dealing with.

Pure: whether a counter is busy is asked through a callback (the manager reads the state).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

CALLS = frozenset({"call_next", "call_number", "call_held", "clear_absence", "scan"})


class CounterRouter:
    """The counter for each action of one device driving ``counters`` (at least one)."""

    def __init__(self, counters: Sequence[str]) -> None:
        if not counters:
            raise ValueError("a device drives at least one counter")
        self.counters = tuple(counters)
        self.last: str = self.counters[0]

    def target(self, action: str, busy: Callable[[str], bool]) -> str:
        """The counter ``action`` acts at; a call also makes it the device's current one."""
        if action not in CALLS or len(self.counters) == 1:
            return self.last
        free = [c for c in self.counters if not busy(c)]
        if free:
            chosen = free[0]
        else:
            chosen = self.counters[(self.counters.index(self.last) + 1) % len(self.counters)]
        self.last = chosen
        return chosen
