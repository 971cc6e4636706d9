# Alarms: what the BMS says is wrong (or deliberately off), as small-int codes.
#
# Three sources, both protocol generations:
#   - the NEW frame's raw protection (bytes 10..17) and warning (18..25)
#     flags, one code per bit. Their meaning is not published; the bits the
#     reference has observed get a name, every other bit is "protection bit N"
#     / "warning bit N" so nothing the BMS raises is hidden;
#   - the MOSFET state codes (reference §2.3, same numbers in both
#     generations): a FET held off for a reason is an alarm named by it;
#   - the OLD frame's rolling system-log word (bits 0-4 state code, 5-9 cell,
#     15 = discharge table): the entry it shows in this frame.
#
# Code space (all < 256):
#     0..63   protection bit N (byte 10 + N // 8, bit N % 8)
#    64..127  warning bit N (byte 18 + N // 8, bit N % 8)
#   128..159  charge MOSFET state code (128 + code)
#   160..191  discharge MOSFET state code (160 + code)
#   192..223  system log, charge table (192 + state code)
#   224..255  system log, discharge table (224 + state code)
#
# active(), count() and next_active() allocate nothing (rules, outputs and
# MQTT change detection call them per status); names and dicts are for the
# faces.
try:
    from micropython import const
except ImportError:  # CPython
    def const(__value):  # positional-only, like the stub
        return __value

from ant import codes
from ant.status import NOT_REPORTED

PROTECTION_BASE = const(0)
WARNING_BASE = const(64)
CHARGE_MOS_BASE = const(128)
DISCHARGE_MOS_BASE = const(160)
SYSLOG_CHARGE_BASE = const(192)
SYSLOG_DISCHARGE_BASE = const(224)
ALARM_CODES = const(256)

_FLAG_BITS = const(64)
_MOS_ON = const(1)
_DISCHARGE_CHARGER_ON = const(11)  # "charge MOSFET on / charger connected": not a fault

# Named raw flag bits (reference §3.2, observed on real units).
PROTECTION_DISCHARGE_MANUAL_OFF = const(17)  # byte 12 bit 1
PROTECTION_CHARGE_MANUAL_OFF = const(21)  # byte 12 bit 5
PROTECTION_FULL = const(1)  # byte 10 bit 1: full pack, charge FET code 2
WARNING_MANUAL_BALANCING = const(64 + 29)  # byte 21 bit 5 (byte 21 = 0x20)

# Frequently tested state-code alarms.
CELL_OVER_VOLTAGE = const(128 + 2)
CHARGE_OVER_CURRENT = const(128 + 3)
BATTERY_FULL = const(128 + 4)
PACK_OVER_VOLTAGE = const(128 + 5)
CHARGE_OVER_TEMPERATURE = const(128 + 6)
CHARGE_MANUAL_OFF = const(128 + 15)
CHARGE_LOW_TEMPERATURE = const(128 + 17)
CELL_UNDER_VOLTAGE = const(160 + 2)
DISCHARGE_OVER_CURRENT = const(160 + 3)
PACK_UNDER_VOLTAGE = const(160 + 5)
DISCHARGE_OVER_TEMPERATURE = const(160 + 6)
SHORT_CIRCUIT = const(160 + 12)
DISCHARGE_MANUAL_OFF = const(160 + 15)
DISCHARGE_LOW_TEMPERATURE = const(160 + 17)

_FLAG_NAMES = {
    PROTECTION_DISCHARGE_MANUAL_OFF: "discharge FET manually off",
    PROTECTION_CHARGE_MANUAL_OFF: "charge FET manually off",
    PROTECTION_FULL: "cell over-voltage (full pack)",
    WARNING_MANUAL_BALANCING: "manual balancing",
}

SOURCE_PROTECTION = "protection"
SOURCE_WARNING = "warning"
SOURCE_CHARGE_MOS = "charge_mos"
SOURCE_DISCHARGE_MOS = "discharge_mos"
SOURCE_SYSLOG = "system_log"


def _flag(flags, bit):
    return (flags[bit >> 3] >> (bit & 7)) & 1 == 1


def _mos_alarm(code, charger_on_code):
    return code > _MOS_ON and code < 32 and code != charger_on_code


