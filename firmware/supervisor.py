# Keeps the firmware's tasks alive and knows the bridge's health.
#
#   crash     an exception in a task is logged (EV_TASK, one line on the
#             console), its resources are released (runner.close(): the
#             UART, a listening socket) and it is restarted after a growing
#             pause, so a task that fails at once cannot spin the CPU
#   hang      each task with a heartbeat budget calls its beat() on every
#             pass; one silent for longer than its budget (a hung await, not
#             only an exception) is cancelled, released and restarted
#   watchdog  the hardware watchdog (hw.Watchdog, machine.WDT on the ESP32)
#             is fed only while every task beats in time: if restarting
#             does not help, the WDT resets the board
#   clean run after clean_run_ms of running, the crashed-boots counter is
#             cleared (safemode.BootRecord)
#   health    uptime, heap figures (after a collection every 10 s), crashes,
#             restarts: what /api/health and the catalog's health rows read
import asyncio
import gc
import sys
from array import array

import catalog as C
from eventlog import EV_TASK
from eventtext import TASK_CRASHED, TASK_HUNG, TASK_NAMES
from ticks import ticks_diff

try:
    from micropython import const
except ImportError:  # CPython (pyright)
    def const(__value):
        return __value

_BACKOFF_FIRST_MS = const(100)
_BACKOFF_MAX_MS = const(5000)
_CHECK_MS = const(1000)
_HEAP_EVERY = const(10)  # checks between collections
_MAX_TASKS = const(10)
WDT_TIMEOUT_MS = 30000
_MEM = hasattr(gc, "mem_free")  # > the longest heartbeat budget + the longest restart pause


