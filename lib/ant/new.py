# NEW protocol ("7E A1", little-endian, CRC-16/MODBUS, variable length).
#
#   7E A1 | FUNC | ADDR_lo ADDR_hi | LEN | DATA | CRC_lo CRC_hi | AA 55
#
# The status frame (function 0x11) grows with the cell count n and the probe
# slot count t: o = 2n + 2t, total = 116 + o. Byte 46+o is the DISCHARGE
# MOSFET state and 47+o the CHARGE MOSFET state (reference §3.4; several
# public implementations have them swapped).
#
# The builder saturates every value at its field's range, as a unit's own
# firmware clamps what it reports: the current field (i16, 0.1 A) holds
# +-3276.7 A, the capacities (u32 µAh) 4294.967295 Ah, and a fitted probe
# never reads -40 °C, which the frame reserves for "absent" (it reads -39).
from array import array

from ticks import wrap_add

try:
    from micropython import const
except ImportError:  # CPython
    def const(__value):  # positional-only, like the stub
        return __value

from ant.checksum import crc16_modbus
from ant.status import (
    ERR_CELL_COUNT,
    ERR_LENGTH,
    MAX_CELLS,
    MAX_PROBES,
    NOT_REPORTED,
    PROTOCOL_NEW,
    TEMP_NONE,
    join_1000,
    split_1000,
)

# Functions (reference §3.1).
FN_STATUS = const(0x01)
FN_READ = const(0x02)
FN_BLOCK = const(0x04)
FN_SYSINFO = const(0x05)
FN_WRITE = const(0x22)
FN_PASSWORD = const(0x23)
FN_CONTROL = const(0x51)
REPLY_STATUS = const(0x11)
REPLY_READ = const(0x12)
REPLY_LOG = const(0x13)
REPLY_BLOCK = const(0x14)
REPLY_SYSINFO = const(0x15)
REPLY_GPS = const(0x16)
REPLY_WRITE = const(0x42)
REPLY_PASSWORD = const(0x43)
REPLY_CONTROL = const(0x61)

STATUS_LEN_BYTE = const(0xBE)
DEVICE_INFO_ADDR = const(0x026C)
DEVICE_INFO_LEN = const(0x20)
PASSWORD_ADDR = const(0x016A)  # level-5 slot, 12 characters

# Status-frame offsets; those from 34 on shift by o = 2n + 2t.
_PERMISSION = const(6)
_BATTERY_STATE = const(7)
_PROBE_SLOTS = const(8)
_CELL_COUNT = const(9)
_PROTECTION = const(10)
_WARNING = const(18)
_CELLS = const(34)
_T_MOSFET = const(34)
_T_BALANCER = const(36)
_PACK_V = const(38)
_CURRENT = const(40)
_SOC = const(42)
_SOH = const(44)
_DISCHARGE_MOS = const(46)
_CHARGE_MOS = const(47)
_BALANCER = const(48)
_CAPACITY = const(50)
_REMAINING = const(54)
_CYCLE = const(58)
_POWER = const(62)
_RUNTIME = const(66)
_BALANCING = const(70)
_MAX_MV = const(74)
_MAX_IDX = const(76)
_MIN_MV = const(78)
_MIN_IDX = const(80)
_DELTA_MV = const(82)
_AVG_MV = const(84)
_DS = const(86)
_DSG_GATE = const(88)
_CHG_GATE = const(90)
_COMPARATOR = const(92)
_CHEMISTRY = const(94)
_TOTAL_DSG = const(96)
_TOTAL_CHG = const(100)
_TOTAL_DSG_TIME = const(104)
_TOTAL_CHG_TIME = const(108)
_STATUS_FIXED = const(116)  # status frame length without cell/probe blocks

_I32_LIMIT = const(0x1FFFFFFF)

_split = array("i", [0, 0])


def _u16(b, o):
    return b[o] | (b[o + 1] << 8)


def _i16(b, o):
    v = b[o] | (b[o + 1] << 8)
    return v - 0x10000 if v & 0x8000 else v


def _hi16(b, o):
    return b[o + 2] | (b[o + 3] << 8)


