# ACC wake policy and the TTL side's isolated supply, as a pure state machine.
#
#   acc = AccController(config, log=eventlog)
#   every ~50-100 ms and on every model change:
#       acc.step(now_ms, model.link, soc_or_minus_1, minute_of_day_or_minus_1,
#                client_connected, rule_flag, model.line)
#       acc_pin.value(board.acc.level(acc.acc_level))
#       supply_pin.value(board.supply_enable.level(acc.supply_level))
#       engine.set_powered(acc.supply_level == 1, now_ms)
#
# acc_level and supply_level are LOGICAL (1 = ACC asserted / supply on); the
# board file maps them to pin levels.
#
# Wake: when the BMS has not answered by boot_grace_ms after boot (or after
# the supply came on), or the link goes LOST/ASLEEP, ACC is pulsed for
# pulse_ms, then the link gets wait_ms to come back. Each failure waits
# backoff_ms * 2**(n-1) (capped) before the next pulse; after `attempts`
# failures the state is "asleep" and a pulse is tried every asleep_retry_ms.
# If keep-awake already holds ACC, the pulse starts with a short release so
# the BMS sees a fresh rising edge.
#
# A BMS that went ASLEEP (silent after answering: it chose to sleep) is woken
# only when wake.when_asleep is true (default) or keep-awake wants it awake;
# otherwise the state is "released" and the BMS may sleep.
#
# Keep-awake holds ACC while its condition holds (always / schedule window /
# client connected / rule flag) and the SOC is above the floor: at or below
# soc_floor_pct the hold is dropped until the SOC is back at floor +
# soc_hysteresis_pct, so a permanent wake cannot drain the pack.
#
# Supply: "always" keeps it on; "on_demand" powers the TTL side while the link
# is needed (keep-awake, a client, the rule flag, a manual wake, a periodic
# sample window, a wake attempt) and for demand_hold_ms after. The supply is
# power-cycled (off off_ms, then on) when the link is stuck (LOST with bytes
# but no valid frame for stuck_ms) and after every cycle_after_failures failed
# wakes.
#
# step() allocates nothing; describe() and the config are faces (allocate).
try:
    from micropython import const
except ImportError:  # CPython
    def const(__value):  # positional-only, like the stub
        return __value

import schema
from daywindow import in_window
from eventlog import EV_ACC, EV_SUPPLY
from link.model import LINE_NOISE, LINE_SILENT, LINE_UNKNOWN, LINK_ASLEEP, LINK_LOST, LINK_OK, LINK_STALE
from ticks import ticks_add, ticks_diff, wrap_add

STATE_START = const(0)  # boot or supply just on: giving the link its grace time
STATE_IDLE = const(1)  # the link is fine (or stale): nothing to do
STATE_PULSE = const(2)  # ACC pulse in progress
STATE_WAIT = const(3)  # pulse done, waiting for the link
STATE_BACKOFF = const(4)  # a wake failed, waiting for the next attempt
STATE_ASLEEP = const(5)  # `attempts` wakes failed: slow retries
STATE_CYCLE = const(6)  # supply switched off for a power cycle
STATE_RELEASED = const(7)  # the BMS sleeps and the policy lets it
STATE_UNPOWERED = const(8)  # on_demand supply off: the link is not needed
STATE_HELD_OFF = const(9)  # the BMS was shut down on request: no wake until asked
STATE_NAMES = ("starting", "idle", "pulsing", "waiting", "backoff", "asleep", "power-cycling", "released", "unpowered",
               "shut down")
# What each state means, for a person (the faces).
STATE_TEXT = (
    "giving the BMS time to answer after start-up",
    "nothing to do: the BMS answers",
    "pulsing ACC to wake the BMS",
    "ACC pulse sent; waiting for the BMS to answer",
    "a wake failed; trying again soon",
    "several wakes failed: the BMS stays silent; retrying every few minutes",
    "switching the TTL port's supply off and on again",
    "the BMS sleeps and the settings let it (no automatic wake)",
    "the TTL port's supply is off: nothing needs the BMS now",
    "the BMS was shut down on request: no automatic wake until you ask",
)

