# The ACC task: lib/acc.py's wake / keep-awake / supply state machine,
# stepped every _PERIOD_MS with the link state, driving the `acc` and
# `supply_enable` outputs. When the supply switches, the link engine is told
# (set_powered), so a BMS we unpowered is "unpowered", not "lost".
# A client counts as connected for _CLIENT_MS after its last HTTP request.
# step() allocates nothing.
import asyncio

from acc import KEEP_SCHEDULE, AccController
from ticks import ticks_diff

import hw
from outputs import minute_of_day

try:
    from micropython import const
except ImportError:  # CPython (pyright)
    def const(__value):
        return __value

_PERIOD_MS = const(200)
_CLIENT_MS = const(60000)


class AccWake:
    def __init__(self, ctx, rules_engine, flags):
        s = ctx.settings
        self.ctx = ctx
        self.acc_pin = ctx.pins.get("acc")
        self.supply_pin = ctx.pins.get("supply_enable")
        self.acc = AccController(s.acc, ctx.log, has_supply=self.supply_pin is not None)
        self.flags = flags
        self.rules = rules_engine
        self.rule_output = -1  # a rules output whose state is the rule flag
        names = rules_engine.p.names
        for i in range(rules_engine.count):
            if s.acc_rule_output and names[i] == s.acc_rule_output:
                self.rule_output = i
        self.rule_flag = s.acc_rule_flag
        self._supply = self.acc.supply_level

    async def run(self):
        while True:
            self.step(hw.ticks_ms())
            await asyncio.sleep_ms(_PERIOD_MS)

    def step(self, now):
        ctx = self.ctx
        model = ctx.model
        soc = model.status.soc_pct if model.live() else -1
        client = ctx.client_ms >= 0 and ticks_diff(now, ctx.client_ms) < _CLIENT_MS
        rule = False
        if self.rule_output >= 0:
            rule = self.rules.state(self.rule_output)
        elif self.rule_flag >= 0:
            rule = self.flags[self.rule_flag] != 0
        minute = minute_of_day(hw.epoch_s()) if self.acc.config.keep_mode == KEEP_SCHEDULE else -1  # schedule mode only: a boxed int on the ESP32
        acc = self.acc
        acc.step(now, model.link, soc, minute, client, rule, model.line)
        if self.acc_pin is not None:
            self.acc_pin.set(acc.acc_level)
        level = acc.supply_level
        if self.supply_pin is not None and level != self._supply:
            self._supply = level
            self.supply_pin.set(level)
            ctx.engine.set_powered(level == 1, now)

    def wake(self, now):
        self.acc.manual_wake(now)
        self.step(now)
