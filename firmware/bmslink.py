# The BMS link task: owns the UART and drives the sans-IO LinkEngine
# (lib/link/engine.py): bytes in -> feed, time -> tick, frames out -> write,
# baud changes -> reconfigure. Two loops share the engine:
#   rx     sleeps until the UART has bytes (asyncio polls the UART itself),
#          feeds them with their arrival time, and acts on them at once
#   timer  sleeps until the engine's next deadline (a poll, a reply
#          timeout, the end of a burst) and ticks it
# so the task wakes for the bus, not at a fixed rate. (Settings link.rx
# "poll", poll_rx: the old design, kept so make bench can measure what
# waiting saves: no rx loop, the timer loop reads the UART every 10 ms.)
# After each pass the hub is told what changed (a new status, the link
# state) and the BMS alarms are compared with the last ones
# (lib/alarmwatch.py). A pass allocates
# nothing; waiting on the UART is asyncio's IO queue (a small registration
# per wait, see README's figures).
import asyncio

import catalog as C

try:
    from micropython import const
except ImportError:  # CPython (pyright)
    def const(__value):
        return __value

_RX_SIZE = const(256)
_MAX_SLEEP_MS = const(1000)  # the timer loop also beats the supervisor's heartbeat
_POLL_RX_MS = const(10)  # link.rx "poll": the timer loop reads the UART this often


class BmsLink:
    def __init__(self, hw, engine, uart, hub, alarms, poll_rx=False):
        self.hw = hw
        self.poll_rx = poll_rx
        self.engine = engine
        self.uart = uart
        self.hub = hub
        self.alarms = alarms  # alarmwatch.AlarmWatch
        self.syslog = None  # ant.syslog.SysLog, made on the first OLD frame (the rolling log word)
        self.beat = None  # callable(): the supervisor's heartbeat
        self._buf = bytearray(_RX_SIZE)
        self._frames = -1
        self._rx_task = None
        self._rx_error = None
        self._link = -1  # (link state, line, passive) as last published
        self.passes = 0

    async def run(self):
        engine = self.engine
        self.uart.set_baud(engine.baud)
        engine.baud_changed = False
        if self.poll_rx:
            await self._timer()
            return
        self._rx_task = rx = asyncio.create_task(self._rx())
        try:
            await self._timer()
        finally:
            rx.cancel()

    def close(self):
        """Release the UART (the supervisor calls this before a restart)."""
        self.uart.close()

    async def _timer(self):
        hw = self.hw
        engine = self.engine
        poll = self.poll_rx
        limit = _POLL_RX_MS if poll else _MAX_SLEEP_MS
        while True:
            error = self._rx_error
            if error is not None:
                self._rx_error = None
                raise error  # the rx loop died: here, where the supervisor sees it
            now = hw.ticks_ms()
            if poll:
                self._read(now)
            self.step(now)
            if self.beat is not None:
                self.beat()
            wait = engine.next_wakeup_ms(now)
            await asyncio.sleep_ms(wait if wait < limit else limit)

    async def _rx(self):
        try:
            await self._rx_loop()
        except Exception as e:  # handed to the timer loop, which raises it
            self._rx_error = e

    async def _rx_loop(self):
        hw = self.hw
        engine = self.engine
        uart = self.uart
        buf = self._buf
        while True:
            await uart.wait_rx()  # pyright: ignore  (a generator, as asyncio's stream reads)
            now = hw.ticks_ms()
            n = uart.readinto(buf)
            if not n:
                continue
            while n:
                engine.feed(buf, n, now)
                n = uart.readinto(buf) if n == _RX_SIZE else 0
            self.step(now)

    def _read(self, now):
        """link.rx "poll": feed whatever the UART holds (nothing is fine)."""
        engine = self.engine
        uart = self.uart
        buf = self._buf
        n = uart.readinto(buf)
        while n:
            engine.feed(buf, n, now)
            n = uart.readinto(buf) if n == _RX_SIZE else 0

    def step(self, now):
        """Tick the engine, send what is due, publish what changed."""
        engine = self.engine
        uart = self.uart
        engine.tick(now)
        if engine.baud_changed:  # before sending: the same tick may switch and poll
            engine.baud_changed = False
            uart.set_baud(engine.baud)
        if engine.tx is not None:
            uart.write(engine.tx)
            engine.sent(now)
        self.passes += 1
        model = engine.model
        hub = self.hub
        frames = engine.stats.frames_ok
        if frames != self._frames:
            self._frames = frames
            self.alarms.update(model.status, now)  # logs raised/cleared BMS alarms
            if model.status.syslog >= 0:  # an OLD frame: the BMS's own log, one slot per frame
                log = self.syslog
                if log is None:  # once: a NEW unit never needs it
                    from ant.syslog import SysLog

                    log = self.syslog = SysLog()
                log.update(model.status)
            hub.publish(C.P_STATUS)
        link = model.link << 4 | model.line << 1 | (1 if model.passive else 0)
        if link != self._link:
            self._link = link
            hub.publish(C.P_LINK)
