# The parameter cache: the raw values of the last read of the BMS's
# settings, one slot per ant.params row (two 16-bit words and a state), made
# on the first parameter action and kept (a few hundred bytes). Its own
# module so that the cache outlives the job code (link/paramjob.py), which
# is unloaded between uses.
from array import array

from ant import params as P

try:
    from micropython import const
except ImportError:  # CPython
    def const(__value):  # positional-only, like the stub
        return __value

# A value's state in Values.state.
V_NONE = const(0)  # not read (yet)
V_OK = const(1)
V_NA = const(2)  # the OLD BMS answered FFFF: "not available"


class Values:
    """The last values read: per ant.params row, the raw low and high word
    and a state (V_*). Made once, on the first read (a few hundred bytes)."""

    def __init__(self):
        n = P.COUNT
        self.lo = array("H", bytes(2 * n))
        self.hi = array("H", bytes(2 * n))
        self.state = bytearray(n)
        self.protocol = 0  # of the values held (ant.status PROTOCOL_*), 0 = none
        self.read_ms = 0  # ticks when the last full read ended
        self.read_s = 0  # device clock then (0 = unset or never read)
        self.complete = False  # a full read has finished
        self.error = ""  # why the last read failed ("" = it did not)

    def reset(self, protocol):
        for i in range(P.COUNT):
            self.state[i] = V_NONE
        self.protocol = protocol
        self.complete = False
        self.read_s = 0

    def raw(self, row):
        """The raw value of `row` as the BMS holds it (signed where the row
        is), or None when not read / not available."""
        if self.state[row] != V_OK:
            return None
        lo = self.lo[row]
        kind = P.ROWS[row][P.KIND]
        if kind == P.K_U32:
            return self.hi[row] * 65536 + lo
        if kind == P.K_I16 and lo & 0x8000:
            return lo - 0x10000
        return lo

    def put(self, row, lo, hi, state=V_OK):
        self.lo[row] = lo
        self.hi[row] = hi
        self.state[row] = state
