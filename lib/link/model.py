# The status model: what the faces (HTTP, MQTT, BLE, outputs, rules) read.
#
# One Model per BMS. The link engine writes it; everyone else reads it and
# waits on the firmware's change Event instead of polling. `status` is only
# ever updated from a verified frame, and `link` tells whether it is live:
# a face must not present a status as live unless link == LINK_OK.
from ant.status import Status
from ticks import ticks_diff, wrap_add

LINK_OK = 0  # fresh, verified status within the stale limit
LINK_STALE = 1  # last status older than the stale limit; polls going unanswered
LINK_LOST = 2  # no valid status for the loss limit (or none yet since boot)
LINK_ASLEEP = 3  # the BMS went silent after answering: asleep (or unplugged)
LINK_UNPOWERED = 4  # the bridge switched the TTL side's isolated supply off
LINK_NAMES = ("ok", "stale", "lost", "asleep", "unpowered")

# What the line looks like (the wiring diagnosis).
LINE_UNKNOWN = 0  # not enough observation yet
LINE_SILENT = 1  # no bytes at all
LINE_NOISE = 2  # bytes, but never a valid frame
LINE_FOREIGN = 3  # valid frames from another master (a display)
LINE_OK = 4  # valid frames answering our requests
LINE_INTERMITTENT = 5  # our replies come and go (the loss rate says how often)
LINE_SLOW = 6  # our replies come, but slower than real units answer
LINE_NAMES = ("unknown", "silent", "noise", "foreign", "ok", "intermittent", "slow")
LINE_HINTS = (
    "Waiting for the BMS.",
    "No bytes from the BMS at all. Check that the TTL port's VCC is powered (it needs the "
    "bridge's isolated 3.3 V), that BMS TX goes to bridge RX, that the isolated supply is on, "
    "or the BMS is asleep: wake it with ACC or a charger.",
    "Bytes arrive but never a valid frame. Check the baud rate (19200), GND between the TTL "
    "port and the bridge, RX picking up noise, or whether this is an RS485/CAN port instead "
    "of the TTL port.",
    "Another master (an ANT display?) polls this port. The bridge listens to the BMS's "
    "replies and sends commands only in the gaps.",
    "Valid frames from the BMS.",
    # describe.py fills in: loss %, polls in the window, unanswered, corrupted.
    "Replies are intermittent: %d %% of the last %d polls got no valid reply (%d unanswered, "
    "%d corrupted). Look for a loose contact in the TTL cable (RX, TX, GND), a long cable "
    "near power wiring, or a weak isolated supply.",
    # describe.py fills in: the measured reply time, the timeout in force.
    "The BMS answers slowly: its replies take about %d ms (real units: under 250 ms). The "
    "bridge waits up to %d ms for them.",
)
# LINE_SILENT after the BMS has answered: it stopped, the line is not dead
# from the start ("no bytes at all" would send the user to the wiring).
HINT_STOPPED = (
    "The BMS has stopped answering: not a byte since its last status. It may be rebooting or "
    "falling asleep; if it stays silent, check the TTL cable and that its VCC is powered."
)
# What a link state asks of the user, where the line diagnosis does not say
# it better (None: use LINE_HINTS).
LINK_HINTS = (
    None,
    None,
    None,
    "The BMS answered before and has gone silent: it is probably asleep. Wake it with ACC or "
    "a charger; if it stays silent, check the TTL cable and its VCC.",
    "The bridge has switched the TTL port's isolated supply off; the BMS cannot answer.",
)


class Model:
    def __init__(self):
        self.status = Status()
        self.link = LINK_LOST
        self.line = LINE_UNKNOWN
        self.has_data = False  # a status has been decoded since boot
        self.fresh_ms = 0  # ticks of the newest verified status
        self.changed_ms = 0  # ticks of the last link state change
        self.passive = False  # listening to another master's traffic
        self.protocol = 0  # PROTOCOL_* locked by autodetection, 0 = none
        self.baud = 0
        self.generation = 0  # bumped on every update the faces should see

    def age_ms(self, now_ms):
        """Age of the status in ms, or -1 when there has never been one."""
        if not self.has_data:
            return -1
        return ticks_diff(now_ms, self.fresh_ms)

    def live(self):
        return self.link == LINK_OK

    def touch(self):
        self.generation = wrap_add(self.generation, 1)
