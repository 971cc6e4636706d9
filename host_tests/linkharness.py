# A virtual bus for unit tests of the link engine, under CPython and
# MicroPython alike: a fake BMS built on the library's frame builders, a
# display that polls the same port, and a clock that advances in 5 ms steps.
# (The end-to-end tests use the real simulator in tools/ instead.)
from ant import commands, new, old
from ant.checksum import crc16_modbus
from ant.framer import KIND_NEW, KIND_OLD_SHORT, Framer
from ant.status import PROTOCOL_NEW, PROTOCOL_OLD, Status
from link.command import Command
from ticks import ticks_add, ticks_diff

START_MS = 0x3FFFF000  # close to the 2**30 wrap: every test crosses it
_EXCHANGE_MS = 300  # a request and its reply: the longest a real exchange takes


class FakeBms:
    def __init__(self, protocols=("new",), cells=16, baud=19200, password=None, status_form=None):
        self.protocols = protocols
        self.baud = baud
        self.password = password
        self.authed = False
        self.status_form = status_form  # OLD: answer only this request (bytes) if set
        self.st = Status()
        st = self.st
        st.cell_count = cells
        st.probe_slots = 2
        st.probe_count = 2
        for i in range(cells):
            st.cells_mv[i] = 3300 + i
        st.temps_c[0] = 21
        st.temps_c[1] = 22
        st.mosfet_c = 25
        st.balancer_c = 24
        st.pack_cv = 5300
        st.current_da = 50
        st.power_w = 265
        st.soc_pct = 70
        st.charge_mos = 1
        st.discharge_mos = 1
        st.capacity_mah = 100000
        st.remaining_mah = 70000
        self.silent = False
        self.drop = 0  # replies to drop
        self.drop_pattern = None  # (1, 0, ...): drop reply k when pattern[k % len] is 1
        self.replies = 0  # replies due (before drops)
        self.extra_latency = 0  # ms on top of every reply's latency (a slow BMS)
        self.flip = 0  # replies to corrupt (one bit in the middle)
        self.garble_all = False
        self.ack_result = 1
        self.ignore_controls = False
        self.balancer_toggle = 0
        self.commands = []
        self.requests = 0
        self._pw = b""
        # Parameters: OLD registers (absent: FFFF), NEW byte memory (LE).
        self.old_regs = {}
        self.new_mem = bytearray(0x200)
        self.param_writes = []  # (register/address, value) as written
        self.saves = 0  # OLD apply (A5 A5 FF) / NEW save (control 0x07) frames
        self.keep_params = False  # accept writes but keep the old values (a BMS that ignores them)
        self._rx = Framer()
        self._out = []  # (due_ms, bytes)

    # the engine's TX reaches us
    def receive(self, data, now_ms, sender_baud):
        if self.silent:
            return
        if sender_baud != self.baud:
            return  # wrong baud: nothing we can read
        pos = 0
        while True:
            pos = self._rx.feed(data, pos)
            if not self._rx.kind:
                break
            frame = bytes(self._rx.buf[self._rx.start : self._rx.start + self._rx.length])
            self._handle(frame, self._rx.kind, now_ms)
        while self._rx.flush():
            pass

    def _reply(self, frame, now_ms, latency=40):
        k = self.replies
        self.replies += 1
        if self.drop:
            self.drop -= 1
            return
        pattern = self.drop_pattern
        if pattern is not None and pattern[k % len(pattern)]:
            return
        latency += self.extra_latency
        if self.flip:
            self.flip -= 1
            b = bytearray(frame)
            b[len(b) // 2] ^= 0x10
            frame = bytes(b)
        self._out.append((ticks_add(now_ms, latency), frame))

    def _handle(self, f, kind, now_ms):
        if kind == KIND_NEW and "new" in self.protocols:
            func = f[2]
            if func == new.FN_STATUS:
                self.requests += 1
                self._reply(bytes(new.build_status(self.st)), now_ms)
            elif func == new.FN_READ:
                addr, n = f[3] | f[4] << 8, f[5]
                data = bytes(self.new_mem[addr : addr + n])
                self._reply(_with_trailer(new.frame(new.REPLY_READ, addr, n, data), 0x0B), now_ms, 80)
            elif func == new.FN_WRITE:
                addr, n = f[3] | f[4] << 8, f[5]
                data = bytes(f[6 : 6 + n])
                code = 0x0A
                if self.password and not self.authed:
                    code = 0x01
                else:
                    self.param_writes.append((addr, int.from_bytes(data, "little")))
                    if not self.keep_params:
                        self.new_mem[addr : addr + n] = data
                self._reply(_with_trailer(new.frame(new.REPLY_WRITE, addr, n, data), code), now_ms, 80)
            elif func == new.FN_PASSWORD:
                given = bytes(f[6 : 6 + f[5]]).decode()
                self.authed = given == self.password
                level = 5 if self.authed else 0
                self._reply(new.frame(new.REPLY_PASSWORD, f[3] | f[4] << 8, 2, bytes((level, 0))), now_ms, 70)
            elif func == new.FN_CONTROL:
                reg = f[3]
                self.commands.append(reg)
                if self.password and not self.authed:
                    result = 3
                else:
                    result = self.ack_result
                    if result == 1 and not self.ignore_controls:
                        self._apply_new(reg)
                if reg == 0x07 and result == 1:
                    self.saves += 1
                if reg not in (0x09, 0x0B, 0x0C):
                    self._reply(new.frame(new.REPLY_CONTROL, reg, 2, bytes((result, 0))), now_ms, 90)
        elif kind == KIND_OLD_SHORT and "old" in self.protocols:
            head, reg, value = f[0], f[2], (f[3] << 8) | f[4]
            if head in (old.HEAD_READ, old.HEAD_DATA) and reg == 0:
                if self.status_form is not None and f != self.status_form:
                    return
                self.requests += 1
                self._reply(bytes(old.build_status(self.st)), now_ms)
            elif head == old.HEAD_READ:
                value = self.old_regs.get(reg, 0xFFFF)
                self._reply(bytes(old.short_frame(old.HEAD_READ, reg, value)), now_ms, 45)
            elif head == old.HEAD_WRITE:
                if 0xF1 <= reg <= 0xF4:
                    # Observed on real units: F1..F3 are answered with the
                    # F5 "rejected" frame, F4 is echoed if the password is right.
                    if reg == 0xF1:
                        self._pw = b""
                    self._pw += bytes(((value >> 8) & 0xFF, value & 0xFF))
                    ok = False
                    if reg == 0xF4:
                        self.authed = self._pw.rstrip(b"\x00").decode() == self.password
                        ok = self.authed
                    reject = bytes(old.short_frame(old.HEAD_WRITE, 0xF5, 1))
                    self._reply(f if ok else reject, now_ms, 30 + 5 * (reg - 0xF0))
                    return
                self.commands.append(reg)
                if self.password and not self.authed:
                    self._reply(bytes(old.short_frame(old.HEAD_WRITE, 0xF5, 1)), now_ms, 50)
                    return
                echo_value = value
                if reg == 0xFF:
                    self.saves += 1
                elif reg < 0xF0:
                    self.param_writes.append((reg, value))
                    if not self.keep_params:
                        self.old_regs[reg] = value
                if reg == 0xFC:
                    self.balancer_toggle ^= 1
                    echo_value = self.balancer_toggle
                elif not self.ignore_controls:
                    self._apply_old(reg, value)
                self._reply(bytes(old.short_frame(old.HEAD_WRITE, reg, echo_value)), now_ms, 50)

    def _apply_new(self, reg):
        st = self.st
        if reg == 0x06:
            st.charge_mos = 1
        elif reg == 0x04:
            st.charge_mos = 15
        elif reg == 0x03:
            st.discharge_mos = 1
        elif reg == 0x01:
            st.discharge_mos = 15
        elif reg == 0x0D:
            st.balancer = 4
        elif reg == 0x0E:
            st.balancer = 0

    def _apply_old(self, reg, value):
        st = self.st
        if reg == 0xFA:
            st.charge_mos = 1 if value else 15
        elif reg == 0xF9:
            st.discharge_mos = 1 if value else 15

    def due(self, now_ms):
        """Frames whose time has come (in order)."""
        out = []
        keep = []
        for item in self._out:
            if ticks_diff(now_ms, item[0]) >= 0:
                out.append(item[1])
            else:
                keep.append(item)
        self._out = keep
        if self.silent:
            return []
        if self.garble_all:
            return [bytes((x ^ 0x5C) & 0xFF for x in f) for f in out]
        return out


def _with_trailer(frame, code):
    """A 0x12/0x42 reply: 6 bytes (FF code 00 00 + their CRC) before AA 55."""
    t = bytearray((0xFF, code, 0, 0, 0, 0))
    crc = crc16_modbus(t, 0, 4)
    t[4] = crc & 0xFF
    t[5] = crc >> 8
    return frame[:-2] + bytes(t) + frame[-2:]


class Display:
    """Another master polling the BMS on the same port."""

    def __init__(self, period_ms=1000, protocol="new", first_ms=300):
        self.period_ms = period_ms
        self.protocol = protocol
        self.first_ms = first_ms  # its first poll, after the harness starts
        self.unseen = 0  # requests the engine does not see (sent before it listened)
        self.next_ms = None
        self.polls = 0
        self.skip = ()  # numbers of polls (1-based) it skips
        self.requests = []  # times of the requests it sent

    def request(self):
        return commands.status_request(self.protocol)


class Harness:
    def __init__(self, engine, bms, display=None):
        self.engine = engine
        self.bms = bms
        self.display = display
        self.now = START_MS
        self.sent = []  # frames the engine transmitted
        self.collisions = 0  # engine frames sent into a display's exchange
        self.talked_into = 0  # display requests sent into an exchange of the engine
        self._busy_until = START_MS
        self._display_waiting = False
        self._bridge_waiting = False  # a frame of the engine awaits its reply
        self._bridge_sent = START_MS
        self.wire = []  # (time, frame) of bytes on the engine's RX, for tests
        self.echo = False  # the bus shows the engine its own frames (at once)
        self.record = True  # keep self.wire (long runs under MicroPython may switch it off)

    def run(self, ms, step=5):
        end = ticks_add(self.now, ms)
        while ticks_diff(end, self.now) > 0:
            self.step(step)

    def run_until(self, predicate, limit_ms, step=5):
        end = ticks_add(self.now, limit_ms)
        while ticks_diff(end, self.now) > 0:
            if predicate():
                return True
            self.step(step)
        return predicate()

    def command(self, name, limit_ms, done_cb=None):
        """Submit a command now and run until it finished (or limit_ms
        passed); returns it."""
        c = Command(name, done_cb)
        self.engine.submit(c, self.now)
        self.run_until(c.finished, limit_ms)
        return c

    def step(self, step=5):
        engine = self.engine
        bms = self.bms
        display = self.display
        if display is not None:
            if display.next_ms is None:
                display.next_ms = ticks_add(self.now, display.first_ms)
            if ticks_diff(self.now, display.next_ms) >= 0:
                display.next_ms = ticks_add(display.next_ms, display.period_ms)
                req = display.request()
                display.polls += 1
                if display.polls in display.skip:
                    req = None
            else:
                req = None
            if req is not None:
                display.requests.append(self.now)
                if self._bridge_waiting and ticks_diff(self.now, self._bridge_sent) < _EXCHANGE_MS:
                    self.talked_into += 1  # the display talks into the engine's exchange
                if display.unseen:
                    display.unseen -= 1
                else:
                    self._to_engine(req)  # the display's request is on the bus
                self._display_waiting = True  # busy until the BMS has answered it
                bms.receive(req, self.now, bms.baud)
        for frame in bms.due(self.now):
            if self.engine.baud != bms.baud:
                frame = bytes(((x * 7) ^ 0xA5) & 0xFF for x in frame[: len(frame) // 2])
            self._to_engine(frame)
            if self._display_waiting:
                self._display_waiting = False
                self._busy_until = ticks_add(self.now, 5)
            else:
                self._bridge_waiting = False
        engine.tick(self.now)
        if engine.tx is not None:
            frame = engine.tx
            self.sent.append(frame)
            if self._display_waiting or ticks_diff(self._busy_until, self.now) > 0:
                self.collisions += 1
            engine.sent(self.now)
            if self.echo:
                self._to_engine(frame)
            self._bridge_waiting = True
            self._bridge_sent = self.now
            bms.receive(frame, self.now, engine.baud)
        self.now = ticks_add(self.now, step)

    def _to_engine(self, frame):
        if self.record:
            self.wire.append((self.now, frame))
        self.engine.feed(frame, len(frame), self.now)
