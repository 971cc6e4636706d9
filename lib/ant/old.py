# OLD protocol ("AA 55 AA FF", big-endian, 140-byte status, 6-byte commands).
#
# decode_status() fills a Status in place from a verified frame inside any
# buffer; build_status() writes the frame a real unit would send for a Status
# (the simulator and the round-trip tests use it); short_frame() builds the
# 6-byte request/command frames.
#
# The builder saturates every value at its field's range, as a unit's own
# firmware clamps what it reports (a capacity beyond 4294.967295 Ah reads as
# that, never as the low 32 bits), and a fitted probe never reads -40 °C,
# which the frame reserves for "absent" (it reads -39).
from array import array

from ticks import wrap_add

try:
    from micropython import const
except ImportError:  # CPython
    def const(__value):  # positional-only, like the stub
        return __value

from ant.checksum import sum16
from ant.status import (
    ERR_CELL_COUNT,
    MAX_CELLS,
    MAX_PROBES,
    NOT_REPORTED,
    PROTOCOL_OLD,
    TEMP_NONE,
    join_1000,
    split_1000,
)

FRAME_LEN = const(140)
HEAD_READ = const(0x5A)
HEAD_WRITE = const(0xA5)
HEAD_DATA = const(0xDB)

# Offsets of the 140-byte status frame (reference §2.2).
_PACK_V = const(4)
_CELLS = const(6)
_CURRENT = const(70)
_SOC = const(74)
_CAPACITY = const(75)
_REMAINING = const(79)
_CYCLE = const(83)
_RUNTIME = const(87)
_T_MOSFET = const(91)
_T_BALANCER = const(93)
_T_PROBES = const(95)
_PROBES = const(4)
_CHARGE_MOS = const(103)
_DISCHARGE_MOS = const(104)
_BALANCER = const(105)
_TIRE = const(106)
_PULSES = const(108)
_RELAY = const(110)
_POWER = const(111)
_MAX_IDX = const(115)
_MAX_MV = const(116)
_MIN_IDX = const(118)
_MIN_MV = const(119)
_AVG_MV = const(121)
_CELL_COUNT = const(123)
_DS = const(124)
_DSG_GATE = const(126)
_CHG_GATE = const(128)
_COMPARATOR = const(130)
_BALANCING = const(132)
_SYSLOG = const(136)
_CHECKSUM = const(138)

# Control registers (reference §2.6).
REG_PASSWORD_1 = const(0xF1)  # F1..F4 carry two ASCII characters each
REG_REJECTED = const(0xF5)  # BMS reply "A5 A5 F5 00 01": not authorised
REG_APPLY = const(0xFF)

_I32_LIMIT = const(0x1FFFFFFF)  # clamp of absurd i32 values: stays a small int

_split = array("i", [0, 0])


def _u16(b, o):
    return (b[o] << 8) | b[o + 1]


def _i16(b, o):
    v = (b[o] << 8) | b[o + 1]
    return v - 0x10000 if v & 0x8000 else v


def _i32(b, o):
    # Built from 16-bit halves so that no intermediate reaches 2**30; values
    # beyond +-2**29 (never plausible for current or power) are clamped.
    hi = (b[o] << 8) | b[o + 1]
    lo = (b[o + 2] << 8) | b[o + 3]
    if hi & 0x8000:
        hi -= 0x10000
    if hi >= 0x2000:
        return _I32_LIMIT
    if hi < -0x2000:
        return -_I32_LIMIT
    return hi * 65536 + lo


def _u32_clamped(b, o):
    hi = (b[o] << 8) | b[o + 1]
    if hi >= 0x4000:
        return 0x3FFFFFFF
    return hi * 65536 + ((b[o + 2] << 8) | b[o + 3])


def _temp(b, o):
    t = _i16(b, o)
    return TEMP_NONE if t == -40 else t


