# The Wi-Fi state machine (lib/wifistate.py) against a simulated radio: a
# network that answers a join after JOIN_MS with the status codes of
# MicroPython's ESP32 port, and a clock that wraps. Every transition of the
# module's header: station mode with backoff, reconnecting forever, the
# reasons from the status codes, set-up mode (no network, the BOOT button,
# failing too long), joining from the portal with the access point kept up,
# the retries of set-up mode. Runs under CPython and MicroPython.
from eventlog import EV_WIFI, EventLog
from ticks import ticks_add, ticks_diff
from wifistate import (
    A_AP_OFF,
    A_AP_ON,
    A_CONNECT,
    A_DISCONNECT,
    A_SCAN,
    CONNECTING,
    DOWN,
    JOINING,
    OFF,
    R_BUTTON,
    R_FAILED,
    R_FAILING,
    R_LOST,
    R_NO_AP,
    R_NO_CREDENTIALS,
    R_NO_IP,
    R_NONE,
    R_RADIO,
    R_TIMEOUT,
    R_WRONG_PASSWORD,
    SETUP,
    UP,
    WifiState,
    reason_of,
)

# The ESP32 port's codes (MicroPython v1.28 ports/esp32/network_wlan.c:
# network.STAT_* and the ESP-IDF wifi_err_reason_t values status() passes on).
IDLE, CONNECTING_CODE, GOT_IP = 1000, 1001, 1010
BEACON_TIMEOUT, NO_AP_FOUND, AUTH_FAIL, ASSOC_FAIL, HANDSHAKE_TIMEOUT = 200, 201, 202, 203, 204
FOURWAY_HANDSHAKE_TIMEOUT = 15
NO_AP_COMPATIBLE, NO_AP_AUTHMODE, NO_AP_RSSI = 210, 211, 212

T0 = 0x3FFF0000  # the ticks wrap about 65 s in
STEP = 250  # the task's period
JOIN_MS = 1500  # what a join takes in this radio
MINUTE = 60000


class Radio:
    """What the machine's actions do to a simulated station: a join started
    by A_CONNECT ends JOIN_MS later with `result` (GOT_IP, a failure code,
    or CONNECTING_CODE forever); `up` False drops a connection
    (BEACON_TIMEOUT). Records every action with its time."""

    def __init__(self, result=GOT_IP, associated=0):
        self.result = result
        self.associated = associated
        self.status = IDLE
        self.joined_at = None
        self.ap = False
        self.connects = []  # ms since start of each A_CONNECT
        self.ap_changes = []  # (ms since start, on)
        self.scans = 0
        self.up = True

    def apply(self, actions, t):
        if actions & A_DISCONNECT:
            self.status = IDLE
            self.joined_at = None
        if actions & A_CONNECT:
            self.status = CONNECTING_CODE
            self.joined_at = t
            self.connects.append(t)
        if actions & A_AP_ON:
            assert not self.ap, "access point started twice"
            self.ap = True
            self.ap_changes.append((t, True))
        if actions & A_AP_OFF:
            assert self.ap, "access point stopped while down"
            self.ap = False
            self.ap_changes.append((t, False))
        if actions & A_SCAN:
            self.scans += 1

    def step(self, t):
        if self.status == GOT_IP and not self.up:
            self.status = BEACON_TIMEOUT
        elif self.status == CONNECTING_CODE and t - self.joined_at >= JOIN_MS:
            self.status = self.result if self.result != GOT_IP or self.up else NO_AP_FOUND
        return self.status


