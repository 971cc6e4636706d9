# Wakeup: a reusable awaitable that parks one task until someone calls
# fire(). `await wakeup` and `wakeup.fire()` allocate nothing on MicroPython,
# unlike asyncio.Event.wait(), which makes a new coroutine object per wait:
# the hub fires these on every status frame, and the outputs task waits on
# one per pass.
#
# A fire() with nobody waiting is remembered: the next await returns at
# once (so a change between two waits is never missed). One task may wait
# at a time. Call fire() only from the asyncio thread (not from an IRQ).
#
# MicroPython: the same protocol as asyncio's own sleep_ms() singleton: the
# first __next__ parks the current task and yields; fire() pushes it back on
# the run queue; the second __next__ raises a preallocated StopIteration.
# CPython (tests, tools): an asyncio.Event does the same job.
import asyncio

try:
    from typing import Generator  # for the type checker only (no typing on MicroPython)
except ImportError:
    pass

_core = getattr(asyncio, "core", None)  # MicroPython's asyncio internals (CPython: None)


class _MicroPythonWakeup:
    def __init__(self):
        self.pending = False  # fired while nobody waited
        self.task = None  # the parked task
        self._parked = False
        self._timed = False  # parked on the timed queue (within())
        self._timeout = -1
        self._stop = StopIteration()

    def fire(self):
        task = self.task
        if task is not None:
            self.task = None
            if self._timed:
                _core._task_queue.remove(task)  # pyright: ignore  (off its deadline slot)
            _core._task_queue.push(task)  # pyright: ignore
        else:
            self.pending = True

    def within(self, ms):
        """`await w.within(ms)`: wait for fire() or at most ms."""
        self._timeout = ms
        return self

    def remove(self, task):
        # Task.cancel() calls this (task.data is this object) to take a
        # parked task off our "queue" before it throws CancelledError in.
        self._clear()

    def _clear(self):
        self.task = None
        self._parked = False
        self._timed = False
        self._timeout = -1

    def throw(self, exc, *args):
        # A cancelled waiter: forget it, then let the exception through.
        self._clear()
        raise exc

    def __iter__(self):
        return self

    def __await__(self) -> "Generator[None, None, None]":
        return self  # pyright: ignore[reportReturnType]  (an iterator with send-less __next__ is all asyncio needs)

    def __next__(self):
        if self._parked or self.pending:
            # Resumed (fired or timed out), or fired before we waited.
            self._clear()
            self.pending = False
            self._stop.__traceback__ = None
            raise self._stop
        task = _core.cur_task  # pyright: ignore
        self.task = task
        self._parked = True
        if self._timeout >= 0:
            self._timed = True
            _core._task_queue.push(task, _core.ticks_add(_core.ticks(), self._timeout))  # pyright: ignore
        else:
            task.data = self  # lets Task.cancel() call remove()
        return None


class _EventWakeup:
    def __init__(self):
        self.pending = False
        self._event = None
        self._timeout = -1

    def _ev(self):
        if self._event is None:
            self._event = asyncio.Event()  # made inside the running loop
        return self._event

    def fire(self):
        self.pending = True
        if self._event is not None:
            self._event.set()

    def within(self, ms):
        self._timeout = ms
        return self

    async def _wait(self):
        timeout = self._timeout
        self._timeout = -1
        try:
            while not self.pending:
                ev = self._ev()
                ev.clear()
                if timeout >= 0:
                    await asyncio.wait_for(ev.wait(), timeout / 1000)
                else:
                    await ev.wait()
        except asyncio.TimeoutError:
            return
        self.pending = False

    def __await__(self):
        return self._wait().__await__()


# The right one for this interpreter.
Wakeup = _MicroPythonWakeup if _core is not None else _EventWakeup
