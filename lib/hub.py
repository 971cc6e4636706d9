# The state hub: the one place the faces (web page, JSON API, /metrics, SSE,
# MQTT, BLE) read the bridge's published state from, and the one dispatcher
# that tells them when it changed.
#
#   hub = Hub(model, link_engine)           # build() attaches the rest:
#   hub.relays, hub.acc, hub.energy, hub.health, hub.log, hub.wifi
#   hub.publish(P_STATUS)                   # a producer: something changed
#   sub = hub.subscribe(1 << P_STATUS | 1 << P_LINK)
#   parts = await sub.wait()                # a face: wake on a change
#   hub.raw(R_PACK_V), hub.text(R_LINK_STATE), hub.count(R_CELLS)
#
# Every part (catalog.P_*) has a change counter; publish() bumps it and wakes
# the subscriptions whose mask includes that part. A face never polls: it
# waits, then reads what it needs through the catalog rows (lib/catalog.py),
# so JSON, metrics and Home Assistant see the same values. publish() and the
# raw reads allocate nothing, so producers may call them on every frame.
from array import array

import catalog as C
from acc import STATE_TEXT as ACC_TEXT
from ant import alarms, codes
from ant.status import NOT_REPORTED, TEMP_NONE
from ticks import wrap_add
from wakeup import Wakeup

MAX_SUBSCRIBERS = 12  # web streams, MQTT, BLE, internal tasks


class Subscription:
    def __init__(self, hub, mask):
        self.hub = hub
        self.mask = mask  # bit p set: wake on part p
        self.pending = 0  # parts changed since the last take()
        self.wakeup = Wakeup()

    def take(self):
        """The parts that changed since the last take() (bits), cleared."""
        p = self.pending
        self.pending = 0
        return p

    async def wait(self):
        """Wait until one of the subscribed parts changes; the changed parts
        (bits). Returns at once when something changed since the last call."""
        if not self.pending:
            await self.wakeup
        return self.take()

    def close(self):
        self.hub.unsubscribe(self)


