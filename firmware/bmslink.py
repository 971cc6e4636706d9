# The BMS link task: owns the UART and drives the sans-IO LinkEngine
# (lib/link/engine.py): bytes in -> feed, time -> tick, frames out -> write,
# baud changes -> reconfigure. Every model update is announced on `changed`
# (an asyncio Event pulsed once per new generation) so faces can wait for
# news instead of polling. The loop allocates nothing per pass.
import asyncio

import hw

try:
    from micropython import const
except ImportError:  # CPython (pyright)
    def const(__value):
        return __value

_RX_SIZE = const(256)
_MAX_SLEEP_MS = const(10)  # bound on how late a received byte is timestamped


class BmsLink:
    def __init__(self, engine, uart, changed):
        self.engine = engine
        self.uart = uart
        self.changed = changed
        self._buf = bytearray(_RX_SIZE)
        self._generation = -1

    async def run(self):
        engine = self.engine
        model = engine.model
        uart = self.uart
        buf = self._buf
        changed = self.changed
        uart.set_baud(engine.baud)
        engine.baud_changed = False
        while True:
            now = hw.ticks_ms()
            n = uart.readinto(buf)
            while n:
                engine.feed(buf, n, now)
                n = uart.readinto(buf) if n == _RX_SIZE else 0
            engine.tick(now)
            if engine.baud_changed:  # before sending: the same tick may switch and poll
                engine.baud_changed = False
                uart.set_baud(engine.baud)
            if engine.tx is not None:
                uart.write(engine.tx)
                engine.sent(now)
            if model.generation != self._generation:
                self._generation = model.generation
                changed.set()  # wakes every waiter ...
                changed.clear()  # ... and re-arms for the next change
            wait = engine.next_wakeup_ms(now)
            await asyncio.sleep_ms(wait if wait < _MAX_SLEEP_MS else _MAX_SLEEP_MS)
