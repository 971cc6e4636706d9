# MicroPython only: the link engine's steady state (poll, reply, decode,
# publish, state keeping) allocates nothing, and the heap stays flat over
# 2000 polls.
import gc

import micropython

from ant import new
from ant.status import Status
from eventlog import EventLog
from link.engine import LinkConfig, LinkEngine
from link.model import LINK_OK, Model
from ticks import ticks_add

_STEP = 5


class Loop:
    """A bus with one canned reply, driven without allocating."""

    def __init__(self):
        st = Status()
        st.cell_count = 16
        st.probe_slots = 2
        for i in range(16):
            st.cells_mv[i] = 3300 + i
        st.pack_cv = 5300
        st.current_da = -42
        self.reply = new.build_status(st)
        self.model = Model()
        config = LinkConfig()
        config.poll_ms = 250
        self.engine = LinkEngine(self.model, config, EventLog(16))
        self.now = 0x3FFFF000
        self.reply_at = -1
        self.polls = 0

    def run(self, steps):
        engine = self.engine
        reply = self.reply
        n = len(reply)
        for _ in range(steps):
            now = self.now
            if self.reply_at == 0:
                engine.feed(reply, n, now)
                self.reply_at = -1
            elif self.reply_at > 0:
                self.reply_at -= 1
            engine.tick(now)
            if engine.tx is not None:
                engine.sent(now)
                self.reply_at = 8  # 40 ms later
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


def test_heap_does_not_grow_over_2000_polls():
    loop = Loop()
    loop.run(400)
    gc.collect()
    before = gc.mem_free()
    while loop.polls < 2040:
        loop.run(1000)
    gc.collect()
    after = gc.mem_free()
    assert loop.polls >= 2000
    assert before - after <= 0, (before, after)
