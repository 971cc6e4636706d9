# MicroPython only: the link engine's steady state (poll, reply, decode,
# publish, state keeping, statistics, lost and corrupted replies, stale and
# recovered states, alarm checks, late replies and the adaptive timeout, the
# loss window and its diagnosis, a display coming and going) allocates
# nothing, and the heap stays flat over 2000 polls.
import gc

import micropython

from ant import alarms, commands, new
from ant.status import Status
from eventlog import EventLog
from link.engine import LinkConfig, LinkEngine
from link.model import LINE_INTERMITTENT, LINK_ASLEEP, LINK_LOST, LINK_OK, LINK_STALE, Model
from ticks import ticks_add

_STEP = 5


class Loop:
    """A bus with one canned reply, driven without allocating."""

    def __init__(self, poll_ms=250, reply_timeout_ms=0):
        st = Status()
        st.cell_count = 16
        st.probe_slots = 2
        for i in range(16):
            st.cells_mv[i] = 3300 + i
        st.pack_cv = 5300
        st.current_da = -42
        st.charge_mos = 2  # an alarm to check on every status
        st.protection[0] = 0x02
        self.reply = new.build_status(st)
        self.bad = bytearray(self.reply)
        self.bad[40] ^= 0x10  # fails the CRC
        self.alarm_hits = 0
        self.alarm_count = 0
        self.lose = 0  # lose every n-th reply (0: none)
        self.corrupt = 0  # corrupt every n-th reply
        self.silent_from = -1  # stop answering after this many polls, for a while
        self.silent_polls = 0
        self.model = Model()
        config = LinkConfig()
        config.poll_ms = poll_ms
        config.reply_timeout_ms = reply_timeout_ms
        self.engine = LinkEngine(self.model, config, EventLog(16))
        self.now = 0x3FFFF000
        self.reply_at = -1
        self.polls = 0
        self.delay = 8  # steps from a request to its reply (40 ms)
        self.display_every = 0  # steps between a display's requests (0: none)
        self.display_request = commands.status_request("new")
        self.display_reply_at = -1
        self.steps = 0

    def run(self, steps):
        engine = self.engine
        reply = self.reply
        n = len(reply)
        for _ in range(steps):
            now = self.now
            if self.reply_at == 0:
                self.reply_at = -1
                polls = self.polls
                if self.silent_from >= 0 and self.silent_from <= polls < self.silent_from + self.silent_polls:
                    pass
                elif self.lose and polls % self.lose == 0:
                    pass
                elif self.corrupt and polls % self.corrupt == 0:
                    engine.feed(self.bad, n, now)
                else:
                    engine.feed(reply, n, now)
                    st = self.model.status
                    if alarms.active(st, alarms.CELL_OVER_VOLTAGE):
                        self.alarm_hits += 1
                    self.alarm_count = alarms.count(st)
            elif self.reply_at > 0:
                self.reply_at -= 1
            self.steps += 1
            if self.display_every and self.steps % self.display_every == 0:
                req = self.display_request
                engine.feed(req, len(req), now)
                self.display_reply_at = 8
            elif self.display_reply_at == 0:
                self.display_reply_at = -1
                engine.feed(reply, n, now)
            elif self.display_reply_at > 0:
                self.display_reply_at -= 1
            engine.tick(now)
            if engine.tx is not None:
                engine.sent(now)
                self.reply_at = self.delay
                self.polls += 1
            self.now = ticks_add(now, _STEP)


def test_polling_and_decoding_allocate_nothing():
    loop = Loop()
    loop.run(400)  # detection, first publish, state changes
    assert loop.model.link == LINK_OK
    frames = loop.engine.stats.frames_ok
    micropython.heap_lock()
    try:
        loop.run(2000)  # 10 s of simulated time, 40 polls
    finally:
        micropython.heap_unlock()
    assert loop.engine.stats.frames_ok - frames == 40
    assert loop.model.link == LINK_OK and loop.model.status.current_da == -42


def free_heap_before_and_after_2000_polls(loop):
    loop.run(400)  # warmed up: detected, buffers sized
    gc.collect()
    before = gc.mem_free()
    while loop.polls < 2040:
        loop.run(1000)
    gc.collect()
    return before, gc.mem_free()


def test_heap_does_not_grow_over_2000_polls():
    loop = Loop()
    before, after = free_heap_before_and_after_2000_polls(loop)
    assert loop.polls >= 2000
    assert before - after <= 0, (before, after)


