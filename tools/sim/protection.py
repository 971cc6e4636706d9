# Protections: limits with hysteresis that switch the MOSFETs off with the
# reference's state codes (§2.3), the NEW protocol's protection/warning flag
# bytes and the OLD protocol's system log: 32 slots, each new entry in the
# next slot (a ring), shown one slot per status frame in the rolling word
# (bytes 136-137): the newest entry first, then round the filled slots, as a
# real unit rolls through its log (the 2019 capture in the reference).
#
# The meaning of the NEW flag bytes is not published (reference §3.2, §9.4).
# Observed bits are reproduced (byte 10 bit 1 with charge code 2, byte 12
# bit 1 / bit 5 for manually-off discharge / charge FET, warning byte 21 =
# 0x20 while manual balancing); the other bits are this simulator's choice:
#   protection byte 10: bit 1 cell over-voltage, bit 4 cell under-voltage
#   protection byte 11: bit 0 charge over-current, bit 1 discharge
#     over-current, bit 4 charge over-temperature, bit 5 discharge
#     over-temperature, bit 6 MOSFET over-temperature, bit 7 low temperature
#   protection byte 12: bit 1 discharge FET manually off, bit 5 charge FET
#     manually off
#   warning byte 18: bit 1 cell high (>= alarm level), bit 4 cell low
#   warning byte 21: 0x20 manual balancing

CHARGE_ON = 1
MANUAL_OFF = 15


class Limits:
    """Protection and balancing settings (LiFePO4 defaults)."""

    def __init__(self):
        self.load_preset("lfp")
        self.charge_oc_da = 1000  # 100 A
        self.charge_oc_delay_s = 2
        self.discharge_oc_da = 2000  # 200 A
        self.discharge_oc_delay_s = 2
        self.oc_recover_s = 10  # no register: a fixed retry time
        self.charge_ot_c = 55
        self.charge_ot_recover_c = 50
        self.discharge_ot_c = 60
        self.discharge_ot_recover_c = 55
        self.mosfet_ot_c = 90
        self.mosfet_ot_recover_c = 80
        self.charge_ut_c = 0
        self.charge_ut_recover_c = 3
        self.discharge_ut_c = -20
        self.discharge_ut_recover_c = -15
        self.balance_diff_mv = 10
        self.balance_current_ma = 100
        self.standby_s = 180  # OLD register 22 on Wnt's unit

    def load_preset(self, chemistry):
        if chemistry == "lfp":
            values = (3650, 3550, 3600, 2500, 2800, 2800, 3400, 0xFAF2)
        elif chemistry == "lto":
            values = (2800, 2700, 2750, 1600, 1900, 1900, 2500, 0xFAF3)
        elif chemistry == "liion":
            values = (4250, 4150, 4200, 2800, 3100, 3100, 4100, 0xFAF1)
        else:
            raise ValueError("unknown chemistry " + chemistry)
        (
            self.cell_ov_mv,
            self.cell_ov_recover_mv,
            self.cell_ov_alarm_mv,
            self.cell_uv_mv,
            self.cell_uv_recover_mv,
            self.cell_uv_warn_mv,
            self.balance_start_mv,
            self.chemistry,
        ) = values


# name -> (charge code, discharge code, flag byte index, bit)
_KINDS = {
    "cell_overvoltage": (2, 0, 0, 1),
    "cell_undervoltage": (0, 2, 0, 4),
    "charge_overcurrent": (3, 0, 1, 0),
    "discharge_overcurrent": (0, 3, 1, 1),
    "charge_overtemperature": (6, 0, 1, 4),
    "discharge_overtemperature": (0, 6, 1, 5),
    "mosfet_overtemperature": (7, 7, 1, 6),
    "charge_undertemperature": (17, 0, 1, 7),
    "discharge_undertemperature": (0, 17, 1, 7),
}
# The first active kind in this order names why a FET is off.
_ORDER = (
    "mosfet_overtemperature",
    "charge_overtemperature",
    "discharge_overtemperature",
    "charge_undertemperature",
    "discharge_undertemperature",
    "charge_overcurrent",
    "discharge_overcurrent",
    "cell_overvoltage",
    "cell_undervoltage",
)
NAMES = _ORDER