def decode_status(b, o, st):
    """Fill `st` from the verified 140-byte frame at b[o]. Returns 0, or
    ERR_CELL_COUNT (st untouched) when it claims more than MAX_CELLS cells:
    the frame has 32 cell slots, and the NEW decoder refuses the same."""
    n = b[o + _CELL_COUNT]
    if n > MAX_CELLS:
        return ERR_CELL_COUNT
    st.protocol = PROTOCOL_OLD
    st.cell_count = n
    cells = st.cells_mv
    for i in range(MAX_CELLS):
        cells[i] = _u16(b, o + _CELLS + 2 * i) if i < n else 0
    st.pack_cv = _u16(b, o + _PACK_V) * 10
    st.current_da = -_i32(b, o + _CURRENT)
    st.power_w = -_i32(b, o + _POWER)
    st.soc_pct = b[o + _SOC]
    st.soh_pct = NOT_REPORTED
    split = _split
    split_1000(_u16(b, o + _CAPACITY), _u16(b, o + _CAPACITY + 2), split, 0)
    st.capacity_mah = split[0]
    st.capacity_uah = split[1]
    split_1000(_u16(b, o + _REMAINING), _u16(b, o + _REMAINING + 2), split, 0)
    st.remaining_mah = split[0]
    st.remaining_uah = split[1]
    split_1000(_u16(b, o + _CYCLE), _u16(b, o + _CYCLE + 2), split, 0)
    st.cycle_ah = split[0]
    st.cycle_mah = split[1]
    st.runtime_s = _u32_clamped(b, o + _RUNTIME)
    st.mosfet_c = _temp(b, o + _T_MOSFET)
    st.balancer_c = _temp(b, o + _T_BALANCER)
    temps = st.temps_c
    for i in range(MAX_PROBES):
        temps[i] = _temp(b, o + _T_PROBES + 2 * i) if i < _PROBES else TEMP_NONE
    st.probe_count = _PROBES
    st.probe_slots = _PROBES
    st.charge_mos = b[o + _CHARGE_MOS]
    st.discharge_mos = b[o + _DISCHARGE_MOS]
    st.balancer = b[o + _BALANCER]
    st.tire_mm = _u16(b, o + _TIRE)
    st.pulses = _u16(b, o + _PULSES)
    st.relay = b[o + _RELAY]
    st.cell_max_index = b[o + _MAX_IDX]
    st.cell_max_mv = _u16(b, o + _MAX_MV)
    st.cell_min_index = b[o + _MIN_IDX]
    st.cell_min_mv = _u16(b, o + _MIN_MV)
    st.cell_avg_mv = _u16(b, o + _AVG_MV)
    st.cell_delta_mv = st.cell_max_mv - st.cell_min_mv
    st.ds_raw = _u16(b, o + _DS)
    st.discharge_gate_dv = _u16(b, o + _DSG_GATE)
    st.charge_gate_dv = _u16(b, o + _CHG_GATE)
    st.comparator_raw = _u16(b, o + _COMPARATOR)
    # Balancing mask: bit 0 = cell 1 ... bit 31 = cell 32 (big-endian u32).
    st.balancing_hi = _u16(b, o + _BALANCING)
    st.balancing_lo = _u16(b, o + _BALANCING + 2)
    st.syslog = _u16(b, o + _SYSLOG)
    for i in range(8):
        st.protection[i] = 0
        st.warning[i] = 0
    st.permission = NOT_REPORTED
    st.battery_state = NOT_REPORTED
    st.chemistry = NOT_REPORTED
    st.total_discharged_ah = NOT_REPORTED
    st.total_discharged_mah = 0
    st.total_charged_ah = NOT_REPORTED
    st.total_charged_mah = 0
    st.total_discharge_time_s = NOT_REPORTED
    st.total_charge_time_s = NOT_REPORTED
    st.seq = wrap_add(st.seq, 1)
    return 0


# -- building frames (simulator, round trip, tools) -------------------------


def _clamp(v, lo, hi):
    return lo if v < lo else (hi if v > hi else v)


def _put16(b, o, v):
    v &= 0xFFFF
    b[o] = v >> 8
    b[o + 1] = v & 0xFF


def _put32(b, o, v):
    v &= 0xFFFFFFFF
    _put16(b, o, v >> 16)
    _put16(b, o + 2, v)


def _put_u16(b, o, v):
    _put16(b, o, _clamp(v, 0, 0xFFFF))


def _put_u32(b, o, v):
    _put32(b, o, _clamp(v, 0, 0xFFFFFFFF))


