# The simulated BMS as the outside world sees it: bytes in from the bridge,
# paced bytes out, a pack that evolves with time, and the knobs the control
# port turns. Sans-IO: every entry point takes `now` (seconds, monotonic).
import random
from collections import deque

from ant import new, old
from ant.framer import Framer
from ant.status import MAX_PROBES, TEMP_NONE, Status

from sim import responder as resp
from sim.display import Display
from sim.faults import Faults
from sim.pack import Pack
from sim.power import DEEP, Power
from sim.profile import CurrentProfile
from sim.protection import CHARGE_ON, MANUAL_OFF, Limits, Protection
from sim.registers import Registers
from sim.wire import Wire, garble

PROTOCOLS = ("old", "new", "both")
# What the frames can carry (a real unit clamps what it reports the same way;
# lib/ant's builders saturate, these bounds refuse what no frame can say):
MAX_CAPACITY_AH = 4294.967  # u32 µAh
MAX_CURRENT_A = 3276.7  # the NEW frame's i16 in 0.1 A
MIN_FITTED_TEMP_C = -39  # -40 °C is the frames' "probe absent"
_LATENCY_MS = {resp.STATUS: (20, 150), resp.ECHO: (32, 84), resp.ACK: (62, 124)}
_DYNAMICS_STEP_S = 0.05
_MAX_STEP_S = 1.0  # a stalled host does not make the pack jump
_QUIET_FLUSH_S = 0.1  # resolve a half-received request after this much silence
_OLD_PROBE_SLOTS = 4
_MAX_COMMAND_LOG = 1000
_REQUEST_LOG = 64  # status requests kept for `state` (time, source)


class Config:
    """Start-up settings (the command line's options)."""

    def __init__(self, **kw):
        self.protocol = "new"
        self.cells = 16
        self.temps = 2  # fitted probes
        self.temp_slots = None  # NEW protocol probe slots announced (default: temps)
        self.unfitted = -40  # what an unfitted OLD probe slot reads
        self.capacity_ah = 100.0
        self.soc = 70.0
        self.baud = 19200
        self.password = None
        self.profile = "idle"
        self.current = None
        self.idle_sleep_s = 0.0
        self.reboot_s = 3.0
        self.seed = 0
        self.faults = ""
        self.reply_latency_ms = None
        self.time_scale = 1.0
        for key, value in kw.items():
            if not hasattr(self, key):
                raise TypeError("unknown setting " + key)
            setattr(self, key, value)


def check_current(amps):
    """Refuse a current no status frame can carry (None passes)."""
    if amps is not None and not -MAX_CURRENT_A <= amps <= MAX_CURRENT_A:
        raise ValueError("current must be within +-%.1f A (the new frame's field)" % MAX_CURRENT_A)