class Sim:
    def __init__(self, credentials=True, button=False, radio=None, **kw):
        self.log = EventLog(64)
        kw.setdefault("setup_after_ms", 5 * MINUTE)
        self.m = WifiState(log=self.log, **kw)
        self.radio = radio or Radio()
        self.now = T0
        self.radio.apply(self.m.start(self.now, credentials, button), 0)

    def t(self):
        return ticks_diff(self.now, T0)

    def run(self, ms, until=None):
        """Step every STEP ms for ms (or until until(m) holds); the ms run."""
        end = ticks_add(self.now, ms)
        while ticks_diff(end, self.now) > 0:
            self.now = ticks_add(self.now, STEP)
            m = self.m
            status = self.radio.step(self.t())
            associated = self.radio.associated if m.overdue(self.now) else 0
            self.radio.apply(m.step(self.now, status, associated), self.t())
            if until is not None and until(m):
                return
        assert until is None, "condition not reached in %d ms (state %d)" % (ms, self.m.state)

    def join(self):
        self.radio.apply(self.m.join(self.now), self.t())

    def events(self):
        return [(e[1], e[2], e[3]) for e in self.log.to_list(64) if e[0] == EV_WIFI]


def test_every_status_code_has_its_reason():
    for code in (GOT_IP, CONNECTING_CODE, IDLE):
        assert reason_of(code) == R_NONE
    for code in (AUTH_FAIL, HANDSHAKE_TIMEOUT, FOURWAY_HANDSHAKE_TIMEOUT):
        assert reason_of(code) == R_WRONG_PASSWORD, code
    for code in (NO_AP_FOUND, NO_AP_COMPATIBLE, NO_AP_AUTHMODE, NO_AP_RSSI):
        assert reason_of(code) == R_NO_AP, code
    assert reason_of(BEACON_TIMEOUT) == R_LOST
    for code in (ASSOC_FAIL, 2, 8, 205, 999):
        assert reason_of(code) == R_FAILED, code


def test_first_boot_without_a_network_is_set_up_mode():
    s = Sim(credentials=False)
    assert s.m.state == SETUP and s.m.setup_cause == R_NO_CREDENTIALS
    assert s.radio.ap and s.radio.scans == 1 and s.radio.connects == []
    s.run(60 * MINUTE)  # nothing to retry without a network: it waits for the portal
    assert s.m.state == SETUP and s.radio.connects == [] and s.radio.ap
    assert s.events() == [(SETUP, R_NO_CREDENTIALS, R_NONE)]


def test_the_boot_button_means_set_up_even_with_a_network():
    s = Sim(credentials=True, button=True)
    assert s.m.state == SETUP and s.m.setup_cause == R_BUTTON and s.radio.ap
    assert s.radio.connects == []


def test_the_button_later_in_station_mode_drops_the_attempt():
    s = Sim()
    assert s.m.state == CONNECTING
    actions = s.m.force_setup(s.now, R_BUTTON)
    assert actions & A_DISCONNECT and actions & A_AP_ON and s.m.state == SETUP


def test_station_joins_and_stays_up():
    s = Sim()
    assert s.m.state == CONNECTING and s.radio.connects == [0]
    s.run(10000, until=lambda m: m.state == UP)
    assert s.m.connected() and s.m.reason == R_NONE and not s.radio.ap
    assert JOIN_MS <= s.t() <= JOIN_MS + STEP
    s.run(30 * MINUTE)
    assert s.m.state == UP and len(s.radio.connects) == 1
    assert s.events() == [(UP, R_NONE, 0)]  # an attempt is no news; its outcome is


def test_failures_are_named_from_the_status_code():
    for code, reason in ((AUTH_FAIL, R_WRONG_PASSWORD), (FOURWAY_HANDSHAKE_TIMEOUT, R_WRONG_PASSWORD),
                         (NO_AP_FOUND, R_NO_AP), (NO_AP_COMPATIBLE, R_NO_AP), (ASSOC_FAIL, R_FAILED)):
        s = Sim(radio=Radio(result=code))
        s.run(10000, until=lambda m: m.state == DOWN)
        assert s.m.reason == reason and s.m.code == code, code
        assert s.events()[-1] == (DOWN, reason, code)


def test_a_join_without_an_answer_is_no_ip_when_joined_else_a_timeout():
    # The attempt's time (20 s) runs out with the status still CONNECTING:
    # joined to the access point but no DHCP lease, or nothing at all.
    for associated, reason in ((1, R_NO_IP), (0, R_TIMEOUT)):
        s = Sim(radio=Radio(result=CONNECTING_CODE, associated=associated))
        s.run(30000, until=lambda m: m.state == DOWN)
        assert s.m.reason == reason and 20000 <= s.t() <= 20000 + STEP, (associated, s.t())


