# DO1-DO3: the rules engine's decisions (lib/rules) written to the pins.
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
#             the level written for longer than sense_check_s raises an
#             alarm (EV_ALARM), cleared when they agree
#   safe mode every output at its fail-safe ("lost") state, rules stopped
# step() allocates nothing. Manual actions come through the control service
# (lib/control.py), which calls command().
from array import array

from eventlog import EV_ALARM, EV_OUTPUT
from eventtext import ALARM_SENSE
from link.model import LINK_OK
from rules.program import SAFE_ON
from rules.reasons import HOLDERS, NAMES, R_LOST, R_NONE
from ticks import ticks_diff

try:
    from micropython import const
except ImportError:  # CPython (pyright)
    def const(__value):
        return __value

_SETTLE_MS = const(3000)  # after the first fresh status, before rules may switch


def minute_of_day(clock_s):
    """UTC minute of the day (0..1439) of the device clock (seconds since
    2024-01-01, a day boundary); -1 with no clock."""
    return (clock_s % 86400) // 60 if clock_s > 0 else -1


def day_number(clock_s):
    """Days since 2024-01-01; -1 with no clock."""
    return clock_s // 86400 if clock_s > 0 else -1


class Relays:
    def __init__(self, hw, engine, log, sense_check_s, lost_ms, tz_offset_s=0):
        self.hw = hw
        self.tz_offset_s = tz_offset_s  # local time for quiet hours and time windows
        self.engine = engine  # rules.engine.Engine
        self.log = log
        self.lost_ms = lost_ms  # callable: the link's loss limit now
        n = engine.count
        self.count = n
        self.names = engine.p.names
        self.pins = []  # hw.Output per output (None: not fitted on this board)
        self.senses = []  # hw.Input per output (None: no sense input)
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
        self.sense_ms = int(sense_check_s * 1000)
        self.sense_since = array("i", [0] * n)
        self.sense_state = bytearray(n)  # 0 agrees, 1 disagrees (not yet long), 2 alarm raised
        self.holding = True  # the boot hold
        self.safe_mode = False
        self._started_ms = hw.ticks_ms()
        self._fresh_ms = -1
        self.dirty = False  # the engine's persistent state changed: save it
        self._ovr = bytearray(n)  # engine.ovr as last saved: an expiring override must be saved too
        self._seen = bytearray(n)  # (state << 1 | level) as last published
        self.evaluations = 0
        for i in range(n):
            log.add(EV_OUTPUT, i, self.levels[i], R_NONE, self._started_ms)  # held at boot

    def enter_safe_mode(self, now_ms):
        """Every output at its fail-safe state for a lost link; no rules."""
        self.safe_mode = True
        self.holding = False
        p = self.engine.p
        for i in range(self.count):
            on = p.safe_lost[i] == SAFE_ON
            self.engine.force(i, on, R_LOST, now_ms)
        self.write()

    # -- a pass ---------------------------------------------------------------------

    def step(self, now, model, estimates, clock_s, flags):
        """Evaluate and write the pins; True when an output changed (state,
        level or override) since the last pass."""
        if self.safe_mode:
            return False
        if self.holding and not self._settled(now, model):
            self._check_senses(now)
            return False
        engine = self.engine
        engine.stamp = clock_s
        local = clock_s + self.tz_offset_s if clock_s > 0 else 0
        engine.evaluate(now, model, estimates, minute_of_day(local), day_number(local), flags)
        self.evaluations += 1
        self.write()
        self._check_senses(now)
        changed = False
        ovr = engine.ovr
        for i in range(self.count):
            if ovr[i] != self._ovr[i]:
                self._ovr[i] = ovr[i]
                self.dirty = True
                changed = True
            seen = engine.out[i] << 1 | self.levels[i]
            if seen != self._seen[i]:
                self._seen[i] = seen
                changed = True
        return changed

    def _settled(self, now, model):
        if model.link == LINK_OK and model.has_data:
            if self._fresh_ms < 0:
                self._fresh_ms = now
            elif ticks_diff(now, self._fresh_ms) >= _SETTLE_MS:
                self.holding = False
                return True
        else:
            self._fresh_ms = -1  # settling needs a live link throughout
            if ticks_diff(now, self._started_ms) >= self.lost_ms() + _SETTLE_MS:
                self.holding = False  # no live BMS since boot: the fail-safe states take over
                return True
        return False

    def write(self):
        """Pins of outputs that are off first, then those that are on."""
        engine = self.engine
        for on in (False, True):
            for i in range(self.count):
                if engine.state(i) == on:
                    level = engine.pin_level(i, True)  # asserted; hw.Output applies the board's polarity
                    self.levels[i] = level
                    pin = self.pins[i]
                    if pin is not None:
                        pin.set(level)

    def _check_senses(self, now):
        if self.sense_ms <= 0:
            return
        log = self.log
        for i in range(self.count):
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

    # -- what the hub reads -------------------------------------------------------------

    def state(self, i):
        if self.holding:
            return self.levels[i] ^ self.engine.p.inverted[i] == 1
        return self.engine.state(i)

    def switches(self, i):
        return self.engine.switches[i]

    def reason_text(self, i):
        """Why output i is in its state (a constant: no allocation)."""
        if self.holding:
            return "boot"
        if self.safe_mode:
            return "safe mode: fail-safe state"
        r = self.engine.reason[i]
        return NAMES[r] if r < len(NAMES) else "reason"

    def held_by(self, i):
        if self.holding:
            return "boot"
        if self.safe_mode:
            return "safe mode"
        r = self.engine.reason[i]
        return HOLDERS[r] if r < len(HOLDERS) else "unknown"

    def override(self, i):
        """None, "on" or "off" (a manual override)."""
        o = self.engine.ovr[i]
        return None if not o else ("on" if o == 2 else "off")

    def override_left_s(self, i, now):
        """Seconds until output i's override expires, None without expiry."""
        engine = self.engine
        if not engine.ovr[i] or not engine.ovr_expires[i]:
            return None
        left = ticks_diff(engine.ovr_until[i], now)
        return (left + 999) // 1000 if left > 0 else 0

    def inverted(self, i):
        return self.engine.p.inverted[i] == 1

    def sense_alarm(self, i):
        return self.sense_state[i] == 2

    def on_total_s(self, i):
        return self.engine.on_total_s[i]

    # -- manual control (through lib/control.py) ---------------------------------------

    def index(self, ref):
        """An output by index or name; ValueError when there is none."""
        if isinstance(ref, int) and not isinstance(ref, bool):
            if 0 <= ref < self.count:
                return ref
        elif isinstance(ref, str):
            for i in range(self.count):
                if self.names[i] == ref:
                    return i
        raise ValueError("unknown output: " + str(ref)[:40])

    def command(self, i, action, mode, expiry_s, persist, now):
        """Apply one action to output i; raises ValueError (bad mode or
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

    # -- faces (allocate) ----------------------------------------------------------------

    def describe(self, i, now):
        d = self.engine.describe(i, now)
        if self.holding:
            d["state"] = "on" if self.state(i) else "off"
            d["level"] = self.levels[i]
            d["held_by"] = "boot"
            d["reason"] = "boot"
            d["reason_code"] = R_NONE
        elif self.safe_mode:
            d["held_by"] = "safe mode"
            d["reason"] = "safe mode: fail-safe state"
        pin = self.pins[i]
        d["pin"] = "do" + str(i + 1) if pin is not None else None
        d["pin_asserted"] = self.levels[i] if pin is not None else None
        # What the relay really does: an inverted (normally energised)
        # output is energised while its logical state is off.
        d["relay"] = None if pin is None else ("energised" if self.levels[i] else "released")
        sense = self.senses[i]
        d["sense"] = sense.value() if sense is not None else None
        d["sense_alarm"] = self.sense_state[i] == 2
        return d