def _put_i32(b, o, v):
    _put32(b, o, _clamp(v, -0x80000000, 0x7FFFFFFF))


def _put_temp(b, o, t):
    _put16(b, o, -40 if t == TEMP_NONE else _clamp(t, -39, 0x7FFF))


def build_status(st, buf=None):
    """The 140-byte status frame a unit in state `st` sends (big-endian,
    raw sign: positive current = discharging)."""
    b = buf if buf is not None else bytearray(FRAME_LEN)
    for i in range(FRAME_LEN):
        b[i] = 0
    b[0] = 0xAA
    b[1] = 0x55
    b[2] = 0xAA
    b[3] = 0xFF
    _put_u16(b, _PACK_V, st.pack_cv // 10)
    n = min(st.cell_count, MAX_CELLS)
    for i in range(n):
        _put16(b, _CELLS + 2 * i, st.cells_mv[i])
    _put_i32(b, _CURRENT, -st.current_da)
    b[_SOC] = _clamp(st.soc_pct, 0, 0xFF)
    _put_u32(b, _CAPACITY, join_1000(st.capacity_mah, st.capacity_uah))
    _put_u32(b, _REMAINING, join_1000(st.remaining_mah, st.remaining_uah))
    _put_u32(b, _CYCLE, join_1000(st.cycle_ah, st.cycle_mah))
    _put_u32(b, _RUNTIME, st.runtime_s)
    _put_temp(b, _T_MOSFET, st.mosfet_c)
    _put_temp(b, _T_BALANCER, st.balancer_c)
    for i in range(_PROBES):
        _put_temp(b, _T_PROBES + 2 * i, st.temps_c[i])
    b[_CHARGE_MOS] = st.charge_mos
    b[_DISCHARGE_MOS] = st.discharge_mos
    b[_BALANCER] = st.balancer
    _put16(b, _TIRE, 1000 if st.tire_mm == NOT_REPORTED else st.tire_mm)
    _put16(b, _PULSES, 23 if st.pulses == NOT_REPORTED else st.pulses)
    b[_RELAY] = 0 if st.relay == NOT_REPORTED else st.relay
    _put_i32(b, _POWER, -st.power_w)
    b[_MAX_IDX] = st.cell_max_index
    _put16(b, _MAX_MV, st.cell_max_mv)
    b[_MIN_IDX] = st.cell_min_index
    _put16(b, _MIN_MV, st.cell_min_mv)
    _put16(b, _AVG_MV, st.cell_avg_mv)
    b[_CELL_COUNT] = n
    _put16(b, _DS, st.ds_raw)
    _put16(b, _DSG_GATE, st.discharge_gate_dv)
    _put16(b, _CHG_GATE, st.charge_gate_dv)
    _put16(b, _COMPARATOR, st.comparator_raw)
    _put16(b, _BALANCING, st.balancing_hi)
    _put16(b, _BALANCING + 2, st.balancing_lo)
    _put16(b, _SYSLOG, 0 if st.syslog == NOT_REPORTED else st.syslog)
    _put16(b, _CHECKSUM, sum16(b, 4, _CHECKSUM))
    return b


def short_frame(head, reg, value, buf=None, offset=0):
    """A 6-byte frame `head head reg value_hi value_lo sum`."""
    b = buf if buf is not None else bytearray(6)
    hi = (value >> 8) & 0xFF
    lo = value & 0xFF
    b[offset] = head
    b[offset + 1] = head
    b[offset + 2] = reg
    b[offset + 3] = hi
    b[offset + 4] = lo
    b[offset + 5] = (reg + hi + lo) & 0xFF
    return b


def password_frames(password):
    """The four writes F1..F4 carrying an 8-character password, two ASCII
    characters each (first character in the high byte). Shorter passwords are
    padded with NUL, longer ones rejected."""
    raw = password.encode() if isinstance(password, str) else bytes(password)
    if not raw or len(raw) > 8:
        raise ValueError("old-protocol password must be 1..8 characters")
    raw = raw + bytes(8 - len(raw))
    out = bytearray(24)
    for k in range(4):
        short_frame(HEAD_WRITE, REG_PASSWORD_1 + k, (raw[2 * k] << 8) | raw[2 * k + 1], out, 6 * k)
    return bytes(out)