def _i32(b, o):
    hi = _hi16(b, o)
    if hi & 0x8000:
        hi -= 0x10000
    if hi >= 0x2000:
        return _I32_LIMIT
    if hi < -0x2000:
        return -_I32_LIMIT
    return hi * 65536 + _u16(b, o)


def _u32_clamped(b, o):
    hi = _hi16(b, o)
    if hi >= 0x4000:
        return 0x3FFFFFFF
    return hi * 65536 + _u16(b, o)


def _temp(b, o):
    t = _i16(b, o)
    return TEMP_NONE if t == -40 else t


def status_offset(b, o):
    """o = 2n + 2t of the status frame at b[o]."""
    return 2 * b[o + _CELL_COUNT] + 2 * b[o + _PROBE_SLOTS]


def decode_status(b, o, st):
    """Fill `st` from the verified status frame (function 0x11) at b[o].
    Returns 0, ERR_CELL_COUNT for more than MAX_CELLS cells (as the OLD
    decoder), or ERR_LENGTH when LEN does not match the announced blocks.
    Probe slots beyond MAX_PROBES are counted in probe_slots, not stored
    (read them with probe_temps())."""
    n = b[o + _CELL_COUNT]
    t = b[o + _PROBE_SLOTS]
    if n > MAX_CELLS:
        return ERR_CELL_COUNT
    if b[o + 5] != 106 + 2 * n + 2 * t:
        return ERR_LENGTH
    x = o + 2 * n + 2 * t  # base of the shifted block
    st.protocol = PROTOCOL_NEW
    st.permission = b[o + _PERMISSION]
    st.battery_state = b[o + _BATTERY_STATE]
    for i in range(8):
        st.protection[i] = b[o + _PROTECTION + i]
        st.warning[i] = b[o + _WARNING + i]
    st.cell_count = n
    cells = st.cells_mv
    for i in range(MAX_CELLS):
        cells[i] = _u16(b, o + _CELLS + 2 * i) if i < n else 0
    st.probe_slots = t
    probes = t if t < MAX_PROBES else MAX_PROBES
    st.probe_count = probes
    temps = st.temps_c
    first_probe = o + _CELLS + 2 * n
    for i in range(MAX_PROBES):
        temps[i] = _temp(b, first_probe + 2 * i) if i < probes else TEMP_NONE
    st.mosfet_c = _temp(b, x + _T_MOSFET)
    st.balancer_c = _temp(b, x + _T_BALANCER)
    st.pack_cv = _u16(b, x + _PACK_V)
    st.current_da = -_i16(b, x + _CURRENT)
    st.soc_pct = _u16(b, x + _SOC)
    st.soh_pct = _u16(b, x + _SOH)
    st.discharge_mos = b[x + _DISCHARGE_MOS]
    st.charge_mos = b[x + _CHARGE_MOS]
    st.balancer = b[x + _BALANCER]
    split = _split
    split_1000(_hi16(b, x + _CAPACITY), _u16(b, x + _CAPACITY), split, 0)
    st.capacity_mah = split[0]
    st.capacity_uah = split[1]
    split_1000(_hi16(b, x + _REMAINING), _u16(b, x + _REMAINING), split, 0)
    st.remaining_mah = split[0]
    st.remaining_uah = split[1]
    split_1000(_hi16(b, x + _CYCLE), _u16(b, x + _CYCLE), split, 0)
    st.cycle_ah = split[0]
    st.cycle_mah = split[1]
    st.power_w = -_i32(b, x + _POWER)
    st.runtime_s = _u32_clamped(b, x + _RUNTIME)
    st.balancing_lo = _u16(b, x + _BALANCING)
    st.balancing_hi = _hi16(b, x + _BALANCING)
    st.cell_max_mv = _u16(b, x + _MAX_MV)
    st.cell_max_index = _u16(b, x + _MAX_IDX)
    st.cell_min_mv = _u16(b, x + _MIN_MV)
    st.cell_min_index = _u16(b, x + _MIN_IDX)
    st.cell_delta_mv = _u16(b, x + _DELTA_MV)
    st.cell_avg_mv = _u16(b, x + _AVG_MV)
    st.ds_raw = _u16(b, x + _DS)
    st.discharge_gate_dv = _u16(b, x + _DSG_GATE)
    st.charge_gate_dv = _u16(b, x + _CHG_GATE)
    st.comparator_raw = _u16(b, x + _COMPARATOR)
    st.chemistry = _u16(b, x + _CHEMISTRY)
    split_1000(_hi16(b, x + _TOTAL_DSG), _u16(b, x + _TOTAL_DSG), split, 0)
    st.total_discharged_ah = split[0]
    st.total_discharged_mah = split[1]
    split_1000(_hi16(b, x + _TOTAL_CHG), _u16(b, x + _TOTAL_CHG), split, 0)
    st.total_charged_ah = split[0]
    st.total_charged_mah = split[1]
    st.total_discharge_time_s = _u32_clamped(b, x + _TOTAL_DSG_TIME)
    st.total_charge_time_s = _u32_clamped(b, x + _TOTAL_CHG_TIME)
    st.syslog = NOT_REPORTED
    st.tire_mm = NOT_REPORTED
    st.pulses = NOT_REPORTED
    st.relay = NOT_REPORTED
    st.seq = wrap_add(st.seq, 1)
    return 0