# EV_SUPPLY reason codes (event b).
SUPPLY_BOOT = const(0)
SUPPLY_DEMAND = const(1)  # on: the link is needed
SUPPLY_IDLE = const(2)  # off: on_demand, nothing needs the link
SUPPLY_STUCK = const(3)  # off: power cycle, bytes but no valid frame
SUPPLY_WAKE_FAILED = const(4)  # off: power cycle after failed wakes
SUPPLY_CYCLE_END = const(5)  # on: power cycle over
SUPPLY_REASONS = ("boot", "demand", "idle", "stuck", "wake failed", "cycle end")

KEEP_OFF = const(0)
KEEP_ALWAYS = const(1)
KEEP_SCHEDULE = const(2)
KEEP_CLIENT = const(3)
KEEP_RULE = const(4)
KEEP_MODES = ("off", "always", "schedule", "client", "rule")

_EDGE_GAP_MS = const(300)  # ACC low before a pulse while keep-awake holds it
_MAX_ATTEMPTS_COUNT = const(30000)  # fits the event log's int16

_WAKE_KEYS = ("enabled", "pulse_ms", "wait_ms", "boot_grace_ms", "backoff_ms", "backoff_max_ms",
              "attempts", "asleep_retry_ms", "when_asleep")
_KEEP_KEYS = ("mode", "from_min", "to_min", "soc_floor_pct", "soc_hysteresis_pct")
_SUPPLY_KEYS = ("mode", "off_ms", "stuck_ms", "cycle_after_failures", "demand_hold_ms", "sample_every_ms")


class AccConfig:
    """Validated ACC/supply settings; raises schema.ConfigError(path, reason)."""

    def __init__(self, d=None, path="acc"):
        d = schema.obj({} if d is None else d, path, ("wake", "keep_awake", "supply"))
        p = schema.join(path, "wake")
        w = schema.obj(d.get("wake", {}), p, _WAKE_KEYS)
        self.wake_enabled = schema.boolean(w, "enabled", p, True)
        self.pulse_ms = schema.integer(w, "pulse_ms", p, 1500, 50, 30000)
        self.wait_ms = schema.integer(w, "wait_ms", p, 3000, 500, 120000)
        self.boot_grace_ms = schema.integer(w, "boot_grace_ms", p, 5000, 0, 120000)
        self.backoff_ms = schema.integer(w, "backoff_ms", p, 2000, 100, 600000)
        self.backoff_max_ms = schema.integer(w, "backoff_max_ms", p, 60000, 100, 3600000)
        self.attempts = schema.integer(w, "attempts", p, 5, 1, 100)
        self.asleep_retry_ms = schema.integer(w, "asleep_retry_ms", p, 300000, 0, 86400000)
        self.when_asleep = schema.boolean(w, "when_asleep", p, True)
        if self.backoff_max_ms < self.backoff_ms:
            raise schema.ConfigError(schema.join(p, "backoff_max_ms"), "must be >= backoff_ms")

        p = schema.join(path, "keep_awake")
        k = schema.obj(d.get("keep_awake", {}), p, _KEEP_KEYS)
        # Default "always": ACC held, so the BMS never falls into its idle
        # sleep (which would leave the relays without data); the SOC floor
        # below still lets it sleep when the pack runs low.
        self.keep_mode = KEEP_MODES.index(schema.string(k, "mode", p, "always", KEEP_MODES))
        self.from_min = schema.integer(k, "from_min", p, 0, 0, 1439)
        self.to_min = schema.integer(k, "to_min", p, 0, 0, 1439)
        self.soc_floor_pct = schema.integer(k, "soc_floor_pct", p, 20, 0, 100)
        self.soc_hysteresis_pct = schema.integer(k, "soc_hysteresis_pct", p, 5, 1, 50)
        if self.keep_mode == KEEP_SCHEDULE and self.from_min == self.to_min:
            raise schema.ConfigError(schema.join(p, "to_min"), "empty window (from_min == to_min)")

        p = schema.join(path, "supply")
        s = schema.obj(d.get("supply", {}), p, _SUPPLY_KEYS)
        self.on_demand = schema.string(s, "mode", p, "always", ("always", "on_demand")) == "on_demand"
        self.off_ms = schema.integer(s, "off_ms", p, 2000, 100, 60000)
        self.stuck_ms = schema.integer(s, "stuck_ms", p, 30000, 1000, 3600000)
        self.cycle_after_failures = schema.integer(s, "cycle_after_failures", p, 3, 0, 100)
        self.demand_hold_ms = schema.integer(s, "demand_hold_ms", p, 60000, 1000, 3600000)
        self.sample_every_ms = schema.integer(s, "sample_every_ms", p, 0, 0, 86400000)


