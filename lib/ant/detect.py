# Protocol autodetection: which request to send next, given what answered.
#
# Order (reference §0): the NEW request first (units that answer both get
# the richer, CRC-protected protocol), then the OLD UART request, then the OLD
# app form; all at 19200 baud, then again at 9600 (the vendor PDF's rate).
# Only a verified status frame locks a protocol, so noise on the line never
# "detects" a BMS. The attempt that worked is tried first after a loss.
try:
    from micropython import const
except ImportError:  # CPython
    def const(__value):  # positional-only, like the stub
        return __value

from ant.commands import NEW_STATUS_REQUEST, OLD_STATUS_REQUESTS
from ant.status import PROTOCOL_NEW, PROTOCOL_OLD

BAUD_DEFAULT = const(19200)
BAUD_FALLBACK = const(9600)

# (protocol, baud, request variant)
ATTEMPTS = (
    (PROTOCOL_NEW, BAUD_DEFAULT, 0),
    (PROTOCOL_OLD, BAUD_DEFAULT, 0),
    (PROTOCOL_OLD, BAUD_DEFAULT, 1),
    (PROTOCOL_NEW, BAUD_FALLBACK, 0),
    (PROTOCOL_OLD, BAUD_FALLBACK, 0),
    (PROTOCOL_OLD, BAUD_FALLBACK, 1),
)


class Detector:
    def __init__(self, protocols=(PROTOCOL_NEW, PROTOCOL_OLD), bauds=(BAUD_DEFAULT, BAUD_FALLBACK)):
        # Restrict the search when the user pinned a protocol or a baud rate.
        self.attempts = tuple(a for a in ATTEMPTS if a[0] in protocols and a[1] in bauds)
        if not self.attempts:
            raise ValueError("no protocol/baud combination left to try")
        self.remembered = -1  # index of the attempt that last worked
        self.index = 0
        self.locked = False
        self.rounds = 0  # complete rounds without an answer since the last lock

    @property
    def protocol(self):
        return self.attempts[self.index][0]

    @property
    def baud(self):
        return self.attempts[self.index][1]

    def request(self):
        """The status request of the current attempt."""
        protocol, _, variant = self.attempts[self.index]
        if protocol == PROTOCOL_NEW:
            return NEW_STATUS_REQUEST
        return OLD_STATUS_REQUESTS[variant]

    def remember(self, protocol, baud, variant=0):
        """Seed with what worked before (e.g. stored across a reboot)."""
        for i in range(len(self.attempts)):
            if self.attempts[i] == (protocol, baud, variant):
                self.remembered = i
                self.index = i
                return True
        return False

    def on_status(self, protocol):
        """A verified status frame of `protocol` arrived. Returns True when
        this locks (or confirms) the current attempt."""
        if protocol != self.attempts[self.index][0]:
            # A frame of the other family: someone else's poll (a display)
            # was answered. Do not lock on it; it proves the line works.
            return False
        self.locked = True
        self.remembered = self.index
        self.rounds = 0
        return True

    def on_timeout(self):
        """The current attempt went unanswered: move to the next one.
        Returns True when a whole round of attempts has failed."""
        if self.locked:
            self.locked = False
            return False  # first retry after a loss uses the same attempt
        self.index = (self.index + 1) % len(self.attempts)
        if self.index == (self.remembered if self.remembered >= 0 else 0):
            self.rounds += 1
            return True
        return False

    def lost(self):
        """Start over after a loss, with what worked last time first."""
        self.locked = False
        self.index = self.remembered if self.remembered >= 0 else 0