class Protection:
    def __init__(self, limits):
        self.limits = limits
        self.active = {}  # name -> simulated time it tripped
        self._oc_since = {"charge_overcurrent": None, "discharge_overcurrent": None}
        self.syslog = 0  # the newest entry's word (0: none yet)
        self.log = [None] * 32  # the system log by slot: word or None
        self._log_slot = 0  # where the next entry goes
        self._cursor = 0  # the slot the next frame shows (or the next filled one after it)
        self.trips = 0

    def clear(self):
        self.active.clear()
        for k in self._oc_since:
            self._oc_since[k] = None

    def _set(self, name, tripped, t, cell=0):
        if tripped and name not in self.active:
            self.active[name] = t
            self.trips += 1
            self._log(name, cell)
        elif not tripped and name in self.active:
            del self.active[name]

    def _log(self, name, cell):
        charge_code, discharge_code = _KINDS[name][0], _KINDS[name][1]
        discharge = charge_code == 0
        self.add_entry(discharge_code if discharge else charge_code, cell, discharge)

    def add_entry(self, code, cell, discharge):
        """A new system-log entry in the next slot. OLD word: bits 0-4 code,
        5-9 cell, 10-14 slot, 15 = discharge table."""
        if not 0 <= code <= 31 or not 0 <= cell <= 31:
            raise ValueError("code and cell must be 0..31")
        slot = self._log_slot
        word = code | (cell << 5) | (slot << 10) | ((1 if discharge else 0) << 15)
        self.log[slot] = word
        self.syslog = word
        self._cursor = slot  # the next frame shows it
        self._log_slot = (slot + 1) & 0x1F
        return word

    def log_word(self):
        """The word the next OLD status frame carries: the next filled slot
        in turn (0 while the log is empty)."""
        for k in range(32):
            slot = (self._cursor + k) & 0x1F
            word = self.log[slot]
            if word is not None:
                self._cursor = (slot + 1) & 0x1F
                return word
        return 0

    def log_entries(self):
        return [{"slot": slot, "word": word, "code": word & 0x1F, "cell": (word >> 5) & 0x1F,
                 "table": "discharge" if word & 0x8000 else "charge"}
                for slot, word in enumerate(self.log) if word is not None]

    def evaluate(self, t, cells_mv, probes_c, mosfet_c, demand_a, charge_open, discharge_open):
        """Update the active set at simulated time t. demand_a is the current
        asked for; charge_open/discharge_open: whether that FET would conduct
        without these protections (manual state)."""
        lim = self.limits
        active = self.active
        if cells_mv:
            hi = max(cells_mv)
            lo = min(cells_mv)
            hi_cell = cells_mv.index(hi) + 1
            lo_cell = cells_mv.index(lo) + 1
            if "cell_overvoltage" in active:
                self._set("cell_overvoltage", hi >= lim.cell_ov_recover_mv, t)
            else:
                self._set("cell_overvoltage", hi >= lim.cell_ov_mv, t, hi_cell)
            if "cell_undervoltage" in active:
                self._set("cell_undervoltage", lo <= lim.cell_uv_recover_mv, t)
            else:
                self._set("cell_undervoltage", lo <= lim.cell_uv_mv, t, lo_cell)
        if probes_c:
            hot = max(probes_c)
            cold = min(probes_c)
            self._hyst_high("charge_overtemperature", hot, lim.charge_ot_c, lim.charge_ot_recover_c, t)
            self._hyst_high("discharge_overtemperature", hot, lim.discharge_ot_c, lim.discharge_ot_recover_c, t)
            self._hyst_low("charge_undertemperature", cold, lim.charge_ut_c, lim.charge_ut_recover_c, t)
            self._hyst_low("discharge_undertemperature", cold, lim.discharge_ut_c, lim.discharge_ut_recover_c, t)
        self._hyst_high("mosfet_overtemperature", mosfet_c, lim.mosfet_ot_c, lim.mosfet_ot_recover_c, t)
        self._overcurrent("charge_overcurrent", demand_a * 10 > lim.charge_oc_da and charge_open, lim.charge_oc_delay_s, t)
        self._overcurrent(
            "discharge_overcurrent", -demand_a * 10 > lim.discharge_oc_da and discharge_open, lim.discharge_oc_delay_s, t
        )

    def _hyst_high(self, name, value, trip, recover, t):
        if name in self.active:
            self._set(name, value > recover, t)
        else:
            self._set(name, value >= trip, t)

    def _hyst_low(self, name, value, trip, recover, t):
        if name in self.active:
            self._set(name, value < recover, t)
        else:
            self._set(name, value <= trip, t)

    def _overcurrent(self, name, over, delay_s, t):
        # Trips after delay_s above the limit; retries after oc_recover_s.
        if name in self.active:
            if t - self.active[name] >= self.limits.oc_recover_s:
                self._set(name, False, t)
                self._oc_since[name] = None
            return
        if not over:
            self._oc_since[name] = None
            return
        since = self._oc_since[name]
        if since is None:
            self._oc_since[name] = t
        elif t - since >= delay_s:
            self._set(name, True, t)

    def charge_code(self):
        for name in _ORDER:
            if name in self.active and _KINDS[name][0]:
                return _KINDS[name][0]
        return 0

    def discharge_code(self):
        for name in _ORDER:
            if name in self.active and _KINDS[name][1]:
                return _KINDS[name][1]
        return 0

    def names(self):
        return [name for name in _ORDER if name in self.active]

    def fill_flags(self, protection, warning, manual_charge_off, manual_discharge_off, manual_balancing, cells_mv):
        for i in range(8):
            protection[i] = 0
            warning[i] = 0
        for name in self.active:
            kind = _KINDS[name]
            protection[kind[2]] |= 1 << kind[3]
        if manual_discharge_off:
            protection[2] |= 0x02
        if manual_charge_off:
            protection[2] |= 0x20
        if cells_mv:
            if max(cells_mv) >= self.limits.cell_ov_alarm_mv:
                warning[0] |= 0x02
            if min(cells_mv) <= self.limits.cell_uv_warn_mv:
                warning[0] |= 0x10
        if manual_balancing:
            warning[3] |= 0x20
