# A compiled rule set: flat int arrays, nothing else. compile.py fills one
# from a config dict; engine.py evaluates it. Conditions are stored in
# postfix order (children before their all/any/not), so evaluation is one
# loop over a small value stack, with no recursion and no allocation.
from array import array

try:
    from micropython import const
except ImportError:  # CPython
    def const(__value):  # positional-only, like the stub
        return __value

MAX_OUTPUTS = const(8)
MAX_LEAVES = const(16)  # conditions per output
MAX_DEPTH = const(4)  # all/any/not nesting
MAX_NODES = const(40)  # leaves + combinators per output
MAX_RATE = const(60)  # max_switches_per_hour upper bound

# Condition opcodes.
OP_CMP = const(1)  # a: signal, b/c: on/off thresholds, qb/qc: quiet-hours thresholds
OP_BOOL = const(2)  # a: signal, b: expected 0/1
OP_BITS = const(3)  # a: 0 protection / 1 warning, b: byte (-1 any), c: mask
OP_LINK = const(4)  # a: bit mask of LINK_* states
OP_OUTPUT = const(5)  # a: output index, b: expected state
OP_TIME = const(6)  # a: from minute, b: to minute (wraps midnight)
OP_FLAG = const(7)  # a: flag index
OP_ALL = const(10)  # a: child count
OP_ANY = const(11)
OP_NOT = const(12)

# Node flag bits.
F_HIGH = const(1)  # OP_CMP: on when value >= on threshold (else <=)
F_QUIET = const(2)  # OP_CMP: has quiet-hours thresholds

# What an unknown input makes of a condition.
UNKNOWN_FALSE = const(0)
UNKNOWN_TRUE = const(1)
UNKNOWN_ERROR = const(2)

# Modes, fail-safe states, latch kinds.
MODE_OFF = const(0)
MODE_ON = const(1)
MODE_AUTO = const(2)
MODE_NAMES = ("off", "on", "auto")
SAFE_OFF = const(0)
SAFE_ON = const(1)
SAFE_HOLD = const(2)
SAFE_RULE = const(3)  # no fail-safe: keep evaluating (the rule may test link / data_age_s itself)
SAFE_NAMES = ("off", "on", "hold", "rule")
LATCH_NONE = const(0)
LATCH_OFF = const(1)  # once the rule turned it off, it stays off until reset
LATCH_ON = const(2)
LATCH_NAMES = ("none", "off", "on")


class Program:
    def __init__(self, count, nodes):
        self.count = count
        self.names = [""] * count
        self.leaf_text = [[] for _ in range(count)]  # per output, per leaf (faces only)
        # Condition pool.
        self.nodes = nodes
        self.op = bytearray(nodes)
        self.fl = bytearray(nodes)
        self.unk = bytearray(nodes)
        self.leaf = array("b", [-1] * nodes)  # leaf ordinal within its output
        self.a = array("i", [0] * nodes)
        self.b = array("i", [0] * nodes)
        self.c = array("i", [0] * nodes)
        self.qb = array("i", [0] * nodes)
        self.qc = array("i", [0] * nodes)
        # Per output.
        self.start = array("h", [0] * count)  # condition nodes [start, end)
        self.end = array("h", [0] * count)
        self.mode = bytearray(count)
        self.on_delay_ms = array("i", [0] * count)
        self.off_delay_ms = array("i", [0] * count)
        self.min_on_ms = array("i", [0] * count)
        self.min_off_ms = array("i", [0] * count)
        self.max_on_ms = array("i", [0] * count)  # 0 = none
        self.rate_cap = bytearray(count)  # starts per hour, 0 = none
        self.impulse_ms = array("i", [0] * count)  # 0 = not impulse mode
        self.blink_on_ms = array("i", [0] * count)  # 0 = steady
        self.blink_off_ms = array("i", [0] * count)
        self.debounce = bytearray(count)  # consecutive evaluations, >= 1
        self.ex_days = array("h", [0] * count)  # exercise every N days, 0 = never
        self.ex_ms = array("i", [0] * count)
        self.ex_at = array("h", [0] * count)  # minute of day
        self.quiet_from = array("h", [-1] * count)  # -1 = no quiet hours
        self.quiet_to = array("h", [-1] * count)
        self.stale_ms = array("i", [0] * count)
        self.safe_stale = bytearray(count)
        self.safe_lost = bytearray(count)
        self.safe_error = bytearray(count)
        self.latch = bytearray(count)
        self.inverted = bytearray(count)
        # Interlocks: wait in ms between output i going off and j going on,
        # -1 = not interlocked.
        self.il_wait = array("i", [-1] * (count * count))
