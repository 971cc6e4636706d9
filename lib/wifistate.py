# The Wi-Fi connection manager as a pure state machine: what the radio should
# do next, from the station's status code and the clock. firmware/wifi.py
# owns the radio and does what step() asks; this module never touches it.
#
#   m = WifiState(setup_after_ms=300000, log=eventlog)
#   actions = m.start(now_ms, has_credentials, button_held)
#   every ~250 ms:  actions = m.step(now_ms, wlan_status, associated)
#   new credentials from the portal:  actions = m.join(now_ms)
#   a portal request:  m.client_seen(now_ms)
#   events: EV_WIFI entries in the log when something new happens (up,
#   down and why, set-up mode and why, a join from the portal)
#   actions: A_* bits -- A_CONNECT (drop any attempt, join the configured
#   network), A_DISCONNECT, A_AP_ON / A_AP_OFF (the set-up access point),
#   A_SCAN (list the networks around, for the set-up page)
#
# Station mode: an attempt (CONNECTING) ends with an address (UP) or a
# failure (DOWN) with its reason taken from the WLAN status code (wrong
# password, no access point, joined but no address from DHCP, no answer at
# all). The next attempt follows after an exponential backoff (first_ms,
# doubling, capped at max_ms), forever. A connection that drops goes DOWN
# too ("lost") and is retried the same way.
#
# Set-up mode (SETUP): the access point and the portal, entered at start when
# no network is configured or the BOOT button is held, and when the station
# has been failing for setup_after_ms. Joining from the portal (join()) keeps
# the access point up (JOINING) until the station has an address, and for
# ap_linger_ms after, so the phone can show the result; then it is dropped.
# With a network configured, set-up mode retries it every setup_retry_ms,
# but not while a portal client was seen in the last client_hold_ms (a
# retry moves the radio's channel and would disturb the phone).
#
# The status codes are MicroPython's ESP32 port (v1.28, network.STAT_* and
# the ESP-IDF disconnect reasons that WLAN.status() passes through when the
# driver's own reconnects are off); tools/hostrt/hw.py fakes the same codes.
# step() allocates nothing: small ints only.
try:
    from micropython import const
except ImportError:  # CPython
    def const(__value):  # positional-only, like the stub
        return __value

from eventlog import EV_WIFI
from ticks import ticks_add, ticks_diff, wrap_add

# States (eventtext.WIFI_NAMES order; EV_WIFI a).
OFF = const(0)  # the radio is off (not started)
CONNECTING = const(1)  # station mode: an attempt is running
UP = const(2)  # station mode: joined, with an address
DOWN = const(3)  # station mode: no connection, the next attempt is due at next_ms
SETUP = const(4)  # set-up mode: access point and portal
JOINING = const(5)  # set-up mode, trying the configured network (the access point stays up)

# Why the station is down, or why set-up mode started (eventtext.WIFI_REASONS
# order; EV_WIFI b).
R_NONE = const(0)
R_NO_CREDENTIALS = const(1)  # no network configured
R_WRONG_PASSWORD = const(2)
R_NO_AP = const(3)  # no access point of that name answered
R_NO_IP = const(4)  # joined, but no address came (DHCP)
R_TIMEOUT = const(5)  # no answer at all within the attempt's time
R_LOST = const(6)  # the connection dropped
R_FAILED = const(7)  # another error (the status code tells which)
R_RADIO = const(8)  # the radio refused the request (an OSError)
R_BUTTON = const(9)  # set-up: the BOOT button was held at start
R_FAILING = const(10)  # set-up: the station failed for setup_after_ms

# Actions (bits).
A_CONNECT = const(1)
A_DISCONNECT = const(2)
A_AP_ON = const(4)
A_AP_OFF = const(8)
A_SCAN = const(16)

# WLAN status codes (MicroPython ESP32: network.STAT_*; the ESP-IDF
# wifi_err_reason_t values status() passes through).
_STAT_IDLE = const(1000)
_STAT_CONNECTING = const(1001)
_STAT_GOT_IP = const(1010)
_STAT_BEACON_TIMEOUT = const(200)
_STAT_NO_AP_FOUND = const(201)
_STAT_WRONG_PASSWORD = const(202)  # AUTH_FAIL; the port folds CONNECTION_FAIL into it
_STAT_HANDSHAKE_TIMEOUT = const(204)
_STAT_4WAY_HANDSHAKE_TIMEOUT = const(15)  # what a wrong WPA2 passphrase usually ends with
_STAT_NO_AP_LOW = const(210)  # 210..212: no AP with compatible security / authmode / RSSI
_STAT_NO_AP_HIGH = const(212)

# Defaults (firmware/wifi.py passes setup_after_ms from the settings).
_CONNECT_TIMEOUT_MS = const(20000)  # an attempt with no result by then has failed
_BACKOFF_FIRST_MS = const(1000)
_BACKOFF_MAX_MS = const(60000)
_SETUP_RETRY_MS = const(300000)
_AP_LINGER_MS = const(30000)
_CLIENT_HOLD_MS = const(120000)
_JOIN_ATTEMPTS = const(2)  # a join from the portal: tries before it counts as failed