class Device:
    def __init__(self, config, now):
        c = config
        if c.protocol not in PROTOCOLS:
            raise ValueError("protocol must be old, new or both")
        if not 0 <= c.temps <= 6:
            raise ValueError("temps must be 0..6")
        if not 0 < c.capacity_ah <= MAX_CAPACITY_AH:
            raise ValueError("capacity must be > 0 and at most %.3f Ah (a u32 in µAh)" % MAX_CAPACITY_AH)
        check_current(c.current)
        self.config = c
        self.protocol = c.protocol
        self.baud = c.baud
        self.bridge_baud = c.baud
        self.temps = c.temps
        self.temp_slots = c.temps if c.temp_slots is None else c.temp_slots
        self.unfitted = c.unfitted
        self.time_scale = float(c.time_scale)
        self.reply_latency_ms = c.reply_latency_ms
        self.password = c.password.encode() if c.password else None
        self.authed = False
        self.pack = Pack(c.cells, c.capacity_ah, c.soc, c.temps, c.seed)
        self.profile = CurrentProfile(c.capacity_ah, c.profile, c.seed)
        if c.current is not None:
            self.profile.set_constant(c.current)
        self.limits = Limits()
        self.protection = Protection(self.limits)
        self.registers = Registers(self.limits, self.pack, runtime=self.runtime_s)
        self.power = Power(c.idle_sleep_s, c.reboot_s)
        self.power.boot_time = now
        self.faults = Faults(c.seed)
        self.faults.parse(c.faults, now)
        self.wire = Wire(c.baud)
        self.display = Display()
        self.display.set_period(self.faults.display, now)
        self.responder = resp.Responder(self)
        self._framer = Framer()
        self._rng = random.Random("latency-%s" % c.seed)
        self._status = Status()
        self.manual_charge_off = False
        self.manual_discharge_off = False
        self.balancer_mode = "auto"  # auto | on (manual) | off
        self.buzzer = True
        self.sim_time = 0.0
        self._start = now
        self._now = now
        self._frame_time = now
        self._last_step = now
        self._last_rx = now
        self._demand_a = 0.0
        # counters for `state`
        self.requests = 0
        self.display_requests = 0
        self.request_log = deque(maxlen=_REQUEST_LOG)
        self.commands = []
        self.rejected = 0
        self.collisions = 0
        self.unanswered = 0
        self.rx_bytes = 0
        self.rx_ignored = 0
        self.zero_current_calls = 0
        self._step(now, 0.0)

    # -- bytes from the bridge ------------------------------------------------

    def receive(self, data, now):
        self._now = now
        self.rx_bytes += len(data)
        if not self.power.powered() or self.bridge_baud != self.baud:
            self.rx_ignored += len(data)  # unpowered, or unreadable at this baud
            return
        if self.display.busy(now):
            self.collisions += len(data)
            return
        self._last_rx = now
        framer = self._framer
        pos = 0
        while True:
            pos = framer.feed(data, pos)
            if not framer.kind:
                break
            frame = bytes(framer.buf[framer.start : framer.start + framer.length])
            self._on_frame(frame, framer.kind, now, "bridge")

    def _on_frame(self, frame, kind, now, source):
        self._frame_time = now
        if not self.answers(now):
            self.unanswered += 1
            return
        for latency_class, reply in self.responder.handle(frame, kind, source):
            self._send_reply(reply, latency_class, now, source)

    def _send_reply(self, reply, latency_class, now, source):
        data, extra_ms = self.faults.apply(reply)
        if not data:
            return
        due = now + (self._latency_ms(latency_class) + extra_ms) / 1000.0
        on_done = None
        if source == "display":
            self.display.busy_until = float("inf")  # until the reply has left
            on_done = self.display.replied
        self.wire.send(self._as_seen(data), due, on_done)

    def _latency_ms(self, latency_class):
        if self.reply_latency_ms is not None:
            return float(self.reply_latency_ms)
        lo, hi = _LATENCY_MS[latency_class]
        return self._rng.uniform(lo, hi)

    def _as_seen(self, data):
        """Bytes as the bridge's UART decodes them."""
        if self.bridge_baud != self.baud:
            return garble(data, self.baud, self.bridge_baud)
        return data

    # -- time ---------------------------------------------------------------------

    def tick(self, now):
        """Advance the models to `now` (call every few ms)."""
        self._now = now
        if now - self._last_step >= _DYNAMICS_STEP_S:
            self._step(now, min(_MAX_STEP_S, now - self._last_step) * self.time_scale)
            self._last_step = now
        if self._framer.pending() and now - self._last_rx >= _QUIET_FLUSH_S:
            framer = self._framer
            while framer.flush():
                frame = bytes(framer.buf[framer.start : framer.start + framer.length])
                self._on_frame(frame, framer.kind, now, "bridge")
        if self.power.powered():
            request = self.display.due(now, self.protocol)
            if request is not None:
                # The bridge sees the request on the bus; the BMS has read it
                # once its last byte has arrived.
                self.wire.send(self._as_seen(request), now, lambda end, r=request: self._display_request_sent(r, end))

    def _display_request_sent(self, request, end_time):
        self.display_requests += 1
        framer = Framer()
        framer.feed(request)
        if framer.kind:
            self._on_frame(bytes(request), framer.kind, end_time, "display")

    def settle(self, now):
        """Re-evaluate protections and codes right away (after a control
        changed something), without advancing simulated time."""
        self._now = now
        self._step(now, 0.0)

    def pump(self, now):
        """Bytes that reached the bridge's RX by `now`."""
        if not self.power.powered():
            return b""
        return self.wire.pump(now)

    def _step(self, now, sim_dt):
        pack = self.pack
        self.sim_time += sim_dt
        prot = self.protection
        charge_code, discharge_code = self.mos_codes()
        demand = self.profile.demand(sim_dt, pack.soc_pct(), charge_code != CHARGE_ON, discharge_code != CHARGE_ON)
        self._demand_a = demand
        cells = pack.cells_mv()
        prot.evaluate(
            self.sim_time,
            cells,
            pack.probes_c(),
            pack.mosfet_temp_c(),
            demand,
            not self.manual_charge_off,
            not self.manual_discharge_off,
        )
        charge_code, discharge_code = self.mos_codes()
        current = 0.0
        if self.power.state != DEEP:
            if demand > 0 and charge_code == CHARGE_ON:
                current = demand
            elif demand < 0 and discharge_code == CHARGE_ON:
                current = demand
        mask = pack.pick_balancing(cells, self.balancer_mode, self.limits.balance_start_mv, self.limits.balance_diff_mv)
        pack.step(sim_dt, current, mask, self.limits.balance_current_ma)
        self.power.update(now, current)

    # -- what the responder asks ------------------------------------------------

    def answers(self, now):
        return self.power.answers(now) and not self.faults.is_silent(now)

    def count_request(self, source):
        """A status request answered (`requests` counts the bridge's)."""
        if source == "bridge":
            self.requests += 1
        self.request_log.append((round(self._frame_time - self._start, 3), source))

    def permitted(self):
        return self.password is None or self.authed

    def check_password(self, given):
        self.authed = self.password is None or given == self.password
        return self.authed

    def reject(self, name):
        self.rejected += 1

    def runtime_s(self):
        return max(0, int(self._now - self.power.boot_time))

    def mos_codes(self):
        prot = self.protection
        charge = MANUAL_OFF if self.manual_charge_off else (prot.charge_code() or CHARGE_ON)
        discharge = MANUAL_OFF if self.manual_discharge_off else (prot.discharge_code() or CHARGE_ON)
        return charge, discharge

    def balancer_code(self):
        if self.balancer_mode == "on":
            return 4
        if self.balancer_mode == "auto" and self.pack.balancing_mask:
            return 4
        return 0

    def control(self, name, protocol):
        """Carry out an accepted control; returns True (for the OLD balancer
        toggle: whether the balancer is now on)."""
        if len(self.commands) >= _MAX_COMMAND_LOG:
            del self.commands[0]
        self.commands.append(name)
        now = self._now
        pack = self.pack
        if name in ("charge-on", "charge-off"):
            self.manual_charge_off = name == "charge-off"
        elif name in ("discharge-on", "discharge-off"):
            self.manual_discharge_off = name == "discharge-off"
        elif name == "balancer-on":
            self.balancer_mode = "on"
        elif name == "balancer-off":
            self.balancer_mode = "off"
        elif name == "balancer-toggle":
            self.balancer_mode = "auto" if self.balancer_mode == "off" else "off"
            return self.balancer_mode != "off"
        elif name in ("buzzer-on", "buzzer-off"):
            self.buzzer = name == "buzzer-on"
        elif name == "reboot":
            self.reboot(now)
        elif name == "shutdown":
            self.power.sleep(deep=True)
        elif name == "factory-reset":
            self.limits.__init__()
            self.manual_charge_off = self.manual_discharge_off = False
            self.balancer_mode = "auto"
            self.reboot(now)
        elif name == "zero-current":
            self.zero_current_calls += 1
        elif name == "save":
            if protocol == "old":
                self.registers.old_apply()
            else:
                self.registers.new_save()
        elif name.endswith("-preset"):
            self.limits.load_preset(name[: -len("-preset")])
        elif name == "clear-discharge-ah":
            pack.total_discharged_ah = 0.0
        elif name == "clear-charge-ah":
            pack.total_charged_ah = 0.0
        elif name == "clear-discharge-time":
            pack.discharge_time_s = 0.0
        elif name == "clear-charge-time":
            pack.charge_time_s = 0.0
        elif name == "clear-runtime":
            self.power.boot_time = now
        return True

    def reboot(self, now):
        self.power.reboot(now)
        self.authed = False
        self.responder.reset_session()
        self.protection.clear()
        self.registers.reboot()

    # -- frames ---------------------------------------------------------------

    def fill_status(self, protocol):
        st = self._status
        pack = self.pack
        cells = pack.cells_mv()
        n = len(cells)
        st.clear()
        st.cell_count = n
        for i in range(n):
            st.cells_mv[i] = cells[i]
        probes = pack.probes_c()
        slots = _OLD_PROBE_SLOTS if protocol == "old" else self.temp_slots
        st.probe_slots = slots
        st.probe_count = min(slots, MAX_PROBES)
        for i in range(MAX_PROBES):
            if i < len(probes):
                st.temps_c[i] = probes[i]
            elif protocol == "old" and self.unfitted != -40:
                st.temps_c[i] = self.unfitted
            else:
                st.temps_c[i] = TEMP_NONE
        st.mosfet_c = pack.mosfet_temp_c()
        st.balancer_c = pack.balancer_temp_c()
        st.pack_cv = sum(cells) // 10
        st.current_da = int(round(pack.current_a * 10))
        st.power_w = int(round(st.pack_cv * st.current_da / 1000))
        st.soc_pct = pack.soc_pct()
        st.soh_pct = 100
        cap_uah = int(round(pack.capacity_ah * 1e6))
        st.capacity_mah, st.capacity_uah = divmod(cap_uah, 1000)
        rem_uah = int(round(pack.remaining_ah() * 1e6))
        st.remaining_mah, st.remaining_uah = divmod(rem_uah, 1000)
        cyc_mah = int(pack.cycle_ah * 1000)
        st.cycle_ah, st.cycle_mah = divmod(cyc_mah, 1000)
        st.runtime_s = self.runtime_s()
        st.charge_mos, st.discharge_mos = self.mos_codes()
        st.balancer = self.balancer_code()
        hi = max(cells)
        lo = min(cells)
        st.cell_max_mv = hi
        st.cell_max_index = cells.index(hi) + 1
        st.cell_min_mv = lo
        st.cell_min_index = cells.index(lo) + 1
        st.cell_avg_mv = sum(cells) // n
        st.cell_delta_mv = hi - lo
        mask = pack.balancing_mask
        st.balancing_lo = mask & 0xFFFF
        st.balancing_hi = (mask >> 16) & 0xFFFF
        st.charge_gate_dv = 103 if st.charge_mos == CHARGE_ON else 0
        st.discharge_gate_dv = 101 if st.discharge_mos == CHARGE_ON else 0
        st.comparator_raw = 0x02A7
        if protocol == "old":
            st.syslog = self.protection.log_word()
        else:
            st.permission = 5
            st.battery_state = 2 if st.current_da > 0 else (3 if st.current_da < 0 else 1)
            st.chemistry = self.limits.chemistry
            st.total_discharged_ah, st.total_discharged_mah = divmod(int(pack.total_discharged_ah * 1000), 1000)
            st.total_charged_ah, st.total_charged_mah = divmod(int(pack.total_charged_ah * 1000), 1000)
            st.total_discharge_time_s = int(pack.discharge_time_s)
            st.total_charge_time_s = int(pack.charge_time_s)
            self.protection.fill_flags(
                st.protection,
                st.warning,
                self.manual_charge_off,
                self.manual_discharge_off,
                self.balancer_mode == "on",
                cells,
            )
        return st

    def status_frame(self, protocol):
        st = self.fill_status(protocol)
        if protocol == "old":
            return bytes(old.build_status(st))
        return bytes(new.build_status(st))

    # -- the control port's view ------------------------------------------------

    def state(self):
        now = self._now
        pack = self.pack
        cells = pack.cells_mv()
        charge, discharge = self.mos_codes()
        return {
            "awake": self.answers(now),
            "sleep": self.power.state,
            "vcc": self.power.vcc,
            "supply": self.power.supply,
            "powered": self.power.powered(),
            "acc": self.power.acc,
            "sleeps": self.power.sleeps,  # times it fell asleep (idle, forced or shut down)
            "wakes": self.power.wakes,
            "rebooting": self.power.rebooting(now),
            "protocol": self.protocol,
            "baud": self.baud,
            "bridge_baud": self.bridge_baud,
            "charge_mos": charge,
            "discharge_mos": discharge,
            "balancer": self.balancer_code(),
            "balancer_mode": self.balancer_mode,
            "balancing_mask": pack.balancing_mask,
            "buzzer": self.buzzer,
            "soc_pct": pack.soc_pct(),
            "soc_exact": round(pack.soc_exact, 4),
            "current_a": round(pack.current_a, 1),
            "demand_a": round(self._demand_a, 1),
            "profile": "constant" if self.profile.constant_a is not None else self.profile.name,
            "pack_v": sum(cells) / 1000.0,
            "cells_mv": cells,
            "temps_c": pack.probes_c(),
            "mosfet_c": pack.mosfet_temp_c(),
            "balancer_c": pack.balancer_temp_c(),
            "capacity_ah": pack.capacity_ah,
            "remaining_ah": round(pack.remaining_ah(), 6),
            "runtime_s": self.runtime_s(),
            "requests": self.requests,
            "display_requests": self.display_requests,
            "recent_requests": [list(r) for r in self.request_log],
            "commands": list(self.commands),
            "rejected": self.rejected,
            "collisions": self.collisions,
            "unanswered": self.unanswered,
            "rx_bytes": self.rx_bytes,
            "rx_ignored": self.rx_ignored,
            "tx_bytes": self.wire.bytes_sent,
            "password_set": self.password is not None,
            "authed": self.authed,
            "faults": self.faults.settings(),
            "fault_counts": self.faults.counters(),
            "protection": self.protection.names(),
            "syslog": self.protection.syslog,
            "system_log": self.protection.log_entries(),
            "idle_sleep_s": self.power.idle_sleep_s,
            "time_scale": self.time_scale,
            "sim_time_s": round(self.sim_time, 3),
            "limits": dict(vars(self.limits)),
            "param_writes": self.registers.writes,
            "param_applies": self.registers.applies,
            "param_saves": self.registers.saves,
            "params": {p: self.registers.snapshot(p) for p in ("old", "new") if self.protocol in (p, "both")},
        }