# -- building frames ----------------------------------------------------------


def probe_temps(b, o):
    """Every probe slot's temperature (None = absent) of the verified
    status frame at b[o], however many slots it announces (a face:
    allocates)."""
    n = b[o + _CELL_COUNT]
    first = o + _CELLS + 2 * n
    out = []
    for i in range(b[o + _PROBE_SLOTS]):
        t = _temp(b, first + 2 * i)
        out.append(None if t == TEMP_NONE else t)
    return out


def _clamp(v, lo, hi):
    return lo if v < lo else (hi if v > hi else v)


def _put16(b, o, v):
    v &= 0xFFFF
    b[o] = v & 0xFF
    b[o + 1] = v >> 8


def _put32(b, o, v):
    v &= 0xFFFFFFFF
    _put16(b, o, v)
    _put16(b, o + 2, v >> 16)


def _put_u16(b, o, v):
    _put16(b, o, _clamp(v, 0, 0xFFFF))


def _put_i16(b, o, v):
    _put16(b, o, _clamp(v, -0x8000, 0x7FFF))


def _put_u32(b, o, v):
    _put32(b, o, _clamp(v, 0, 0xFFFFFFFF))


def _put_i32(b, o, v):
    _put32(b, o, _clamp(v, -0x80000000, 0x7FFFFFFF))


def _put_temp(b, o, t):
    _put16(b, o, -40 if t == TEMP_NONE else _clamp(t, -39, 0x7FFF))


def seal(b, data_end):
    """Write CRC and AA 55 after the data ending at data_end; returns the
    frame length."""
    _put16(b, data_end, crc16_modbus(b, 1, data_end))
    b[data_end + 2] = 0xAA
    b[data_end + 3] = 0x55
    return data_end + 4


def frame(func, address, length, data=b""):
    """A NEW frame: requests/controls carry no data (LEN is a size), writes
    and replies carry LEN data bytes."""
    b = bytearray(10 + len(data))
    b[0] = 0x7E
    b[1] = 0xA1
    b[2] = func
    _put16(b, 3, address)
    b[5] = length
    for i in range(len(data)):
        b[6 + i] = data[i]
    seal(b, 6 + len(data))
    return bytes(b)


def status_frame_length(cells, probe_slots):
    return _STATUS_FIXED + 2 * cells + 2 * probe_slots