def test_lost_and_corrupted_replies_and_a_stale_spell_allocate_nothing():
    loop = Loop()
    loop.lose = 7
    loop.corrupt = 5
    loop.run(400)
    assert loop.model.link == LINK_OK
    loop.silent_from = loop.polls + 5
    loop.silent_polls = 14  # > 2.5 s of silence at 250 ms polls: stale
    stale_seen = False
    micropython.heap_lock()
    try:
        for _ in range(40):
            loop.run(100)
            if loop.model.link == LINK_STALE:
                stale_seen = True
    finally:
        micropython.heap_unlock()
    stats = loop.engine.stats
    assert stale_seen and loop.model.link == LINK_OK
    assert stats.timeouts >= 14 and stats.checksum_errors >= 5 and stats.resyncs >= 5
    assert loop.alarm_hits > 0 and loop.alarm_count == 2


def test_heap_does_not_grow_over_2000_polls_with_faults():
    loop = Loop()
    loop.lose = 11
    loop.corrupt = 13
    before, after = free_heap_before_and_after_2000_polls(loop)
    assert loop.polls >= 2000 and loop.engine.stats.timeouts > 100
    assert before - after <= 0, (before, after)


def test_a_week_of_silence_allocates_nothing():
    # Hourly ticks for eight days: the engine saturates its stamps (data age,
    # last byte) past 3.1 days, without allocating, and never shows the old
    # status as live.
    loop = Loop()
    loop.run(400)
    assert loop.model.link == LINK_OK
    loop.silent_from = 0
    loop.silent_polls = 1 << 29  # silent from now on
    engine = loop.engine
    model = loop.model
    shown_live = 0  # hours in which the old status counted as OK or stale
    micropython.heap_lock()
    try:
        for _ in range(24 * 8):
            loop.run(20)
            loop.now = ticks_add(loop.now, 3600000)
            engine.tick(loop.now)
            if model.link != LINK_LOST and model.link != LINK_ASLEEP:
                shown_live += 1
    finally:
        micropython.heap_unlock()
    assert shown_live == 0, shown_live
    assert model.age_ms(loop.now) >= 0x10000000


def test_late_replies_an_adapting_timeout_and_intermittent_spells_allocate_nothing():
    loop = Loop(1000)
    loop.run(400)
    assert loop.model.link == LINK_OK
    loop.delay = 104  # 520 ms: beyond the default reply timeout
    loop.lose = 3
    loop.run(2000)  # warmed up: late replies, losses, the window filled
    engine = loop.engine
    late = engine.stats.late_replies
    micropython.heap_lock()
    try:
        loop.run(4000)  # 20 s
        loop.silent_from = loop.polls + 1
        loop.silent_polls = 3  # a stale spell in an intermittent record
        intermittent_seen = False
        for _ in range(80):
            loop.run(50)
            if loop.model.link == LINK_STALE and loop.model.line == LINE_INTERMITTENT:
                intermittent_seen = True
    finally:
        micropython.heap_unlock()
    assert late >= 1 and engine.reply_timeout_ms() > 520
    assert intermittent_seen and engine.loss_pct() > 20
    assert not loop.model.passive and engine.stats.foreign_frames == 0


def test_every_reply_late_allocates_nothing():
    # A fixed 400 ms timeout and replies after 520 ms: every reply is late,
    # and taken as ours.
    loop = Loop(1000, 400)
    loop.run(400)
    loop.delay = 104
    loop.run(1000)
    engine = loop.engine
    late = engine.stats.late_replies
    micropython.heap_lock()
    try:
        loop.run(4000)  # 20 s, 20 polls
    finally:
        micropython.heap_unlock()
    assert engine.stats.late_replies - late >= 19
    assert loop.model.link == LINK_OK and not loop.model.passive and engine.stats.foreign_frames == 0


def test_a_display_coming_and_going_allocates_nothing():
    loop = Loop(1000)
    loop.run(400)
    loop.display_every = 200  # a display polling each second
    loop.run(1000)
    assert loop.model.passive
    micropython.heap_lock()
    try:
        loop.run(2000)  # passive, fed by the display's replies
        passive = loop.model.passive
        loop.display_every = 0  # unplugged
        loop.run(1000)
    finally:
        micropython.heap_unlock()
    assert passive and not loop.model.passive and loop.model.link == LINK_OK