class AccController:
    def __init__(self, config=None, log=None, has_supply=True):
        self.log = log
        self.has_supply = has_supply  # False: the board cannot switch the supply
        self.configure(config)
        self.acc_level = 0
        self.supply_level = 1
        self.state = STATE_START
        self.attempts = 0  # failed wakes in the current series
        self.next_try_ms = 0  # ticks of the next pulse (BACKOFF/ASLEEP)
        self.holding = False  # keep-awake wants ACC and the SOC allows it
        self.floor_blocked = False  # SOC at/below the floor (hysteresis)
        self.wakes_ok = 0
        self.wake_failures = 0
        self.power_cycles = 0
        self.last_supply_reason = SUPPLY_BOOT
        self._started = False
        self._state_ms = 0  # ticks of the last state change
        self._edge = False  # this pulse starts with a release
        self._manual = False
        self._demand_until = 0
        self._next_sample = 0
        self._stuck = False
        self._stuck_ms = 0
        self._cycle_reason = SUPPLY_STUCK
        self._logged_state = -1
        self._logged_level = -1
        self.held_off = False  # a requested shutdown: no wake until manual_wake()

    def configure(self, config):
        c = config if isinstance(config, AccConfig) else AccConfig(config)
        self.config = c
        return self

    def manual_wake(self, now_ms):
        """The API asked for a wake: pulse at the next step, powering the
        supply first when it is on demand."""
        self._manual = True
        self.held_off = False
        self._demand_until = ticks_add(now_ms, self.config.demand_hold_ms)

    def hold_off(self, now_ms=0):
        """The BMS was shut down on request: release ACC and wake it no more
        until manual_wake()."""
        self.held_off = True
        self.attempts = 0
        self._to(STATE_HELD_OFF, now_ms)

    # -- the state machine ---------------------------------------------------

    def step(self, now_ms, link_state, soc_pct, minute_of_day, client_connected, rule_flag, line_state=LINE_UNKNOWN):
        c = self.config
        if not self._started:
            self._started = True
            self._state_ms = now_ms
            self._demand_until = ticks_add(now_ms, c.demand_hold_ms)  # learn the state once
            self._next_sample = ticks_add(now_ms, c.sample_every_ms)
        self._keep_awake(soc_pct, minute_of_day, client_connected, rule_flag)
        state = self.state
        elapsed = ticks_diff(now_ms, self._state_ms)
        link_ok = link_state == LINK_OK

        if c.on_demand:
            if self.holding or client_connected or rule_flag:
                self._demand_until = ticks_add(now_ms, c.demand_hold_ms)
            if c.sample_every_ms > 0 and ticks_diff(now_ms, self._next_sample) >= 0:
                self._next_sample = ticks_add(now_ms, c.sample_every_ms)
                self._demand_until = ticks_add(now_ms, c.demand_hold_ms)
            hold_left = ticks_diff(self._demand_until, now_ms)
            if hold_left <= 0:
                # Expired: keep the stamp at "now" so it never ages past the
                # 2**29 ms ticks_diff() range and wraps into the future.
                self._demand_until = now_ms
            demand = self._manual or hold_left > 0
            if state == STATE_UNPOWERED:
                if demand:
                    self._supply(1, SUPPLY_DEMAND, now_ms)
                    self._to(STATE_START, now_ms)
                self._outputs(now_ms)
                return
            if not demand and (state == STATE_IDLE or state == STATE_RELEASED or state == STATE_ASLEEP
                               or state == STATE_BACKOFF):
                self._supply(0, SUPPLY_IDLE, now_ms)
                self._to(STATE_UNPOWERED, now_ms)
                self._stuck = False
                self._outputs(now_ms)
                return

        if state == STATE_HELD_OFF:
            if not self.held_off:
                self._to(STATE_START, now_ms)
            self._outputs(now_ms)
            return
        if self._manual and state != STATE_PULSE and state != STATE_WAIT and state != STATE_CYCLE:
            self._manual = False
            self.attempts = 0
            self._begin_attempt(now_ms)
            self._outputs(now_ms)
            return
        if state == STATE_START:
            if link_ok:
                self._success(now_ms)
            elif elapsed >= c.boot_grace_ms:
                if self._may_wake(link_state):
                    self._begin_attempt(now_ms)
                else:
                    self._to(STATE_RELEASED, now_ms)
        elif state == STATE_IDLE:
            if link_state == LINK_STALE and line_state == LINE_SILENT:
                # Not a byte since the last good frame: the BMS probably fell
                # asleep. Wake it now, before the link counts as lost (a
                # pulse does no harm to an awake BMS).
                if self._may_wake(LINK_ASLEEP):
                    self._begin_attempt(now_ms)
            elif link_state == LINK_LOST or link_state == LINK_ASLEEP:
                if self._may_wake(link_state):
                    self._begin_attempt(now_ms)
                else:
                    self._to(STATE_RELEASED, now_ms)
        elif state == STATE_RELEASED:
            if link_ok:
                self._to(STATE_IDLE, now_ms)
            elif self._may_wake(link_state):
                self._begin_attempt(now_ms)
        elif state == STATE_PULSE:
            length = c.pulse_ms + (_EDGE_GAP_MS if self._edge else 0)
            if elapsed >= length:
                self._to(STATE_WAIT, now_ms)
        elif state == STATE_WAIT:
            if link_ok:
                self._success(now_ms)
            elif elapsed >= c.wait_ms:
                self._failed(now_ms)
        elif state == STATE_BACKOFF or state == STATE_ASLEEP:
            if link_ok:
                self._success(now_ms)
            elif state == STATE_BACKOFF or c.asleep_retry_ms > 0:
                if ticks_diff(now_ms, self.next_try_ms) >= 0:
                    self._begin_attempt(now_ms)
        elif state == STATE_CYCLE:
            if elapsed >= c.off_ms:
                self._supply(1, SUPPLY_CYCLE_END, now_ms)
                self._to(STATE_START, now_ms)  # grace time, then wake if needed

        # Stuck line: bytes but never a valid frame, for stuck_ms while the
        # supply is on. The cycle waits for a wake attempt in flight to end.
        state = self.state
        if (self.has_supply and link_state == LINK_LOST and line_state == LINE_NOISE
                and state != STATE_CYCLE and state != STATE_UNPOWERED):
            if not self._stuck:
                self._stuck = True
                self._stuck_ms = now_ms
            elif (ticks_diff(now_ms, self._stuck_ms) >= c.stuck_ms
                  and state != STATE_PULSE and state != STATE_WAIT):
                self._stuck = False
                self._power_cycle(now_ms, SUPPLY_STUCK)
        else:
            self._stuck = False
        self._outputs(now_ms)

    def _keep_awake(self, soc, minute, client, rule):
        c = self.config
        mode = c.keep_mode
        if mode == KEEP_ALWAYS:
            wanted = True
        elif mode == KEEP_SCHEDULE:
            wanted = in_window(minute, c.from_min, c.to_min)
        elif mode == KEEP_CLIENT:
            wanted = bool(client)
        elif mode == KEEP_RULE:
            wanted = bool(rule)
        else:
            wanted = False
        if soc >= 0:  # unknown SOC (-1) keeps the last decision
            if soc <= c.soc_floor_pct:
                self.floor_blocked = True
            elif soc >= c.soc_floor_pct + c.soc_hysteresis_pct:
                self.floor_blocked = False
        self.holding = wanted and not self.floor_blocked and not self.held_off

    def _may_wake(self, link_state):
        c = self.config
        if not c.wake_enabled:
            return False
        if link_state == LINK_LOST:
            return True
        if link_state == LINK_ASLEEP:
            return c.when_asleep or self.holding
        return False  # ok, stale, or the link engine still thinks it is unpowered

    def _begin_attempt(self, now_ms):
        self._edge = self.holding  # ACC already high: release first
        self._to(STATE_PULSE, now_ms)

    def _success(self, now_ms):
        if self.state == STATE_WAIT or self.state == STATE_BACKOFF or self.state == STATE_ASLEEP:
            self.wakes_ok = wrap_add(self.wakes_ok, 1)
        self.attempts = 0
        self._manual = False  # a pending manual wake is satisfied
        self._to(STATE_IDLE, now_ms)

    def _failed(self, now_ms):
        c = self.config
        if self.attempts < _MAX_ATTEMPTS_COUNT:
            self.attempts += 1
        self.wake_failures = wrap_add(self.wake_failures, 1)
        k = c.cycle_after_failures
        if self.has_supply and k > 0 and self.attempts % k == 0:
            self._power_cycle(now_ms, SUPPLY_WAKE_FAILED)
            return
        self._retry_later(now_ms, self._backoff())

    def _backoff(self):
        c = self.config
        d = c.backoff_ms
        n = self.attempts
        while n > 1 and d < c.backoff_max_ms:
            d += d
            n -= 1
        return d if d < c.backoff_max_ms else c.backoff_max_ms

    def _retry_later(self, now_ms, delay_ms):
        c = self.config
        if self.attempts >= c.attempts:
            retry = c.asleep_retry_ms
            self.next_try_ms = ticks_add(now_ms, retry if retry > delay_ms else delay_ms)
            self._to(STATE_ASLEEP, now_ms)
        else:
            self.next_try_ms = ticks_add(now_ms, delay_ms)
            self._to(STATE_BACKOFF, now_ms)

    def _power_cycle(self, now_ms, reason):
        self.power_cycles = wrap_add(self.power_cycles, 1)
        self._cycle_reason = reason
        self._supply(0, reason, now_ms)
        self._to(STATE_CYCLE, now_ms)

    def _supply(self, level, reason, now_ms):
        self.last_supply_reason = reason
        if level != self.supply_level:
            self.supply_level = level
            if self.log is not None:
                self.log.add(EV_SUPPLY, level, reason, 0, now_ms)

    def _to(self, state, now_ms):
        self._state_ms = now_ms
        self.state = state

    def _outputs(self, now_ms):
        level = 1 if self.holding else 0
        if self.state == STATE_PULSE:
            level = 1
            if self._edge and ticks_diff(now_ms, self._state_ms) < _EDGE_GAP_MS:
                level = 0
        self.acc_level = level
        # One event per change of state or ACC level: a = state, b = failed
        # attempts so far, c = ACC level.
        if self.state != self._logged_state or level != self._logged_level:
            self._logged_state = self.state
            self._logged_level = level
            if self.log is not None:
                self.log.add(EV_ACC, self.state, self.attempts, level, now_ms)

    # -- faces (allocate) ----------------------------------------------------

    def describe(self, now_ms):
        c = self.config
        waiting = self.state == STATE_BACKOFF or self.state == STATE_ASLEEP
        return {
            "state": STATE_NAMES[self.state],
            "text": STATE_TEXT[self.state],
            "acc": self.acc_level,
            "supply": self.supply_level,
            "attempts": self.attempts,
            "next_try_in_ms": max(0, ticks_diff(self.next_try_ms, now_ms)) if waiting else None,
            "keep_awake": KEEP_MODES[c.keep_mode],
            "holding": self.holding,
            "soc_floor_blocked": self.floor_blocked,
            "supply_mode": "on_demand" if c.on_demand else "always",
            "last_supply_reason": SUPPLY_REASONS[self.last_supply_reason],
            "wakes_ok": self.wakes_ok,
            "wake_failures": self.wake_failures,
            "power_cycles": self.power_cycles,
        }