def test_backoff_doubles_up_to_its_bound_and_retries_forever():
    # A network that never comes, set-up mode disabled (setup_after_ms 0):
    # attempts forever, the pauses 1, 2, 4 ... s up to 60 s and no more.
    s = Sim(radio=Radio(result=NO_AP_FOUND), setup_after_ms=0)
    s.run(6 * 3600 * 1000)  # six hours
    starts = s.radio.connects
    gaps = [b - a - JOIN_MS for a, b in zip(starts, starts[1:])]  # the pause after each failure
    assert gaps[:7] == [1000, 2000, 4000, 8000, 16000, 32000, 60000], gaps[:8]
    assert all(g == 60000 for g in gaps[6:])
    assert len(starts) >= 6 * 60 - 10  # about one a minute once at the bound
    assert s.m.state in (DOWN, CONNECTING) and not s.radio.ap
    assert s.m.backoff_ms == 60000 and s.m.failures == len(starts) - (1 if s.m.state == CONNECTING else 0)


def test_a_long_outage_leaves_a_few_events_not_hundreds():
    # The 64-entry event log is shared with the link and the relays: six
    # hours of retries add only what changed (lost, then not found), and
    # set-up mode's retries add nothing.
    s = Sim()
    s.run(10000, until=lambda m: m.state == UP)
    s.radio.up = False
    s.run(6 * 3600 * 1000)
    assert len(s.radio.connects) > 60 and s.m.state in (SETUP, JOINING)
    assert s.events() == [(UP, R_NONE, 0), (DOWN, R_LOST, BEACON_TIMEOUT), (DOWN, R_NO_AP, NO_AP_FOUND),
                          (SETUP, R_FAILING, R_NO_AP)]
    s.radio.up = True
    s.run(6 * MINUTE, until=lambda m: m.state == UP)
    assert s.events()[-1] == (UP, R_NONE, 0) and len(s.events()) == 5


def test_retry_schedule_survives_the_ticks_wrap():
    s = Sim(radio=Radio(result=NO_AP_FOUND), setup_after_ms=0)
    s.now = 0x3FFFFFFF - 5000  # wraps 5 s in
    s.radio.apply(s.m.join(s.now), s.t())
    s.run(200000)
    starts = s.radio.connects[1:]
    gaps = [b - a - JOIN_MS for a, b in zip(starts, starts[1:])]
    assert gaps[:5] == [1000, 2000, 4000, 8000, 16000], gaps


def test_a_dropped_connection_is_retried_at_once_then_with_backoff():
    s = Sim()
    s.run(10000, until=lambda m: m.state == UP)
    s.radio.up = False  # the access point goes away
    s.run(5000, until=lambda m: m.state == DOWN)
    lost = s.t()
    assert s.m.reason == R_LOST and s.m.code == BEACON_TIMEOUT
    s.run(10 * MINUTE, until=lambda m: m.state == SETUP)  # 5 minutes of failures (the default)
    assert 5 * MINUTE <= s.t() - lost <= 5 * MINUTE + STEP and s.radio.ap
    retries = [t - lost for t in s.radio.connects[1:]]
    assert 1000 <= retries[0] <= 1000 + STEP  # the first retry after 1 s
    gaps = [b - a - JOIN_MS for a, b in zip(retries, retries[1:])]
    assert gaps[:4] == [2000, 4000, 8000, 16000], gaps
    s.radio.up = True  # it is back: set-up mode finds it at its next retry
    s.run(6 * MINUTE, until=lambda m: m.state == UP)
    assert s.radio.ap  # lingering for the phone, then closed
    s.run(60000, until=lambda m: not m.ap)
    assert not s.radio.ap


