# An ANT display polling the BMS on the same TTL port. Its requests travel on
# the BMS's RX line, which the bridge's UART also sees in this model, and the
# BMS's replies to it appear on the bridge's RX like any other reply. While
# such an exchange is on the bus, bytes the bridge sends collide with it: the
# BMS cannot read them (counted as collisions and discarded).
from ant import commands

_EXCHANGE_TIMEOUT_S = 0.3  # the display gives up on a missing reply after this


class Display:
    def __init__(self):
        self.period_ms = 0
        self.next_poll = None
        self.busy_until = None  # end of the exchange on the bus (None = idle)
        self.polls = 0
        self.replies = 0

    def set_period(self, period_ms, now):
        self.period_ms = int(period_ms)
        self.next_poll = now + 0.3 if period_ms > 0 else None
        if period_ms <= 0:
            self.busy_until = None

    def due(self, now, protocol):
        """The request to put on the bus now, or None."""
        if not self.period_ms or self.next_poll is None or now < self.next_poll:
            return None
        self.next_poll += self.period_ms / 1000.0
        if self.next_poll < now:
            self.next_poll = now + self.period_ms / 1000.0
        self.polls += 1
        self.busy_until = now + _EXCHANGE_TIMEOUT_S
        return commands.status_request("new" if protocol in ("new", "both") else "old")

    def replied(self, end_time):
        self.replies += 1
        self.busy_until = end_time + 0.005

    def busy(self, now):
        if self.busy_until is not None and now >= self.busy_until:
            self.busy_until = None
        return self.busy_until is not None
