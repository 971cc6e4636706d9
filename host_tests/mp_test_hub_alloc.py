# mp-heap: 192K
# The dispatcher's steady state allocates nothing: a producer publishing on
# every frame with faces subscribed (their wake-ups fired, their pending
# bits set) under micropython.heap_lock(), and a face's wait/wake cycle on
# the real asyncio scheduler. MicroPython only (mp_test_*).
import asyncio

import micropython

import catalog as C
from eventlog import EventLog
from hub import Hub
from link.engine import LinkEngine
from link.model import Model


def make_hub():
    model = Model()
    return Hub(model, LinkEngine(model, None, EventLog(8)), EventLog(8))


def test_publish_allocates_nothing():
    hub = make_hub()
    subs = [hub.subscribe(1 << C.P_STATUS | 1 << C.P_LINK) for _ in range(6)]
    other = hub.subscribe(1 << C.P_OUTPUTS)
    micropython.heap_lock()
    try:
        for _ in range(1000):
            hub.publish(C.P_STATUS)
            hub.publish(C.P_LINK)
            for s in subs:
                s.take()
    finally:
        micropython.heap_unlock()
    assert hub.counters[C.P_STATUS] == 1000 and other.take() == 0


def test_a_face_wait_and_wake_cycle_allocates_nothing():
    hub = make_hub()
    sub = hub.subscribe(1 << C.P_STATUS)
    woken = [0]
    wakeup = sub.wakeup

    async def face():
        while True:
            await wakeup.within(1000)  # a reused awaitable: no coroutine per wait
            if sub.take():
                woken[0] += 1

    async def main():
        task = asyncio.create_task(face())
        await asyncio.sleep_ms(10)
        micropython.heap_lock()
        try:
            for _ in range(200):
                hub.publish(C.P_STATUS)
                await asyncio.sleep_ms(0)
        finally:
            micropython.heap_unlock()
        task.cancel()

    asyncio.run(main())
    assert woken[0] == 200, woken