class Hub:
    def __init__(self, model, link, log=None, clock=None):
        self.model = model  # link.model.Model: the status and the link state
        self.link = link  # link.engine.LinkEngine: statistics, baud, commands
        self.log = log  # eventlog.EventLog
        self.clock = clock  # .ticks_ms(): for the data age
        self.relays = None  # firmware relays: count, names, state(i), levels, switches(i), on_total_s(i)
        self.acc = None  # acc.AccController
        self.energy = None  # energy.Energy
        self.health = None  # firmware health: uptime_s(), heap_free, heap_min_free, restart_count, safe_mode
        self.alarms = None  # alarmwatch.AlarmWatch: active BMS alarms and since when
        self.wifi = None  # wifistate.WifiState (firmware/wifi.py keeps its rssi)
        self.counters = array("i", [0] * C.PARTS)
        self._subs = []
        self.texts = {}  # catalog row -> tuple of names for K_TEXT rows

    def attach(self, relays=None, acc=None, energy=None, health=None, alarms=None):
        """The parts build() made after the hub (each may be None)."""
        self.relays = relays
        self.acc = acc
        self.energy = energy
        self.health = health
        self.alarms = alarms

    # -- producers --------------------------------------------------------------

    def publish(self, part):
        """Part `part` changed: bump its counter and wake its subscribers."""
        self.counters[part] = wrap_add(self.counters[part], 1)
        bit = 1 << part
        subs = self._subs
        for i in range(len(subs)):
            sub = subs[i]
            if sub.mask & bit:
                sub.pending |= bit
                sub.wakeup.fire()

    def publish_mask(self, mask):
        for part in range(C.PARTS):
            if mask & (1 << part):
                self.publish(part)

    # -- faces ------------------------------------------------------------------------

    def subscribe(self, mask):
        """A Subscription woken on changes of the parts in mask; ValueError
        when the hub already serves MAX_SUBSCRIBERS (faces cap their clients
        below that)."""
        if len(self._subs) >= MAX_SUBSCRIBERS:
            raise ValueError("too many subscribers")
        sub = Subscription(self, mask)
        self._subs.append(sub)
        return sub

    def unsubscribe(self, sub):
        if sub in self._subs:
            self._subs.remove(sub)

    def subscribers(self):
        return len(self._subs)

    def has_data(self):
        return self.model.has_data

    def live(self):
        return self.model.live()

    def count(self, row):
        """How many values an array row has now (cells, probes, outputs)."""
        kind = C.ROWS[row][C.KIND]
        if kind == C.K_CELLS:
            return self.model.status.cell_count
        if kind == C.K_PROBES:
            return self.model.status.probe_count
        if kind == C.K_OUTPUTS:
            return self.relays.count if self.relays is not None else 0
        if kind == C.K_LIST:
            st = self.model.status
            n = 0
            for cell in range(1, st.cell_count + 1):
                if st.balancing(cell):
                    n += 1
            return n
        return 1

    def label(self, row, k):
        """The label value of element k of an array row (a face: allocates)."""
        relays = self.relays
        if C.ROWS[row][C.KIND] == C.K_OUTPUTS and relays is not None:
            return relays.names[k]
        return str(k + 1)

    def raw(self, row, k=0):
        """The row's raw value (fixed point, see the catalog), or None when
        it is unknown now. K_SPLIT3 rows: the high part (low() the rest)."""
        part = C.ROWS[row][C.PART]
        if part == C.P_STATUS:
            if not self.model.has_data:
                return None
            return self._status(row, k)
        if part == C.P_LINK:
            return self._link(row)
        if part == C.P_OUTPUTS:
            return self._outputs(row, k)
        if part == C.P_ACC:
            return self._acc(row)
        if part == C.P_ENERGY:
            return self._energy(row, False)
        if part == C.P_HEALTH:
            return self._health(row)
        if part == C.P_WIFI:
            return self._wifi(row)
        return None

    def low(self, row):
        """The low three digits of a K_SPLIT3 row (0..999)."""
        part = C.ROWS[row][C.PART]
        if part == C.P_ENERGY:
            return self._energy(row, True)
        st = self.model.status
        key = C.ROWS[row][C.KEY]
        if key == "capacity_ah":
            return st.capacity_uah
        if key == "remaining_ah":
            return st.remaining_uah
        if key == "cycle_ah":
            return st.cycle_mah
        if key == "total_discharged_ah":
            return st.total_discharged_mah
        if key == "total_charged_ah":
            return st.total_charged_mah
        return 0

    def text(self, row, k=0):
        """The name of a K_TEXT row's value (texts[row]: a tuple indexed by
        the value, or a dict), or a K_STATE row's text; None when unknown."""
        v = self.raw(row, k)
        if v is None:
            return None
        key = C.ROWS[row][C.KEY]
        if key == "charge_mos":
            return codes.charge_text(v)
        if key == "discharge_mos":
            return codes.discharge_text(v)
        if key == "balancer":
            return codes.balancer_text(v)
        names = self.texts.get(row)
        if names is None:
            return None
        if isinstance(names, dict):
            return names.get(v)
        return names[v] if 0 <= v < len(names) else None

    def acc_text(self):
        """What the ACC state means, in words (None without ACC)."""
        a = self.acc
        if a is None:
            return None
        return ACC_TEXT[a.state] if 0 <= a.state < len(ACC_TEXT) else None

    def state_on(self, row):
        """A K_STATE row's on/off (the MOSFET conducts, the balancer runs)."""
        v = self.raw(row)
        if v is None:
            return None
        if C.ROWS[row][C.KEY] == "balancer":
            return codes.balancer_on(v)
        return codes.mos_on(v)

    # -- readers per part (allocation-free) ------------------------------------------------

    def _status(self, row, k):
        st = self.model.status
        key = C.ROWS[row][C.KEY]
        if row == C.R_PACK_V:
            return st.pack_cv
        if row == C.R_CURRENT:
            return st.current_da
        if row == C.R_POWER:
            return st.power_w
        if row == C.R_SOC:
            return st.soc_pct
        if row == C.R_CELLS:
            return st.cells_mv[k]
        if row == C.R_CELL_MIN:
            return st.cell_min_mv
        if row == C.R_CELL_MAX:
            return st.cell_max_mv
        if row == C.R_TEMPS:
            t = st.temps_c[k]
            return None if t == TEMP_NONE else t
        if row == C.R_ALARMS:
            return self.alarm_count(st)
        if key == "soh_pct":
            return _opt(st.soh_pct)
        if key == "capacity_ah":
            return st.capacity_mah
        if key == "remaining_ah":
            return st.remaining_mah
        if key == "cycle_ah":
            return st.cycle_ah
        if key == "runtime_s":
            return st.runtime_s
        if key == "cell_count":
            return st.cell_count
        if key == "cell_min_index":
            return st.cell_min_index
        if key == "cell_max_index":
            return st.cell_max_index
        if key == "cell_avg_v":
            return st.cell_avg_mv
        if key == "cell_delta_v":
            return st.cell_delta_mv
        if key == "mosfet_temp_c":
            return None if st.mosfet_c == TEMP_NONE else st.mosfet_c
        if key == "balancer_temp_c":
            return None if st.balancer_c == TEMP_NONE else st.balancer_c
        if key == "charge_mos":
            return st.charge_mos
        if key == "discharge_mos":
            return st.discharge_mos
        if key == "balancer":
            return st.balancer
        if key == "balancing_cells":
            return self._balancing(st, k)
        if key == "probe_slots":
            return st.probe_slots
        if key == "system_log":
            return _opt(st.syslog)
        if key == "battery_state":
            return _opt(st.battery_state)
        if key == "chemistry":
            return _opt(st.chemistry)
        if key == "discharge_gate_v":
            return st.discharge_gate_dv
        if key == "charge_gate_v":
            return st.charge_gate_dv
        if key == "total_discharged_ah":
            return _opt(st.total_discharged_ah)
        if key == "total_charged_ah":
            return _opt(st.total_charged_ah)
        if key == "total_discharge_time_s":
            return _opt(st.total_discharge_time_s)
        if key == "total_charge_time_s":
            return _opt(st.total_charge_time_s)
        if key == "protection_flags" or key == "warning_flags":
            return None if st.permission == NOT_REPORTED else 1
        return None

    def _balancing(self, st, k):
        # The k-th balancing cell (1-based cell numbers).
        n = 0
        for cell in range(1, st.cell_count + 1):
            if st.balancing(cell):
                if n == k:
                    return cell
                n += 1
        return None

    def alarm_count(self, st):
        return alarms.count(st)

    def _link(self, row):
        model = self.model
        key = C.ROWS[row][C.KEY]
        if row == C.R_LINK_STATE:
            return model.link
        if row == C.R_LIVE:
            return 1 if model.live() else 0
        if key == "data_age_s":
            if not model.has_data or self.clock is None:
                return None
            return model.age_ms(self.clock.ticks_ms())
        stats = self.link.stats
        if key == "frames_ok":
            return stats.frames_ok
        if key == "polls":
            return stats.polls
        if key == "timeouts":
            return stats.timeouts
        if key == "checksum_errors":
            return stats.checksum_errors
        if key == "bytes_dropped":
            return stats.bytes_dropped
        if key == "foreign_frames":
            return stats.foreign_frames
        if key == "commands_ok":
            return stats.commands_ok
        if key == "commands_failed":
            return stats.commands_failed
        return None

    def _outputs(self, row, k):
        relays = self.relays
        if relays is None or not 0 <= k < relays.count:
            return None
        key = C.ROWS[row][C.KEY]
        if row == C.R_OUTPUT_ON:
            return 1 if relays.state(k) else 0
        if key == "output_pin":
            return relays.levels[k]
        if key == "output_switches":
            return relays.switches(k)
        if key == "output_on_seconds":
            return relays.on_total_s(k)
        return None

    def _acc(self, row):
        a = self.acc
        if a is None:
            return None
        key = C.ROWS[row][C.KEY]
        if row == C.R_ACC_STATE:
            return a.state
        if key == "acc":
            return a.acc_level
        if key == "supply":
            return a.supply_level
        if key == "wakes_ok":
            return a.wakes_ok
        if key == "wake_failures":
            return a.wake_failures
        return None

    def _energy(self, row, low):
        e = self.energy
        if e is None:
            return None
        key = C.ROWS[row][C.KEY]
        if row == C.R_TTE:
            return None if e.time_to_empty_s < 0 else e.time_to_empty_s
        if row == C.R_TTF:
            return None if e.time_to_full_s < 0 else e.time_to_full_s
        if key == "power_mismatch":
            return 1 if e.power_mismatch else 0
        if key == "charged_kwh":
            return e.charged_mj // 3600 if low else e.charged_wh
        if key == "discharged_kwh":
            return e.discharged_mj // 3600 if low else e.discharged_wh
        if key == "charged_ah":
            return e.charged_mas // 3600 if low else e.charged_ah
        if key == "discharged_ah":
            return e.discharged_mas // 3600 if low else e.discharged_ah
        return None

    def _health(self, row):
        h = self.health
        if h is None:
            return None
        key = C.ROWS[row][C.KEY]
        if row == C.R_UPTIME:
            return h.uptime_s()
        if key == "heap_free":
            return h.heap_free
        if key == "heap_min_free":
            return h.heap_min_free
        if key == "task_restarts":
            return h.restart_count
        if key == "safe_mode":
            return 1 if h.safe_mode else 0
        return None

    def _wifi(self, row):
        w = self.wifi
        if row == C.R_WIFI_UP:
            return 1 if w is not None and w.connected() else 0
        if w is None:
            return None
        if row == C.R_WIFI_RSSI:
            return w.rssi if w.connected() and w.rssi else None
        return None


def _opt(v):
    return None if v == NOT_REPORTED else v
