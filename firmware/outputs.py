# The outputs task: DO1-DO3 driven by the rules engine (lib/rules), fed
# with the link's model and the energy estimates (lib/energy), on every
# model change (seen within _POLL_MS) and at least once a second.
#
#   boot      every DO stays at its board boot state until the first fresh
#             status plus _SETTLE_MS (reason "boot"): a relay never acts on
#             half-known data or a restart's first frame. A BMS that never
#             answers ends the hold once the link counts as lost (plus the
#             settle time): then the rules' fail-safe states apply, so an
#             alarm relay reports a dead link at boot too.
#   pins      written "off" outputs before "on" outputs, so an interlocked
#             pair is never energised together, even for one pass
#   sense     a board with doN_sense inputs: a sensed level disagreeing with
#             the level written for longer than settings.sense_check_s
#             raises an alarm (EV_ALARM, the API), cleared when they agree
#   state     energy counters (energy.save_due) and the engine's persistent
#             state (on every override change) go to state.json; both are
#             restored at boot
# A pass allocates nothing (on the ESP32 the epoch seconds, > 2**30, are one
# small boxed int) unless it saves state.json.
import asyncio
from array import array

from eventlog import EV_ALARM, EV_OUTPUT
from link.model import LINK_OK
from rules.reasons import R_NONE
from ticks import ticks_diff

import hw

try:
    from micropython import const
except ImportError:  # CPython (pyright)
    def const(__value):
        return __value

_SETTLE_MS = const(3000)  # after the first fresh status, before rules may switch
_PERIOD_MS = const(1000)  # evaluate at least this often without model changes
_POLL_MS = const(20)  # how soon a new status is acted on (an Event wait would allocate per pass)
ALARM_SENSE = const(1)  # EV_ALARM a: a sense input disagrees with its output (c = output)
ACTIONS = ("on", "off", "auto", "release", "reset", "mode")  # command(); POST /api/outputs "action"


def minute_of_day(epoch_s):
    """UTC minute of the day (0..1439) of hw.epoch_s(); -1 with no clock."""
    return (epoch_s % 86400) // 60 if epoch_s > 0 else -1


def day_number(epoch_s):
    """UTC days since 1970 of hw.epoch_s(); -1 with no clock."""
    return epoch_s // 86400 if epoch_s > 0 else -1