def active(st, code):
    """True while alarm `code` is raised by the Status `st` (no allocation)."""
    if code < WARNING_BASE:
        return code >= 0 and _flag(st.protection, code)
    if code < CHARGE_MOS_BASE:
        return _flag(st.warning, code - WARNING_BASE)
    if code < DISCHARGE_MOS_BASE:
        return st.charge_mos == code - CHARGE_MOS_BASE and _mos_alarm(st.charge_mos, -1)
    if code < SYSLOG_CHARGE_BASE:
        return st.discharge_mos == code - DISCHARGE_MOS_BASE and _mos_alarm(st.discharge_mos, _DISCHARGE_CHARGER_ON)
    if code < ALARM_CODES:
        return syslog_alarm(st) == code
    return False


def syslog_alarm(st):
    """The alarm code of the OLD system-log entry in this frame, or -1."""
    word = st.syslog
    if word == NOT_REPORTED:
        return -1
    state = word & 0x1F
    discharge = (word >> 15) & 1
    if not _mos_alarm(state, _DISCHARGE_CHARGER_ON if discharge else -1):
        return -1
    return (SYSLOG_DISCHARGE_BASE if discharge else SYSLOG_CHARGE_BASE) + state


def syslog_cell(st):
    """1-based cell the system-log entry names (0 = none)."""
    if st.syslog == NOT_REPORTED:
        return 0
    return (st.syslog >> 5) & 0x1F


def next_active(st, after=-1):
    """The lowest active alarm code greater than `after`, or -1. Iterate with
    `code = next_active(st, code)` without allocating."""
    code = after + 1
    while code < CHARGE_MOS_BASE:
        if code < WARNING_BASE:
            if st.protection[code >> 3] == 0:
                code = (code | 7) + 1  # skip a zero byte
                continue
        elif st.warning[(code - WARNING_BASE) >> 3] == 0:
            code = (code | 7) + 1
            continue
        if active(st, code):
            return code
        code += 1
    if _mos_alarm(st.charge_mos, -1) and code <= CHARGE_MOS_BASE + st.charge_mos:
        return CHARGE_MOS_BASE + st.charge_mos
    if _mos_alarm(st.discharge_mos, _DISCHARGE_CHARGER_ON) and code <= DISCHARGE_MOS_BASE + st.discharge_mos:
        return DISCHARGE_MOS_BASE + st.discharge_mos
    logged = syslog_alarm(st)
    if logged >= code:
        return logged
    return -1


def count(st):
    """How many alarms are active (no allocation)."""
    n = 0
    code = next_active(st)
    while code >= 0:
        n += 1
        code = next_active(st, code)
    return n


# -- faces (allocate) ------------------------------------------------------------


def source(code):
    if code < WARNING_BASE:
        return SOURCE_PROTECTION
    if code < CHARGE_MOS_BASE:
        return SOURCE_WARNING
    if code < DISCHARGE_MOS_BASE:
        return SOURCE_CHARGE_MOS
    if code < SYSLOG_CHARGE_BASE:
        return SOURCE_DISCHARGE_MOS
    return SOURCE_SYSLOG


def name(code):
    """Plain-language name of an alarm code."""
    if code < CHARGE_MOS_BASE:
        known = _FLAG_NAMES.get(code)
        if known is not None:
            return known
        if code < WARNING_BASE:
            return "protection bit %d" % code
        return "warning bit %d" % (code - WARNING_BASE)
    if code < DISCHARGE_MOS_BASE:
        return codes.charge_text(code - CHARGE_MOS_BASE)
    if code < SYSLOG_CHARGE_BASE:
        return codes.discharge_text(code - DISCHARGE_MOS_BASE)
    if code < SYSLOG_DISCHARGE_BASE:
        return codes.charge_text(code - SYSLOG_CHARGE_BASE)
    return codes.discharge_text(code - SYSLOG_DISCHARGE_BASE)


def active_alarms(st):
    """Every active alarm as {"code", "name", "source"} (system-log entries
    also carry the "cell" they name when there is one)."""
    out = []
    code = next_active(st)
    while code >= 0:
        d = {"code": code, "name": name(code), "source": source(code)}
        if code >= SYSLOG_CHARGE_BASE and syslog_cell(st):
            d["cell"] = syslog_cell(st)
        out.append(d)
        code = next_active(st, code)
    return out


def raw_flags(st):
    """The raw flag bits that are set: {"protection": [bit, ...],
    "warning": [bit, ...]} (bit N = byte base + N // 8, bit N % 8)."""
    return {
        "protection": [b for b in range(_FLAG_BITS) if _flag(st.protection, b)],
        "warning": [b for b in range(_FLAG_BITS) if _flag(st.warning, b)],
    }
