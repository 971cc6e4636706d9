# The ACC task: lib/acc.py's wake / keep-awake / supply state machine,
# stepped every _PERIOD_MS with the link state, driving the `acc` and
# `supply_enable` outputs. When the supply switches, the link engine is told
# (set_powered), so a BMS we unpowered is "unpowered", not "lost".
# A client counts as connected for _CLIENT_MS after its last request on any
# face (client_seen()). step() allocates nothing.
import asyncio

import catalog as C
from acc import KEEP_SCHEDULE, AccController
from ticks import ticks_diff

from relays import minute_of_day

try:
    from micropython import const
except ImportError:  # CPython (pyright)
    def const(__value):
        return __value

_PERIOD_MS = const(200)
_CLIENT_MS = const(60000)


class AccWake:
    def __init__(self, hw, settings, link, hub, log, rules_engine, flags, acc_pin, supply_pin):
        self.hw = hw
        self.link = link  # link.engine.LinkEngine
        self.hub = hub
        self.acc_pin = acc_pin  # hw.Output or None
        self.supply_pin = supply_pin
        self.acc = AccController(settings.acc, log, has_supply=supply_pin is not None)
        self.flags = flags
        self.rules = rules_engine
        self.rule_output = -1  # a rules output whose state is the rule flag
        names = rules_engine.p.names
        for i in range(rules_engine.count):
            if settings.acc_rule_output and names[i] == settings.acc_rule_output:
                self.rule_output = i
        self.rule_flag = settings.acc_rule_flag
        self.tz_offset_s = settings.tz_offset_min * 60
        self.client_ms = -1  # ticks of the last client request (-1 = none yet)
        self.beat = None  # callable(): the supervisor's heartbeat
        self._supply = self.acc.supply_level
        self._seen = -1  # (state, acc, supply) as last published
        self.steps = 0

    def client_seen(self, now_ms):
        self.client_ms = now_ms

    async def run(self):
        hw = self.hw
        while True:
            self.step(hw.ticks_ms())
            if self.beat is not None:
                self.beat()
            await asyncio.sleep_ms(_PERIOD_MS)

    def step(self, now):
        self.steps += 1
        model = self.link.model
        soc = model.status.soc_pct if model.live() else -1
        client = self.client_ms >= 0 and ticks_diff(now, self.client_ms) < _CLIENT_MS
        rule = False
        if self.rule_output >= 0:
            rule = self.rules.state(self.rule_output)
        elif self.rule_flag >= 0:
            rule = self.flags[self.rule_flag] != 0
        acc = self.acc
        minute = -1
        if acc.config.keep_mode == KEEP_SCHEDULE:
            clock = self.hw.clock_s()
            minute = minute_of_day(clock + self.tz_offset_s) if clock > 0 else -1
        acc.step(now, model.link, soc, minute, client, rule, model.line)
        if self.acc_pin is not None:
            self.acc_pin.set(acc.acc_level)
        level = acc.supply_level
        if self.supply_pin is not None and level != self._supply:
            self._supply = level
            self.supply_pin.set(level)
            self.link.set_powered(level == 1, now)
        seen = acc.state << 2 | acc.acc_level << 1 | level
        if seen != self._seen:
            self._seen = seen
            self.hub.publish(C.P_ACC)

    def wake(self, now):
        self.acc.manual_wake(now)
        self.step(now)

    def hold_off(self):
        """A requested shutdown: no automatic wake until wake()."""
        self.acc.hold_off(self.hw.ticks_ms())
        self.step(self.hw.ticks_ms())

    def describe(self, now):
        return self.acc.describe(now)