class Supervisor:
    def __init__(self, hw, log, hub=None, boot_record=None, clean_run_ms=300000):
        self.hw = hw
        self.log = log
        self.hub = hub
        self.names = []
        self.runners = []
        self.tasks = []  # the supervising task per runner
        self.inner = [None] * _MAX_TASKS  # the runner's current task
        self.budget = array("i", [0] * _MAX_TASKS)  # ms; 0 = no heartbeat expected
        self.beats = array("i", [0] * _MAX_TASKS)  # ticks of the last beat
        self.hung = bytearray(_MAX_TASKS)
        self.restarts = {}  # name -> times restarted (the health view)
        self.restart_count = 0
        self.crashes = 0
        self.hangs = 0
        self.last_crash = None  # "name: ExceptionType: message"
        self.started_ms = hw.ticks_ms()
        self._up_s = 0  # uptime, counted past the ticks' 12-day wrap
        self._up_ms = 0  # and its ms remainder (both stay small ints)
        self._uptime_at = self.started_ms
        self.heap_free = 0
        self.heap_allocated = 0
        self.heap_min_free = -1
        self.safe_mode = False
        self.safe_reason = None
        self.watchdog = None  # hw.Watchdog once start_watchdog() ran
        self.boot_record = boot_record  # safemode.BootRecord: cleared after a clean run
        self.clean_run_ms = clean_run_ms
        self.checks = 0

    def enter_safe_mode(self, reason):
        self.safe_mode = True
        self.safe_reason = reason

    # -- tasks ----------------------------------------------------------------------------

    def start(self, name, runner, budget_ms=0):
        """Run `await runner.run()` as task `name`, restarting it when it
        crashes or (budget_ms > 0) stops beating; runner.beat is set to the
        heartbeat callable the runner calls on each pass."""
        slot = len(self.names)
        self.names.append(name)
        self.runners.append(runner)
        self.restarts[name] = 0
        self.budget[slot] = budget_ms
        self.beats[slot] = self.hw.ticks_ms()
        beats = self.beats
        hw = self.hw

        def beat():
            beats[slot] = hw.ticks_ms()

        runner.beat = beat
        task = asyncio.create_task(self._run(slot))
        self.tasks.append(task)
        return task

    async def _run(self, slot):
        name = self.names[slot]
        runner = self.runners[slot]
        backoff = _BACKOFF_FIRST_MS
        while True:
            self.beats[slot] = self.hw.ticks_ms()
            inner = asyncio.create_task(runner.run())
            self.inner[slot] = inner
            try:
                await inner
                print("supervisor: task", name, "returned; restarting")
            except asyncio.CancelledError:
                if not self.hung[slot]:
                    inner.cancel()
                    raise  # the firmware is stopping
                self.hung[slot] = 0
                self._failed(slot, TASK_HUNG, name + ": no progress for " + str(self.budget[slot]) + " ms")
            except Exception as e:  # a task must never take the firmware down
                self._failed(slot, TASK_CRASHED, name + ": " + type(e).__name__ + ": " + str(e))
                sys.print_exception(e, sys.stderr)  # pyright: ignore  (the stub wants an IOBase_mp; sys.stderr is one)
            self.inner[slot] = None
            close = getattr(runner, "close", None)
            if close is not None:
                try:
                    close()
                except Exception as e:  # releasing must not stop the restart
                    print("supervisor: releasing", name, "failed:", e)
            await asyncio.sleep_ms(backoff)
            backoff = backoff * 2 if backoff < _BACKOFF_MAX_MS // 2 else _BACKOFF_MAX_MS

    def _failed(self, slot, what, text):
        name = self.names[slot]
        if what == TASK_HUNG:
            self.hangs += 1
        else:
            self.crashes += 1
        self.restarts[name] += 1
        self.restart_count += 1
        self.last_crash = text
        print("supervisor: task", text, "- restarting", file=sys.stderr)
        code = TASK_NAMES.index(name) if name in TASK_NAMES else 255
        self.log.add(EV_TASK, code, what, self.restarts[name], self.hw.ticks_ms())
        if self.hub is not None:
            self.hub.publish(C.P_HEALTH)

    def stop(self):
        for t in self.tasks:
            t.cancel()

    # -- the watchdog loop -------------------------------------------------------------------

    def start_watchdog(self, timeout_ms=WDT_TIMEOUT_MS):
        self.watchdog = self.hw.Watchdog(timeout_ms)

    def alive(self, now):
        """True while every task with a budget beats in time; a task late
        past its budget is cancelled (and restarted by its supervisor)."""
        ok = True
        for slot in range(len(self.names)):
            budget = self.budget[slot]
            if budget <= 0:
                continue
            if ticks_diff(now, self.beats[slot]) > budget:
                ok = False
                inner = self.inner[slot]
                if inner is not None and not inner.done() and not self.hung[slot]:
                    self.hung[slot] = 1
                    inner.cancel()
        return ok

    async def run(self):
        hw = self.hw
        while True:
            now = hw.ticks_ms()
            ms = self._up_ms + ticks_diff(now, self._uptime_at)
            self._uptime_at = now
            self._up_s += ms // 1000
            self._up_ms = ms % 1000
            if self.alive(now) and self.watchdog is not None:
                self.watchdog.feed()
            if self.boot_record is not None and self._up_s * 1000 >= self.clean_run_ms:
                self.boot_record.clean()  # a clean run: the crashed-boots counter starts over
                self.boot_record = None
            self.checks += 1
            if self.checks % _HEAP_EVERY == 1:
                self.heap()
            await asyncio.sleep_ms(_CHECK_MS)

    # -- health ---------------------------------------------------------------------------------

    def uptime_s(self):
        return self._up_s

    def heap(self):
        """(free, allocated) bytes after a full collection."""
        gc.collect()
        free = gc.mem_free() if _MEM else 0  # (CPython, in-process tests: no heap figures)
        self.heap_free = free
        self.heap_allocated = gc.mem_alloc() if _MEM else 0
        if self.heap_min_free < 0 or free < self.heap_min_free:
            self.heap_min_free = free
        return free, self.heap_allocated