def build_status(st, buf=None, probe_slots=-1):
    """The status frame a unit in state `st` sends (raw sign: positive
    current = discharging). probe_slots defaults to st.probe_slots."""
    n = min(st.cell_count, MAX_CELLS)
    t = st.probe_slots if probe_slots < 0 else probe_slots
    total = status_frame_length(n, t)
    b = buf if buf is not None else bytearray(total)
    for i in range(total):
        b[i] = 0
    b[0] = 0x7E
    b[1] = 0xA1
    b[2] = REPLY_STATUS
    b[5] = 106 + 2 * n + 2 * t
    b[_PERMISSION] = 5 if st.permission == NOT_REPORTED else st.permission
    b[_BATTERY_STATE] = 0 if st.battery_state == NOT_REPORTED else st.battery_state
    b[_PROBE_SLOTS] = t
    b[_CELL_COUNT] = n
    for i in range(8):
        b[_PROTECTION + i] = st.protection[i]
        b[_WARNING + i] = st.warning[i]
    for i in range(n):
        _put16(b, _CELLS + 2 * i, st.cells_mv[i])
    for i in range(t):
        _put_temp(b, _CELLS + 2 * n + 2 * i, st.temps_c[i] if i < MAX_PROBES else TEMP_NONE)
    x = 2 * n + 2 * t
    _put_temp(b, x + _T_MOSFET, st.mosfet_c)
    _put_temp(b, x + _T_BALANCER, st.balancer_c)
    _put_u16(b, x + _PACK_V, st.pack_cv)
    _put_i16(b, x + _CURRENT, -st.current_da)
    _put_u16(b, x + _SOC, st.soc_pct)
    _put_u16(b, x + _SOH, 100 if st.soh_pct == NOT_REPORTED else st.soh_pct)
    b[x + _DISCHARGE_MOS] = st.discharge_mos
    b[x + _CHARGE_MOS] = st.charge_mos
    b[x + _BALANCER] = st.balancer
    _put_u32(b, x + _CAPACITY, join_1000(st.capacity_mah, st.capacity_uah))
    _put_u32(b, x + _REMAINING, join_1000(st.remaining_mah, st.remaining_uah))
    _put_u32(b, x + _CYCLE, join_1000(st.cycle_ah, st.cycle_mah))
    _put_i32(b, x + _POWER, -st.power_w)
    _put_u32(b, x + _RUNTIME, st.runtime_s)
    _put16(b, x + _BALANCING, st.balancing_lo)
    _put16(b, x + _BALANCING + 2, st.balancing_hi)
    _put16(b, x + _MAX_MV, st.cell_max_mv)
    _put16(b, x + _MAX_IDX, st.cell_max_index)
    _put16(b, x + _MIN_MV, st.cell_min_mv)
    _put16(b, x + _MIN_IDX, st.cell_min_index)
    _put16(b, x + _DELTA_MV, st.cell_delta_mv)
    _put16(b, x + _AVG_MV, st.cell_avg_mv)
    _put16(b, x + _DS, st.ds_raw)
    _put16(b, x + _DSG_GATE, st.discharge_gate_dv)
    _put16(b, x + _CHG_GATE, st.charge_gate_dv)
    _put16(b, x + _COMPARATOR, st.comparator_raw)
    _put16(b, x + _CHEMISTRY, 0xFAF2 if st.chemistry == NOT_REPORTED else st.chemistry)
    if st.total_discharged_ah != NOT_REPORTED:
        _put_u32(b, x + _TOTAL_DSG, join_1000(st.total_discharged_ah, st.total_discharged_mah))
    if st.total_charged_ah != NOT_REPORTED:
        _put_u32(b, x + _TOTAL_CHG, join_1000(st.total_charged_ah, st.total_charged_mah))
    if st.total_discharge_time_s != NOT_REPORTED:
        _put_u32(b, x + _TOTAL_DSG_TIME, st.total_discharge_time_s)
    if st.total_charge_time_s != NOT_REPORTED:
        _put_u32(b, x + _TOTAL_CHG_TIME, st.total_charge_time_s)
    seal(b, x + 112)
    return b


# -- small decoders of the other replies (faces, tools) ----------------------


def ascii_field(b, start, end):
    """NUL-padded ASCII text of a device-info field."""
    out = []
    for i in range(start, end):
        c = b[i]
        if c == 0:
            break
        out.append(chr(c) if 32 <= c < 127 else "?")
    return "".join(out)


def reply_trailer_code(b, o, length):
    """Status code of the 6-byte trailer of a 0x12/0x42 reply of `length`
    bytes (0x0B after reads, 0x0A after writes), or -1 without trailer."""
    if length == b[o + 5] + 16:
        return b[o + length - 7]
    return -1
