# The Wi-Fi state machine's pass allocates nothing (lib/wifistate.py), with
# the event log attached, through its transitions: connecting, up, a drop,
# failures with backoff, set-up mode and a join from the portal, across the
# ticks wrap; and the NTP schedule's checks. Under micropython.heap_lock(),
# on the ESP32's 31-bit small ints. MicroPython only (mp_test_*).
import micropython

from eventlog import EventLog
from ntp import NtpSchedule
from ticks import ticks_add
from wifistate import SETUP, UP, WifiState

GOT_IP, CONNECTING, AUTH_FAIL, BEACON_TIMEOUT = 1010, 1001, 202, 200


def test_the_state_machine_pass_allocates_nothing():
    m = WifiState(60000, EventLog(16), setup_retry_ms=30000)
    now = 0x3FFF0000
    m.start(now, True, False)
    micropython.heap_lock()
    try:
        for i in range(4000):  # 1000 s in 250 ms steps
            now = ticks_add(now, 250)
            phase = i // 400
            if phase % 3 == 0:
                status = GOT_IP
            elif phase % 3 == 1:
                status = BEACON_TIMEOUT if m.state == UP else AUTH_FAIL
            else:
                status = CONNECTING
            m.step(now, status, 1 if m.overdue(now) else 0)
            if i == 2000:
                m.join(now)
            if i == 2400:
                m.client_seen(now)
            if m.state == SETUP and i > 3000:
                m.force_setup(now, 9)
            m.retry_in(now)
            m.ap_left(now)
    finally:
        micropython.heap_unlock()
    assert m.attempts > 10 and m.failures > 5, (m.attempts, m.failures)


def test_the_ntp_schedule_checks_allocate_nothing():
    s = NtpSchedule()
    now = 0x3FFFF000
    micropython.heap_lock()
    try:
        for i in range(1000):
            now = ticks_add(now, 250)
            if s.due(now):
                if i % 2:
                    s.ok(now)
                else:
                    s.failed(now, -5)
            s.age_s(now)
    finally:
        micropython.heap_unlock()
    assert s.syncs + s.failures > 2
