# SNTP packets and schedule (lib/ntp.py): the request's layout (RFC 4330
# section 5), a server reply turned into Unix time, the replies that must be
# refused, the era rollover of 2036, and the retry / resync schedule.
# Runs under CPython and MicroPython.
from ntp import (
    E_BAD_TIME,
    E_NOT_OURS,
    E_SHORT,
    E_TIMEOUT,
    E_UNSYNCED,
    ERRORS,
    SIZE,
    NtpSchedule,
    parse,
    request,
)
from ticks import ticks_add

NONCE = bytes([0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88])
NTP_UNIX_OFFSET = 2208988800  # RFC 868 / RFC 5905: 1900-01-01 to 1970-01-01 in seconds
# 2025-06-01 21:00:30 UTC: 20240 days after 1970-01-01 (55 years with 14 leap
# days, then 151 days of 2025 to June 1st), plus 21:00:30.
T_2025 = 20240 * 86400 + 21 * 3600 + 30


def reply(unix, nonce=NONCE, mode=4, leap=0, stratum=2, frac=0):
    b = bytearray(SIZE)
    b[0] = leap << 6 | 4 << 3 | mode
    b[1] = stratum
    b[24:32] = nonce  # origin: our transmit timestamp
    secs = (unix + NTP_UNIX_OFFSET) % (1 << 32)
    for i in range(4):
        b[40 + i] = secs >> (24 - 8 * i) & 0xFF
        b[44 + i] = frac >> (24 - 8 * i) & 0xFF
    return b


def test_the_date_used_here_is_what_cpython_says():
    try:
        import calendar
    except ImportError:  # MicroPython: the arithmetic above stands alone
        return
    assert calendar.timegm((2025, 6, 1, 21, 0, 30, 0, 0, 0)) == T_2025


def test_request_is_a_version_4_client_packet_with_our_nonce():
    buf = bytearray(b"\xff" * SIZE)
    request(buf, NONCE)
    assert buf[0] == 0x23  # leap 0, version 4, mode 3 (client)
    assert bytes(buf[40:48]) == NONCE  # the transmit timestamp the server echoes
    assert all(b == 0 for b in buf[1:40])


def test_a_server_reply_gives_unix_time():
    assert parse(reply(T_2025), SIZE, NONCE) == T_2025
    assert parse(reply(T_2025, frac=0x80000000), SIZE, NONCE) == T_2025 + 1  # rounded to the nearest second
    assert parse(reply(T_2025, frac=0x7FFFFFFF), SIZE, NONCE) == T_2025
    assert parse(reply(T_2025, mode=5), SIZE, NONCE) == T_2025  # broadcast mode is a server too


def test_after_the_2036_rollover_the_era_is_counted():
    # 2040-01-01 00:00:00 UTC = 25567 days after 1970 (70 years with 17 leap days):
    # beyond 2**32 NTP seconds, so the field holds it modulo 2**32.
    t = 25567 * 86400
    assert t + NTP_UNIX_OFFSET > 1 << 32
    assert parse(reply(t), SIZE, NONCE) == t


def test_replies_that_are_not_answers_are_refused():
    assert parse(reply(T_2025), SIZE - 1, NONCE) == E_SHORT
    assert parse(reply(T_2025, nonce=b"\x00" * 8), SIZE, NONCE) == E_NOT_OURS  # a stray or forged packet
    assert parse(reply(T_2025, mode=3), SIZE, NONCE) == E_NOT_OURS  # another client's request
    assert parse(reply(T_2025, stratum=0), SIZE, NONCE) == E_UNSYNCED  # kiss-o'-death
    assert parse(reply(T_2025, stratum=16), SIZE, NONCE) == E_UNSYNCED
    assert parse(reply(T_2025, leap=3), SIZE, NONCE) == E_UNSYNCED  # the server has no time itself
    assert parse(reply(1600000000), SIZE, NONCE) == E_BAD_TIME  # 2020: before the device clock's epoch
    zero = reply(T_2025)
    zero[40:44] = b"\x00\x00\x00\x00"
    assert parse(zero, SIZE, NONCE) == E_BAD_TIME
    for e in (E_SHORT, E_NOT_OURS, E_UNSYNCED, E_BAD_TIME, E_TIMEOUT):
        assert ERRORS[-e]


def test_schedule_asks_at_once_then_every_12_hours():
    t0 = 0x3FFFF000
    s = NtpSchedule()
    assert s.due(t0) and not s.synced
    s.ok(t0)
    assert s.synced and s.syncs == 1 and s.error == 0
    assert not s.due(ticks_add(t0, 12 * 3600000 - 1)) and s.due(ticks_add(t0, 12 * 3600000))
    assert s.age_s(ticks_add(t0, 90000)) == 90


def test_schedule_retries_with_a_growing_bounded_pause():
    t = 1000
    s = NtpSchedule(retry_first_ms=4000, retry_max_ms=60000)
    pauses = []
    for _ in range(8):
        assert s.due(t)
        s.failed(t, E_TIMEOUT)
        start = t
        while not s.due(t):
            t += 100
        pauses.append(t - start)
    assert pauses == [4000, 8000, 16000, 32000, 60000, 60000, 60000, 60000]
    assert s.failures == 8 and s.error == E_TIMEOUT and not s.synced
    s.ok(t)
    s.failed(t, E_TIMEOUT)  # a success resets the pause
    assert not s.due(t + 3900) and s.due(t + 4000)


def test_a_schedule_left_days_behind_is_due():
    # The ticks wrap every 12.4 days: a next_ms left far behind (the network
    # was down for a week) must not read as "in the future".
    s = NtpSchedule()
    s.ok(0)
    assert s.due(0x3FFFFFFF & (7 * 86400000))
