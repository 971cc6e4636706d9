# Why an output is in its state: a small int stored per output and in every
# EV_OUTPUT event (c), turned into text only at the faces.
try:
    from micropython import const
except ImportError:  # CPython
    def const(__value):  # positional-only, like the stub
        return __value

R_NONE = const(0)  # not evaluated yet
R_MODE_OFF = const(1)  # mode "off"
R_MODE_ON = const(2)  # mode "on"
R_OVERRIDE_OFF = const(3)  # manual override
R_OVERRIDE_ON = const(4)
R_RULE_ON = const(5)  # the condition holds
R_RULE_OFF = const(6)  # the condition does not hold
R_ON_DELAY = const(7)  # condition holds, waiting out on_delay_s / debounce
R_OFF_DELAY = const(8)  # condition cleared, waiting out off_delay_s / debounce
R_MIN_ON = const(9)  # kept on until min_on_s has passed
R_MIN_OFF = const(10)  # kept off until min_off_s has passed
R_RATE_CAP = const(11)  # max_switches_per_hour reached
R_MAX_ON = const(12)  # max_on_s reached; re-arms when the condition clears
R_IMPULSE = const(13)  # pulse finished (or running); re-arms when the condition clears
R_EXERCISE = const(14)  # periodic exercise run
R_STALE = const(15)  # fail-safe: data stale
R_LOST = const(16)  # fail-safe: link lost / BMS asleep / unpowered / no data
R_ERROR = const(17)  # fail-safe: rule error (unknown input marked "error")
R_LATCHED = const(18)  # latched trip, needs reset
R_INTERLOCK = const(19)  # another output of its interlock group is on
R_INTERLOCK_WAIT = const(20)  # waiting the interlock gap after the other went off

NAMES = (
    "none", "mode off", "mode on", "override off", "override on", "rule on", "rule off",
    "on delay", "off delay", "min on time", "min off time", "switch rate cap",
    "max on time", "impulse", "exercise", "fail-safe: stale data", "fail-safe: link lost",
    "fail-safe: rule error", "latched (reset needed)", "interlock", "interlock wait",
)
# Who holds the output, per reason (for the API's "held_by").
HOLDERS = (
    "none", "mode", "mode", "override", "override", "rule", "rule",
    "timing", "timing", "timing", "timing", "timing",
    "timing", "timing", "exercise", "fail-safe", "fail-safe",
    "fail-safe", "latch", "interlock", "interlock",
)


def name(code):
    return NAMES[code] if 0 <= code < len(NAMES) else "reason " + str(code)


def holder(code):
    return HOLDERS[code] if 0 <= code < len(HOLDERS) else "unknown"
