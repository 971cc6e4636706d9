# The numbers rules compare: one preallocated int array refilled from the
# model (and the energy estimates) once per evaluation, plus a "known" byte
# per signal. An absent probe, a cell index beyond the pack, a missing
# estimate or "no status yet" reads as unknown, never as 0.
#
# Every value is a fixed-point small int in the unit named in the table
# below; compile.py scales config numbers into the same units once.
from ant.status import MAX_CELLS, MAX_PROBES, TEMP_NONE

try:
    from micropython import const
except ImportError:  # CPython
    def const(__value):  # positional-only, like the stub
        return __value

S_SOC = const(0)  # %
S_SOH = const(1)  # %
S_PACK = const(2)  # 0.01 V
S_CURRENT = const(3)  # 0.1 A, + = charging
S_POWER = const(4)  # W, + = charging (the BMS's own field)
S_CHARGE_POWER = const(5)  # W >= 0 (estimates)
S_DISCHARGE_POWER = const(6)  # W >= 0 (estimates)
S_CELL_MIN = const(7)  # mV
S_CELL_MAX = const(8)
S_CELL_AVG = const(9)
S_CELL_DELTA = const(10)
S_TEMP_MIN = const(11)  # °C over the present probes
S_TEMP_MAX = const(12)
S_MOSFET = const(13)  # °C
S_BALANCER_T = const(14)  # °C
S_REMAINING = const(15)  # mAh
S_TTE = const(16)  # s (estimates; -1 = unknown)
S_TTF = const(17)  # s
S_CHARGE_MOS = const(18)  # 1 = on
S_DISCHARGE_MOS = const(19)
S_BALANCER = const(20)
S_CHARGING = const(21)  # current > 0
S_AGE = const(22)  # ms since the last verified status
S_HAS_DATA = const(23)
S_LINK = const(24)  # link.model LINK_*
S_CELL1 = const(25)  # cells 1..MAX_CELLS, mV
S_PROBE1 = const(57)  # probes 1..MAX_PROBES, °C
COUNT = const(65)

_AGE_MAX = const(0x1FFFFFFF)

# Config key -> (signal, scale from the config unit to the signal's unit).
NUMERIC = {
    "soc": (S_SOC, 1),
    "soh": (S_SOH, 1),
    "pack_v": (S_PACK, 100),
    "current_a": (S_CURRENT, 10),
    "power_w": (S_POWER, 1),
    "charge_power_w": (S_CHARGE_POWER, 1),
    "discharge_power_w": (S_DISCHARGE_POWER, 1),
    "cell_min_v": (S_CELL_MIN, 1000),
    "cell_max_v": (S_CELL_MAX, 1000),
    "cell_avg_v": (S_CELL_AVG, 1000),
    "cell_delta_mv": (S_CELL_DELTA, 1),
    "temp_min_c": (S_TEMP_MIN, 1),
    "temp_max_c": (S_TEMP_MAX, 1),
    "mosfet_c": (S_MOSFET, 1),
    "balancer_c": (S_BALANCER_T, 1),
    "remaining_ah": (S_REMAINING, 1000),
    "time_to_empty_min": (S_TTE, 60),
    "time_to_full_min": (S_TTF, 60),
    "data_age_s": (S_AGE, 1000),
}
# Numeric signals picked by a 1-based index: key -> (first signal, count, scale).
INDEXED = {
    "cell_v": (S_CELL1, MAX_CELLS, 1000),
    "temp_c": (S_PROBE1, MAX_PROBES, 1),
}
BOOLEAN = {
    "charge_mos": S_CHARGE_MOS,
    "discharge_mos": S_DISCHARGE_MOS,
    "balancer": S_BALANCER,
    "charging": S_CHARGING,
    "has_data": S_HAS_DATA,
}


def _put(val, known, sid, v):
    val[sid] = v
    known[sid] = 1


def _temp(val, known, sid, t):
    if t == TEMP_NONE:
        known[sid] = 0
    else:
        val[sid] = t
        known[sid] = 1


def extract(val, known, model, estimates, now_ms):
    """Refill val/known (array('i', COUNT), bytearray(COUNT)) from the model;
    allocates nothing."""
    st = model.status
    for sid in range(COUNT):
        known[sid] = 0
    _put(val, known, S_LINK, model.link)
    has = 1 if model.has_data else 0
    _put(val, known, S_HAS_DATA, has)
    if has:
        age = model.age_ms(now_ms)
        if age < 0:
            age = 0
        elif age > _AGE_MAX:
            age = _AGE_MAX
        _put(val, known, S_AGE, age)
    if estimates is not None:
        if estimates.time_to_empty_s >= 0:
            _put(val, known, S_TTE, estimates.time_to_empty_s)
        if estimates.time_to_full_s >= 0:
            _put(val, known, S_TTF, estimates.time_to_full_s)
        _put(val, known, S_CHARGE_POWER, estimates.charge_power_w)
        _put(val, known, S_DISCHARGE_POWER, estimates.discharge_power_w)
    if not has:
        return
    _put(val, known, S_SOC, st.soc_pct)
    if st.soh_pct >= 0:
        _put(val, known, S_SOH, st.soh_pct)
    _put(val, known, S_PACK, st.pack_cv)
    _put(val, known, S_CURRENT, st.current_da)
    _put(val, known, S_CHARGING, 1 if st.current_da > 0 else 0)
    _put(val, known, S_POWER, st.power_w)
    _put(val, known, S_REMAINING, st.remaining_mah)
    _put(val, known, S_CHARGE_MOS, 1 if st.charge_mos == 1 else 0)
    _put(val, known, S_DISCHARGE_MOS, 1 if st.discharge_mos == 1 else 0)
    _put(val, known, S_BALANCER, 1 if st.balancer == 1 else 0)
    n = st.cell_count
    if n > MAX_CELLS:
        n = MAX_CELLS
    if n > 0:
        _put(val, known, S_CELL_MIN, st.cell_min_mv)
        _put(val, known, S_CELL_MAX, st.cell_max_mv)
        _put(val, known, S_CELL_AVG, st.cell_avg_mv)
        _put(val, known, S_CELL_DELTA, st.cell_delta_mv)
        for k in range(n):
            _put(val, known, S_CELL1 + k, st.cells_mv[k])
    _temp(val, known, S_MOSFET, st.mosfet_c)
    _temp(val, known, S_BALANCER_T, st.balancer_c)
    n = st.probe_count
    if n > MAX_PROBES:
        n = MAX_PROBES
    lo = 32767
    hi = -32768
    for k in range(n):
        t = st.temps_c[k]
        if t != TEMP_NONE:
            _put(val, known, S_PROBE1 + k, t)
            if t < lo:
                lo = t
            if t > hi:
                hi = t
    if hi >= lo:
        _put(val, known, S_TEMP_MIN, lo)
        _put(val, known, S_TEMP_MAX, hi)