def test_wrong_password_for_n_minutes_means_set_up_mode():
    s = Sim(radio=Radio(result=AUTH_FAIL), setup_after_ms=2 * MINUTE)
    s.run(3 * MINUTE, until=lambda m: m.state == SETUP)
    assert s.m.setup_cause == R_FAILING and s.m.reason == R_WRONG_PASSWORD
    assert 2 * MINUTE <= s.t() <= 2 * MINUTE + STEP and s.radio.ap and s.radio.scans == 1
    assert s.events()[-1] == (SETUP, R_FAILING, R_WRONG_PASSWORD)


def test_set_up_mode_retries_the_network_but_not_while_the_portal_is_used():
    s = Sim(radio=Radio(result=AUTH_FAIL), setup_after_ms=MINUTE, setup_retry_ms=5 * MINUTE)
    s.run(2 * MINUTE, until=lambda m: m.state == SETUP)
    entered = s.t()
    n = len(s.radio.connects)
    s.run(5 * MINUTE - 2 * STEP)
    assert len(s.radio.connects) == n  # not before setup_retry_ms
    s.run(4 * STEP)
    assert len(s.radio.connects) == n + 1 and s.m.state == JOINING and s.radio.ap
    s.run(10000, until=lambda m: m.state == SETUP)  # still the wrong password: one try, back to set-up
    assert s.m.reason == R_WRONG_PASSWORD and s.radio.ap
    # A phone on the portal holds the retries off for client_hold_ms after its last request.
    due = s.t() + 5 * MINUTE
    s.run(due - s.t() - 10 * STEP)
    s.m.client_seen(s.now)
    seen = s.t()
    s.run(2 * MINUTE - 4 * STEP)
    assert len(s.radio.connects) == n + 1
    s.run(8 * STEP, until=lambda m: m.state == JOINING)
    assert seen + 2 * MINUTE <= s.t() <= seen + 2 * MINUTE + STEP
    assert s.t() - entered > 5 * MINUTE


def test_joining_from_the_portal_keeps_the_access_point_until_it_works():
    s = Sim(credentials=False, ap_linger_ms=30000)
    s.run(10000)
    s.join()  # the portal saved a network
    assert s.m.state == JOINING and s.radio.ap
    s.run(10000, until=lambda m: m.state == UP)
    assert s.radio.ap and 0 < s.m.ap_left(s.now) <= 30000  # the phone still sees the result
    up_at = s.t()
    s.run(40000, until=lambda m: not m.ap)
    assert not s.radio.ap and 30000 <= s.t() - up_at <= 30000 + STEP
    assert s.radio.ap_changes[-1][1] is False and s.m.state == UP


def test_a_failed_join_from_the_portal_tries_twice_then_stays_in_set_up():
    s = Sim(credentials=False, radio=Radio(result=AUTH_FAIL))
    s.join()
    s.run(20000, until=lambda m: m.state == SETUP)
    assert len(s.radio.connects) == 2 and s.m.reason == R_WRONG_PASSWORD and s.radio.ap
    assert s.m.failures == 2


def test_the_link_dropping_while_the_access_point_lingers_closes_it():
    s = Sim(credentials=False)
    s.join()
    s.run(10000, until=lambda m: m.state == UP)
    s.radio.up = False
    s.run(5000, until=lambda m: m.state == DOWN)
    assert not s.radio.ap and s.m.reason == R_LOST


def test_new_credentials_in_station_mode_join_at_once():
    s = Sim(radio=Radio(result=AUTH_FAIL))
    s.run(30000)
    assert s.m.state in (DOWN, CONNECTING) and s.m.backoff_ms > 1000
    s.radio.result = GOT_IP
    s.join()
    assert s.m.state == CONNECTING and s.m.backoff_ms == 1000
    s.run(10000, until=lambda m: m.state == UP)


def test_a_radio_refusal_counts_as_a_failure():
    s = Sim()
    actions = s.m.radio_failed(s.now)
    s.radio.apply(actions, s.t())
    assert s.m.state == DOWN and s.m.reason == R_RADIO and actions & A_DISCONNECT
    s.run(5000, until=lambda m: m.state == UP)


def test_off_until_started():
    m = WifiState()
    assert m.state == OFF and m.step(T0, GOT_IP) == 0 and m.retry_in(T0) == -1 and not m.setup_mode()
