# The supervisor under the MicroPython unix port (run by test_supervisor.py
# with the frozen firmware): a healthy task, a task that hangs (an await
# that never returns: it stops beating) and a task that crashes; the
# hardware watchdog stand-in counts its feeds. Prints one JSON line.
import asyncio
import json
import time

from eventlog import EV_TASK, EventLog

from supervisor import Supervisor

_BUDGET_MS = 600


class Hw:
    def ticks_ms(self):
        return time.ticks_ms() & 0x3FFFFFFF

    class Watchdog:
        def __init__(self, timeout_ms):
            self.feeds = 0
            self.stamps = []

        def feed(self):
            self.feeds += 1
            self.stamps.append(time.ticks_ms())


class Healthy:
    def __init__(self):
        self.beat = None
        self.passes = 0

    async def run(self):
        while True:
            self.passes += 1
            self.beat()
            await asyncio.sleep_ms(50)


class Hangs:
    """Beats for a while, then waits forever on something that never comes
    (the second time it runs, it behaves)."""

    def __init__(self):
        self.beat = None
        self.runs = 0
        self.closed = 0
        self.never = asyncio.Event()

    async def run(self):
        self.runs += 1
        for _ in range(5):
            self.beat()
            await asyncio.sleep_ms(50)
        if self.runs == 1:
            await self.never.wait()  # hung: no exception, no progress
        while True:
            self.beat()
            await asyncio.sleep_ms(50)

    def close(self):
        self.closed += 1  # (a real task releases its UART or socket here)


class Crashes:
    def __init__(self):
        self.beat = None
        self.runs = 0
        self.closed = 0

    async def run(self):
        self.runs += 1
        self.beat()
        await asyncio.sleep_ms(100)
        if self.runs <= 2:
            raise ValueError("crash number %d" % self.runs)
        while True:
            self.beat()
            await asyncio.sleep_ms(50)

    def close(self):
        self.closed += 1


def main():
    hw = Hw()
    log = EventLog(32)
    sup = Supervisor(hw, log)
    healthy, hangs, crashes = Healthy(), Hangs(), Crashes()
    result = {}

    async def run():
        sup.start("link", healthy, _BUDGET_MS)
        sup.start("outputs", hangs, _BUDGET_MS)
        sup.start("acc", crashes, _BUDGET_MS)
        sup.start_watchdog(5000)
        watchdog = asyncio.create_task(sup.run())
        t0 = time.ticks_ms()
        await asyncio.sleep_ms(6000)
        wd = sup.watchdog
        # Gaps between feeds: the longest is while the hung task was late.
        gaps = [time.ticks_diff(wd.stamps[i], wd.stamps[i - 1]) for i in range(1, len(wd.stamps))]
        result["feeds"] = wd.feeds
        result["longest_gap_ms"] = max(gaps) if gaps else None
        result["first_feed_ms"] = time.ticks_diff(wd.stamps[0], t0) if wd.stamps else None
        result["hangs"] = sup.hangs
        result["crashes"] = sup.crashes
        result["restarts"] = sup.restarts
        result["hangs_runs"] = hangs.runs
        result["hangs_closed"] = hangs.closed
        result["crashes_runs"] = crashes.runs
        result["crashes_closed"] = crashes.closed
        result["healthy_passes"] = healthy.passes
        result["alive"] = [t is not None and not t.done() for t in sup.inner[:3]]
        result["events"] = [[log.kind[log.index(k)], log.a[log.index(k)], log.b[log.index(k)], log.c[log.index(k)]]
                            for k in range(len(log)) if log.kind[log.index(k)] == EV_TASK]
        result["last_crash"] = sup.last_crash
        watchdog.cancel()
        sup.stop()

    asyncio.run(run())
    print(json.dumps(result))


main()