class Outputs:
    def __init__(self, ctx, engine, energy, flags):
        self.ctx = ctx
        self.engine = engine
        self.energy = energy
        self.flags = flags  # bytearray: API flags ({"flag": n} conditions)
        n = engine.count
        self.pins = []  # hw.Output per rules output (None: not fitted on this board)
        self.senses = []  # hw.Input per rules output (None: no sense input)
        board = hw.board()
        for i in range(n):
            role = "do" + str(i + 1)
            self.pins.append(hw.Output(role) if role in board.outputs else None)
            sense = role + "_sense"
            self.senses.append(hw.Input(sense) if sense in board.inputs else None)
        self.levels = bytearray(n)  # asserted (1) / not, as last written
        for i in range(n):
            pin = self.pins[i]
            self.levels[i] = pin.value() if pin is not None else 0
        self.sense_ms = int(ctx.settings.sense_check_s * 1000)
        self.sense_since = array("i", [0] * n)
        self.sense_state = bytearray(n)  # 0 agrees, 1 disagrees (not yet long), 2 alarm raised
        self.holding = True  # the boot hold
        self._started_ms = hw.ticks_ms()
        self._fresh_ms = -1
        self.dirty = False  # the engine's persistent state changed: save it
        self._ovr = bytearray(n)  # engine.ovr as last saved: an expiring override must be saved too
        self.evaluations = 0

    # -- state across reboot -----------------------------------------------------

    def restore(self, data, now_ms):
        """Apply state.json's parts. A damaged part is skipped and reported
        (state_error in /api/health): it must never stop the boot."""
        e = data.get("energy")
        if e is not None:
            try:
                self.energy.from_dict(e)
            except Exception as err:  # schema.ConfigError, or whatever else a damaged entry provokes
                self._damaged("energy", err, "counters start from zero")
        o = data.get("outputs")
        if o is not None:
            try:
                self.engine.restore(o, now_ms)
            except Exception as err:
                self._damaged("outputs", err, "overrides and latches not restored")

    def _damaged(self, part, err, consequence):
        store = self.ctx.store
        error = "state.json: " + part + ": " + str(err) + "; " + consequence
        print("state: ERROR", error)
        store.error = error if store.error is None else store.error + "; " + error

    def save(self, now_ms):
        store = self.ctx.store
        store.save("energy", self.energy.to_dict())
        self.energy.mark_saved(now_ms)
        store.save("outputs", self.engine.persistent_state())
        self.dirty = False

    # -- the task ------------------------------------------------------------------

    async def run(self):
        ctx = self.ctx
        model = ctx.model
        for i in range(self.engine.count):
            ctx.log.add(EV_OUTPUT, i, self.levels[i], R_NONE, hw.ticks_ms())  # held at boot
        seen = -1  # model.generation at the last pass
        last = hw.ticks_ms()
        while True:
            await asyncio.sleep_ms(_POLL_MS)
            now = hw.ticks_ms()
            if model.generation != seen or ticks_diff(now, last) >= _PERIOD_MS:
                seen = model.generation
                last = now
                self.step(now)

    def step(self, now):
        model = self.ctx.model
        self.energy.update(now, model)  # integrates each fresh frame once; blanks estimates off-link
        if self.holding and not self._settled(now, model):
            self._check_senses(now)
            return
        stamp = hw.epoch_s()
        engine = self.engine
        engine.stamp = stamp
        engine.evaluate(now, model, self.energy, minute_of_day(stamp), day_number(stamp), self.flags)
        self.evaluations += 1
        self.write()
        self._check_senses(now)
        ovr = engine.ovr
        for i in range(engine.count):
            if ovr[i] != self._ovr[i]:
                self._ovr[i] = ovr[i]
                self.dirty = True
        if self.energy.save_due(now) or self.dirty:
            self.save(now)

    def _settled(self, now, model):
        if model.link == LINK_OK and model.has_data:
            if self._fresh_ms < 0:
                self._fresh_ms = now
            elif ticks_diff(now, self._fresh_ms) >= _SETTLE_MS:
                self.holding = False
                return True
        else:
            self._fresh_ms = -1  # settling needs a live link throughout
            if ticks_diff(now, self._started_ms) >= self.ctx.engine.lost_ms() + _SETTLE_MS:
                self.holding = False  # no live BMS since boot: the fail-safe states take over
                return True
        return False

    def write(self):
        """Pins of outputs that are off first, then those that are on."""
        engine = self.engine
        for on in (False, True):
            for i in range(engine.count):
                if engine.state(i) == on:
                    level = engine.pin_level(i, True)  # asserted; hw.Output applies the board's polarity
                    self.levels[i] = level
                    pin = self.pins[i]
                    if pin is not None:
                        pin.set(level)

    def _check_senses(self, now):
        if self.sense_ms <= 0:
            return
        log = self.ctx.log
        for i in range(len(self.senses)):
            sense = self.senses[i]
            if sense is None or self.pins[i] is None:
                continue
            state = self.sense_state[i]
            if sense.value() == self.levels[i]:
                if state == 2:
                    log.add(EV_ALARM, ALARM_SENSE, 0, i, now)
                self.sense_state[i] = 0
            elif state == 0:
                self.sense_state[i] = 1
                self.sense_since[i] = now
            elif state == 1 and ticks_diff(now, self.sense_since[i]) > self.sense_ms:
                self.sense_state[i] = 2
                log.add(EV_ALARM, ALARM_SENSE, 1, i, now)

    # -- manual control (the API) -------------------------------------------------

    def index(self, ref):
        """An output by index or name; ValueError when there is none."""
        engine = self.engine
        if isinstance(ref, int) and not isinstance(ref, bool):
            if 0 <= ref < engine.count:
                return ref
        elif isinstance(ref, str):
            names = engine.p.names
            for i in range(engine.count):
                if names[i] == ref:
                    return i
        raise ValueError("unknown output: " + str(ref))

    def command(self, i, action, mode, expiry_s, persist, now):
        """Apply one API action to output i; raises ValueError (bad mode or
        expiry). Takes effect at once (pins written now)."""
        engine = self.engine
        if action == "on" or action == "off":
            engine.override(i, action == "on", expiry_s, persist, now)
        elif action == "release":
            engine.release(i)
        elif action == "reset":
            engine.reset(i)
        elif action == "auto" or action == "mode":
            m = "auto" if action == "auto" else mode
            if m not in ("off", "on", "auto"):
                raise ValueError('mode must be "off", "on" or "auto"')
            engine.release(i)
            engine.set_mode(i, m)
        else:
            raise ValueError("unknown action: " + str(action))
        self.holding = False  # a person decided: the boot hold is over
        self.dirty = True
        self.step(now)

    # -- faces (allocate) ---------------------------------------------------------

    def describe(self, i, now):
        d = self.engine.describe(i, now)
        if self.holding:
            d["state"] = "on" if self.levels[i] else "off"
            d["level"] = self.levels[i]
            d["held_by"] = "boot"
            d["reason"] = "boot"
            d["reason_code"] = R_NONE
        pin = self.pins[i]
        d["pin"] = "do" + str(i + 1) if pin is not None else None
        d["pin_asserted"] = self.levels[i] if pin is not None else None
        sense = self.senses[i]
        d["sense"] = sense.value() if sense is not None else None
        d["sense_alarm"] = self.sense_state[i] == 2
        return d

    def describe_all(self, now):
        return [self.describe(i, now) for i in range(self.engine.count)]

    def summary(self, now):
        """The compact form for /api/status and the status page."""
        out = []
        for i in range(self.engine.count):
            d = self.describe(i, now)
            out.append({"name": d["name"], "state": d["state"], "held_by": d["held_by"], "reason": d["reason"],
                        "sense_alarm": d["sense_alarm"]})
        return out
