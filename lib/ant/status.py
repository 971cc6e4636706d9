# The decoded pack state: one object, allocated once, refilled in place by the
# decoders of both protocol generations.
#
# Everything is a fixed-point small int or lives in a preallocated array, so a
# decode allocates nothing. Units are chosen so that no value reaches 2**30
# (the ESP32's small-int limit): a u32 capacity in µAh is kept as mAh plus the
# µAh remainder, a u32 mask as two 16-bit halves.
#
# Sign convention: current and power are positive while CHARGING. ANT's raw
# fields are positive while discharging; the decoders negate them.
from array import array

try:
    from micropython import const
except ImportError:  # CPython
    def const(__value):  # positional-only, like the stub
        return __value

PROTOCOL_NONE = const(0)
PROTOCOL_OLD = const(1)
PROTOCOL_NEW = const(2)
PROTOCOL_NAMES = ("none", "old", "new")

MAX_CELLS = const(32)  # both generations: a frame claiming more is refused
MAX_PROBES = const(8)  # probe temperatures kept in a Status (faces read the rest from the frame)
# Stored for an absent probe (ANT sends -40 °C for a slot with no sensor).
TEMP_NONE = const(-32768)
NOT_REPORTED = const(-1)
# decode_status() results of both generations (0 = decoded).
ERR_LENGTH = const(-1)  # NEW: LEN does not match the announced cell and probe blocks
ERR_CELL_COUNT = const(-2)  # more cells than any ANT unit has (MAX_CELLS)


class Status:
    def __init__(self):
        self.cells_mv = array("H", [0] * MAX_CELLS)
        self.temps_c = array("h", [TEMP_NONE] * MAX_PROBES)
        self.protection = bytearray(8)  # NEW only: raw flag bytes 10..17
        self.warning = bytearray(8)  # NEW only: raw flag bytes 18..25
        self.seq = 0  # bumped by every successful decode
        self.clear()

    def clear(self):
        self.protocol = PROTOCOL_NONE
        self.cell_count = 0
        self.probe_count = 0  # probe slots decoded into temps_c (<= MAX_PROBES)
        self.probe_slots = 0  # probe slots the BMS announced
        for i in range(MAX_CELLS):
            self.cells_mv[i] = 0
        for i in range(MAX_PROBES):
            self.temps_c[i] = TEMP_NONE
        for i in range(8):
            self.protection[i] = 0
            self.warning[i] = 0
        self.mosfet_c = TEMP_NONE
        self.balancer_c = TEMP_NONE
        self.pack_cv = 0  # pack voltage, 0.01 V
        self.current_da = 0  # 0.1 A, + = charging
        self.power_w = 0  # W, + = charging (the BMS's own field)
        self.soc_pct = 0
        self.soh_pct = NOT_REPORTED
        self.capacity_mah = 0  # full capacity = capacity_mah + capacity_uah / 1000
        self.capacity_uah = 0
        self.remaining_mah = 0
        self.remaining_uah = 0
        self.cycle_ah = 0  # cumulative cycle capacity = cycle_ah + cycle_mah / 1000
        self.cycle_mah = 0
        self.runtime_s = 0
        self.charge_mos = 0
        self.discharge_mos = 0
        self.balancer = 0
        self.cell_max_mv = 0
        self.cell_max_index = 0  # 1-based, as reported (may exceed cell_count)
        self.cell_min_mv = 0
        self.cell_min_index = 0
        self.cell_avg_mv = 0
        self.cell_delta_mv = 0
        self.balancing_lo = 0  # bit k = cell k+1, cells 1..16
        self.balancing_hi = 0  # cells 17..32
        # Raw extras of one generation or the other (NOT_REPORTED when absent).
        self.syslog = NOT_REPORTED  # OLD: rolling system-log word
        self.permission = NOT_REPORTED  # NEW byte 6
        self.battery_state = NOT_REPORTED  # NEW byte 7 (unreliable, see reference)
        self.chemistry = NOT_REPORTED  # NEW: 0xFAF1..0xFAF4
        self.ds_raw = 0
        self.discharge_gate_dv = 0  # gate drive, 0.1 V
        self.charge_gate_dv = 0
        self.comparator_raw = 0
        self.tire_mm = NOT_REPORTED  # OLD only
        self.pulses = NOT_REPORTED
        self.relay = NOT_REPORTED
        self.total_discharged_ah = NOT_REPORTED  # NEW only; + _mah remainder
        self.total_discharged_mah = 0
        self.total_charged_ah = NOT_REPORTED
        self.total_charged_mah = 0
        self.total_discharge_time_s = NOT_REPORTED
        self.total_charge_time_s = NOT_REPORTED

    def copy_from(self, other):
        """Copy every field of another Status (no allocation)."""
        for i in range(MAX_CELLS):
            self.cells_mv[i] = other.cells_mv[i]
        for i in range(MAX_PROBES):
            self.temps_c[i] = other.temps_c[i]
        for i in range(8):
            self.protection[i] = other.protection[i]
            self.warning[i] = other.warning[i]
        for name in _SCALARS:
            setattr(self, name, getattr(other, name))

    def balancing(self, cell):
        """True while 1-based `cell` is being balanced."""
        if cell <= 16:
            return (self.balancing_lo >> (cell - 1)) & 1 == 1
        return (self.balancing_hi >> (cell - 17)) & 1 == 1


_SCALARS = tuple(
    name
    for name in sorted(Status().__dict__)
    if name not in ("cells_mv", "temps_c", "protection", "warning")
)


def fit_probes(st, fitted):
    """Only the first `fitted` probes are fitted (a configured count: an
    unfitted OLD slot may read -30 or 0 rather than -40, reference §2.2):
    the others read absent and are not counted. Allocates nothing."""
    temps = st.temps_c
    for i in range(MAX_PROBES):
        if i >= fitted:
            temps[i] = TEMP_NONE
    if st.probe_count > fitted:
        st.probe_count = fitted


def split_1000(hi, lo, out, index):
    """(hi << 16 | lo) // 1000 and % 1000 into out[index], out[index + 1],
    without forming an int >= 2**30 on the way."""
    a = hi // 1000
    r = (hi - a * 1000) * 65536 + lo
    q = r // 1000
    out[index] = a * 65536 + q
    out[index + 1] = r - q * 1000


def join_1000(whole, part):
    """Inverse of split_1000 (used at the faces and by the frame builders;
    may allocate)."""
    return whole * 1000 + part
