# The BMS's own log, as the OLD protocol shows it: every 140-byte status
# frame carries one entry of the BMS's 32-slot system log in bytes 136-137
# (reference §2.2, VBMS AtySysLog.java):
#
#   bits 0-4 state code (the MOSFET code tables, §2.3), bits 5-9 cell,
#   bits 10-14 slot 0-31, bit 15: 1 = discharge table, 0 = charge table
#
# The BMS rolls through its slots frame by frame (a 2019 capture shows slots
# 16, 29, 19, 9, 29, 19, 11, 29, 20 in consecutive frames), so the whole log
# builds up over many frames. update() keeps the last word seen per slot; it
# runs on every status and allocates nothing. A word of 0 is taken as
# "nothing logged": a 2021 unit sends it in every frame (reference vectors);
# a real entry "slot 0, charge table, off" would look the same. The NEW protocol names a reply
# 0x13 "system log" but no request for it is known: not offered there.
from array import array

try:
    from micropython import const
except ImportError:  # CPython
    def const(__value):  # positional-only, like the stub
        return __value

SLOTS = const(32)
_NOT_REPORTED = const(-1)  # ant.status.NOT_REPORTED

class SysLog:
    def __init__(self):
        self.words = array("H", bytes(2 * SLOTS))
        # Which slots have been seen, 16 per mask (a 32-bit mask would not
        # be a small int on the ESP32: setting bit 31 would allocate).
        self._seen_lo = 0
        self._seen_hi = 0
        self.frames = 0  # status frames that carried a word (saturates)
        self.changes = 0  # slots filled or changed (the faces' change check; saturates)

    def clear(self):
        for i in range(SLOTS):
            self.words[i] = 0
        self._seen_lo = 0
        self._seen_hi = 0
        self.frames = 0
        self.changes = 0

    def update(self, st):
        """Take the log word of status `st` (ant.status.Status); True when
        a slot was filled or changed. No allocation."""
        word = st.syslog
        if word == _NOT_REPORTED:
            return False
        if self.frames < 0x3FFFFFFF:
            self.frames += 1
        if word == 0:
            return False  # nothing logged (see above)
        slot = (word >> 10) & 0x1F
        if self.has(slot) and self.words[slot] == word:
            return False
        self.words[slot] = word
        if slot < 16:
            self._seen_lo |= 1 << slot
        else:
            self._seen_hi |= 1 << (slot - 16)
        if self.changes < 0x3FFFFFFF:
            self.changes += 1
        return True

    def has(self, slot):
        if slot < 16:
            return (self._seen_lo >> slot) & 1 == 1
        return (self._seen_hi >> (slot - 16)) & 1 == 1

    def count(self):
        n = 0
        for slot in range(SLOTS):
            if self.has(slot):
                n += 1
        return n


# -- one entry's parts (faces) ---------------------------------------------------


def code(word):
    return word & 0x1F


def cell(word):
    """1-based cell the entry names, 0 = none."""
    return (word >> 5) & 0x1F


def discharge(word):
    return (word >> 15) & 1 == 1


def text(word):
    """The state code's meaning in its table (reference §2.3)."""
    from ant import codes

    if discharge(word):
        return codes.discharge_text(code(word))
    return codes.charge_text(code(word))
