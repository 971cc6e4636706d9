# Keeps the firmware's tasks alive: each concern runs as one supervised
# task; an exception is logged with its traceback, counted, and the task is
# restarted after a growing pause (so a task that fails at once cannot spin
# the CPU). Also the place that knows the heap figures the faces report.
import asyncio
import gc
import sys

import hw

_BACKOFF_FIRST_MS = 100
_BACKOFF_MAX_MS = 5000


class Supervisor:
    def __init__(self):
        self.tasks = {}  # name -> asyncio task
        self.restarts = {}  # name -> times restarted after a crash
        self.crashes = 0
        self.last_crash = None  # "name: ExceptionType: message"
        self.started_ms = hw.ticks_ms()
        self.heap_min_free = -1

    def start(self, name, factory):
        """Run `await factory()` as task `name`, restarting it on a crash."""
        self.restarts[name] = 0
        task = asyncio.create_task(self._run(name, factory))
        self.tasks[name] = task
        return task

    async def _run(self, name, factory):
        backoff = _BACKOFF_FIRST_MS
        while True:
            try:
                await factory()
                print("supervisor: task", name, "returned; restarting")
            except asyncio.CancelledError:
                raise
            except Exception as e:  # a task must never take the firmware down
                self.crashes += 1
                self.restarts[name] += 1
                self.last_crash = name + ": " + type(e).__name__ + ": " + str(e)
                print("supervisor: task", name, "crashed; restarting in", backoff, "ms", file=sys.stderr)
                sys.print_exception(e, sys.stderr)  # pyright: ignore  (the stub wants an IOBase_mp; sys.stderr is one)
            await asyncio.sleep_ms(backoff)
            backoff = backoff * 2 if backoff < _BACKOFF_MAX_MS // 2 else _BACKOFF_MAX_MS

    def heap(self):
        """(free, allocated) bytes after a full collection."""
        gc.collect()
        free = gc.mem_free()
        if self.heap_min_free < 0 or free < self.heap_min_free:
            self.heap_min_free = free
        return free, gc.mem_alloc()

    async def watch_heap(self, period_ms=10000):
        """Collect regularly so the figures (and fragmentation) stay honest."""
        while True:
            self.heap()
            await asyncio.sleep_ms(period_ms)