def reason_of(status):
    """The R_* a WLAN status code means, R_NONE for a code that is no
    failure (idle, connecting, got an address)."""
    if status == _STAT_GOT_IP or status == _STAT_CONNECTING or status == _STAT_IDLE:
        return R_NONE
    if status == _STAT_WRONG_PASSWORD or status == _STAT_HANDSHAKE_TIMEOUT or status == _STAT_4WAY_HANDSHAKE_TIMEOUT:
        return R_WRONG_PASSWORD
    if status == _STAT_NO_AP_FOUND or _STAT_NO_AP_LOW <= status <= _STAT_NO_AP_HIGH:
        return R_NO_AP
    if status == _STAT_BEACON_TIMEOUT:
        return R_LOST
    return R_FAILED


class WifiState:
    def __init__(self, setup_after_ms=300000, log=None, connect_timeout_ms=_CONNECT_TIMEOUT_MS,
                 backoff_first_ms=_BACKOFF_FIRST_MS, backoff_max_ms=_BACKOFF_MAX_MS,
                 setup_retry_ms=_SETUP_RETRY_MS, ap_linger_ms=_AP_LINGER_MS, client_hold_ms=_CLIENT_HOLD_MS):
        self.setup_after_ms = setup_after_ms  # 0: never leave station mode on failures
        self.log = log  # eventlog.EventLog or None
        self.connect_timeout_ms = connect_timeout_ms
        self.backoff_first_ms = backoff_first_ms
        self.backoff_max_ms = backoff_max_ms
        self.setup_retry_ms = setup_retry_ms
        self.ap_linger_ms = ap_linger_ms
        self.client_hold_ms = client_hold_ms
        self.state = OFF
        self.reason = R_NONE  # why the station is down (or R_NONE)
        self.code = 0  # the status code behind `reason`
        self.setup_cause = R_NONE  # why set-up mode started (R_NO_CREDENTIALS, R_BUTTON, R_FAILING)
        self.has_credentials = False
        self.ap = 0  # 1: the access point should be up
        self.backoff_ms = backoff_first_ms  # the next pause after a failure
        self.next_ms = 0  # DOWN / SETUP: ticks of the next attempt
        self.since_ms = 0  # ticks the current attempt (or state) began
        self.down_ms = 0  # ticks the station last stopped working (or first tried)
        self.ap_until = 0  # UP with the access point lingering: ticks it goes
        self.client_ms = -1  # ticks of the last portal request (-1: none lately)
        self.tries_left = 0  # JOINING: attempts left
        self.attempts = 0  # connection attempts since start
        self.failures = 0  # failed attempts and dropped connections since start
        self.rssi = 0  # dBm while UP (0: unknown), kept by the task
        self.changes = 0  # bumped on every state change (the task publishes it)
        self._logged = -1  # the state and reason last put in the event log
        self._logged_b = -1

    # -- events ------------------------------------------------------------------------

    def start(self, now, has_credentials, button_held):
        self.has_credentials = has_credentials
        self.down_ms = now
        if button_held:
            return self._setup(now, R_BUTTON)
        if not has_credentials:
            return self._setup(now, R_NO_CREDENTIALS)
        return self._attempt(now, CONNECTING)

    def join(self, now):
        """New credentials (from the portal): try them now. In set-up mode
        the access point stays up until they work."""
        self.has_credentials = True
        self.backoff_ms = self.backoff_first_ms
        self.client_ms = -1
        if self.ap:
            self.tries_left = _JOIN_ATTEMPTS
            return self._attempt(now, JOINING)
        self.down_ms = now
        return self._attempt(now, CONNECTING)

    def force_setup(self, now, cause):
        """Set-up mode now (the BOOT button, a request)."""
        actions = A_DISCONNECT if self.state == CONNECTING or self.state == UP or self.state == JOINING else 0
        return actions | self._setup(now, cause)

    def client_seen(self, now):
        self.client_ms = now

    def radio_failed(self, now):
        """The radio refused what the last actions asked (OSError)."""
        return self._failed(now, R_RADIO, 0)

    def step(self, now, status, associated=0):
        """One pass: `status` is WLAN.status() of the station, `associated`
        1 when it is joined to an access point (asked only once overdue())."""
        if self.client_ms >= 0 and ticks_diff(now, self.client_ms) >= self.client_hold_ms:
            self.client_ms = -1
        state = self.state
        if state == CONNECTING or state == JOINING:
            if status == _STAT_GOT_IP:
                return self._up(now)
            reason = reason_of(status)
            if reason != R_NONE:
                return self._failed(now, reason, status)
            if self.overdue(now):
                return self._failed(now, R_NO_IP if associated else R_TIMEOUT, status)
            return 0
        if state == UP:
            if status != _STAT_GOT_IP:
                reason = reason_of(status)
                return self._lost(now, reason if reason != R_NONE and reason != R_FAILED else R_LOST, status)
            if self.ap and ticks_diff(now, self.ap_until) >= 0:
                self.ap = 0
                self.changes = wrap_add(self.changes, 1)
                return A_AP_OFF
            return 0
        if state == DOWN:
            if self.setup_after_ms > 0 and ticks_diff(now, self.down_ms) >= self.setup_after_ms:
                return self._setup(now, R_FAILING)
            if ticks_diff(now, self.next_ms) >= 0:
                return self._attempt(now, CONNECTING)
            return 0
        if state == SETUP:
            if self.has_credentials and self.setup_retry_ms > 0 and ticks_diff(now, self.next_ms) >= 0:
                if self.client_ms >= 0:  # someone is using the portal: not now
                    self.next_ms = ticks_add(self.client_ms, self.client_hold_ms)
                    return 0
                self.tries_left = 1
                return self._attempt(now, JOINING)
        return 0

    def overdue(self, now):
        """An attempt has run past its time (then step() wants `associated`)."""
        return (self.state == CONNECTING or self.state == JOINING) and \
            ticks_diff(now, self.since_ms) >= self.connect_timeout_ms

    def retry_in(self, now):
        """ms until the next attempt (DOWN, SETUP with a network), else -1."""
        if self.state == DOWN or (self.state == SETUP and self.has_credentials and self.setup_retry_ms > 0):
            d = ticks_diff(self.next_ms, now)
            return d if d > 0 else 0
        return -1

    def ap_left(self, now):
        """ms the lingering access point has left (UP), else -1."""
        if self.state == UP and self.ap:
            d = ticks_diff(self.ap_until, now)
            return d if d > 0 else 0
        return -1

    def setup_mode(self):
        return self.state == SETUP or self.state == JOINING

    def connected(self):
        return self.state == UP

    # -- transitions ----------------------------------------------------------------------

    def _attempt(self, now, state):
        self.state = state
        self.since_ms = now
        self.attempts = wrap_add(self.attempts, 1)
        self._changed(now)
        return A_CONNECT

    def _up(self, now):
        self.state = UP
        self.reason = R_NONE
        self.code = 0
        self.setup_cause = R_NONE
        self.backoff_ms = self.backoff_first_ms
        self.since_ms = now
        if self.ap:
            self.ap_until = ticks_add(now, self.ap_linger_ms)
        self._changed(now)
        return 0

    def _failed(self, now, reason, code):
        self.reason = reason
        self.code = code
        state = self.state
        if state == JOINING:
            self.failures = wrap_add(self.failures, 1)
            self.tries_left -= 1
            if self.tries_left > 0:
                return self._attempt(now, JOINING)
            self.state = SETUP
            self.next_ms = ticks_add(now, self.setup_retry_ms)
            self._changed(now)
            return A_DISCONNECT
        if state == CONNECTING or state == UP:
            self.failures = wrap_add(self.failures, 1)
            return self._down(now)
        self.changes = wrap_add(self.changes, 1)  # (SETUP, DOWN: the reason is news, the state is not)
        return 0

    def _lost(self, now, reason, code):
        self.reason = reason
        self.code = code
        self.failures = wrap_add(self.failures, 1)
        self.down_ms = now
        self.backoff_ms = self.backoff_first_ms
        actions = self._down(now)
        if self.ap:
            self.ap = 0
            actions |= A_AP_OFF
        return actions

    def _down(self, now):
        self.state = DOWN
        self.next_ms = ticks_add(now, self.backoff_ms)
        b = self.backoff_ms
        self.backoff_ms = b * 2 if b < self.backoff_max_ms // 2 else self.backoff_max_ms
        self._changed(now)
        return A_DISCONNECT

    def _setup(self, now, cause):
        self.state = SETUP
        self.setup_cause = cause
        self.next_ms = ticks_add(now, self.setup_retry_ms)
        self.tries_left = 0
        actions = A_SCAN
        if not self.ap:
            self.ap = 1
            actions |= A_AP_ON
        self._changed(now)
        return actions

    def _changed(self, now):
        # Every change is published (changes); the event log gets the news
        # only, so a long outage does not push everything else out of it:
        # no attempt (its outcome is the news), no failure that repeats the
        # one before, no background retry of set-up mode.
        self.changes = wrap_add(self.changes, 1)
        log = self.log
        state = self.state
        if log is None or state == CONNECTING:
            return
        b = self.setup_cause if state == SETUP else self.reason
        if state == JOINING:
            if self.tries_left != _JOIN_ATTEMPTS:
                return  # a retry of set-up mode, or a join's second try
        elif state == self._logged and b == self._logged_b:
            return
        self._logged = state
        self._logged_b = b
        log.add(EV_WIFI, state, b, self.reason if state == SETUP else self.code, now)
