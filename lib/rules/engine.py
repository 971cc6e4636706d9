# Evaluating a compiled Program once per status update (or per second):
# conditions -> debounce -> delays -> impulse / max-on -> exercise ->
# min on/off + rate cap -> latch -> interlocks -> blink, with overrides,
# fixed modes and the fail-safe taking precedence in that order:
#   override > mode on/off > latched trip > fail-safe > rule pipeline.
# Interlocks apply to every source, overrides included.
#
# All per-evaluation state lives in arrays allocated here, once; evaluate()
# allocates nothing (host_tests/mp_test_rules_alloc.py proves it). Time is
# the caller's wrap-safe ms ticks; every stored timestamp is aged through
# _age(), which saturates it at _AGE_CAP so a stamp never wraps.
from array import array

from daywindow import in_window
from eventlog import EV_OUTPUT
from link.model import LINK_OK, LINK_STALE
from ticks import ticks_add, ticks_diff, wrap_add
from rules.program import (
    F_HIGH, F_QUIET, LATCH_NAMES, LATCH_NONE, LATCH_ON, MAX_NODES, MAX_RATE, MODE_AUTO,
    MODE_NAMES, MODE_OFF, MODE_ON, OP_ALL, OP_ANY, OP_BITS, OP_BOOL, OP_CMP, OP_FLAG,
    OP_LINK, OP_NOT, OP_OUTPUT, OP_TIME, SAFE_HOLD, SAFE_OFF, SAFE_RULE, UNKNOWN_ERROR,
)
from rules.reasons import (
    R_ERROR, R_EXERCISE, R_IMPULSE, R_INTERLOCK, R_INTERLOCK_WAIT, R_LATCHED, R_LOST,
    R_MAX_ON, R_MIN_OFF, R_MIN_ON, R_MODE_OFF, R_MODE_ON, R_OFF_DELAY, R_ON_DELAY,
    R_OVERRIDE_OFF, R_OVERRIDE_ON, R_RATE_CAP, R_RULE_OFF, R_RULE_ON, R_STALE, holder, name,
)
from rules.signals import COUNT, S_AGE, S_HAS_DATA, S_LINK, extract

try:
    from micropython import const
except ImportError:  # CPython
    def const(__value):  # positional-only, like the stub
        return __value

_AGE_CAP = const(0x10000000)  # ~3.1 days: ages saturate here, far from the 2**29 wrap
_HOUR_MS = const(3600000)
_MAX_STEP_MS = const(3600000)  # an evaluation gap longer than this counts as this
_MAX_OVERRIDE_S = const(259200)  # 72 h
_UNKNOWN = const(2)
_OVR_NONE = const(0)
_OVR_OFF = const(1)
_OVR_ON = const(2)


class Engine:
    def __init__(self, program, log):
        p = program
        n = p.count
        self.p = p
        self.log = log
        self.count = n
        self.mode = bytearray(p.mode)
        self.ovr = bytearray(n)
        self.ovr_until = array("i", [0] * n)
        self.ovr_expires = bytearray(n)
        self.ovr_persist = bytearray(n)
        self.out = bytearray(n)  # logical state: what is logged and counted
        self.drive = bytearray(n)  # instantaneous state (out with the blink phase)
        self.prev = bytearray(n)  # out at the start of this evaluation (output_on conditions)
        self.reason = bytearray(n)
        self.rule = array("b", [-1] * n)  # deciding condition (leaf ordinal), -1 = none
        self.unknown = bytearray(n)  # an input of the condition was unknown
        self.since = array("i", [0] * n)  # ticks of the last switch of out
        self.deb_state = bytearray(n)
        self.deb_count = bytearray(n)
        self.deb_since = array("i", [0] * n)
        self.want = bytearray(n)  # the rule's wish after debounce and delays
        self.pulse = bytearray(n)
        self.pulse_t = array("i", [0] * n)
        self.maxed = bytearray(n)
        self.latched = bytearray(n)
        self.ring = array("i", [0] * (n * MAX_RATE))  # ticks of the starts in the last hour
        self.ring_head = bytearray(n)
        self.ring_len = bytearray(n)
        self.blink_t = array("i", [0] * n)
        self.ex_run = bytearray(n)
        self.ex_t = array("i", [0] * n)
        self.last_on_day = array("i", [-1] * n)
        self.on_today_s = array("i", [0] * n)
        self.on_today_ms = array("i", [0] * n)
        self.on_total_s = array("i", [0] * n)
        self.on_total_ms = array("i", [0] * n)
        self.today = array("i", [-1] * n)
        self.switches = array("i", [0] * n)
        self.hyst = bytearray(p.nodes)  # per threshold condition: its latched side
        self.val = array("i", [0] * COUNT)
        self.known = bytearray(COUNT)
        self.vstack = bytearray(MAX_NODES)
        self.cstack = array("b", [-1] * MAX_NODES)
        self.started = False
        self.stamp = 0  # epoch seconds for event log entries; the firmware sets it (0 = unknown)
        self.last_now = 0
        self.minute = -1
        self.flags = None
        self.model = None
        self._err = 0
        self._cause = -1

    # -- the API ---------------------------------------------------------

    def evaluate(self, now_ms, model, estimates, minute_of_day, day, flags):
        """One evaluation at now_ms; allocates nothing in steady state."""
        if not self.started:
            self._start(now_ms)
        dt = ticks_diff(now_ms, self.last_now)
        if dt < 0:
            dt = 0
        elif dt > _MAX_STEP_MS:
            dt = _MAX_STEP_MS
        self.last_now = now_ms
        self._account(dt, day)
        extract(self.val, self.known, model, estimates, now_ms)
        self.model = model
        self.minute = minute_of_day
        self.flags = flags
        n = self.count
        for i in range(n):
            self.prev[i] = self.out[i]
        for i in range(n):
            self._prune(i, now_ms)
            try:
                self._one(i, now_ms, minute_of_day, day)
            except Exception:  # a bug must not leave a relay in an arbitrary state
                safe = self.p.safe_error[i]
                self._safe(i, SAFE_OFF if safe == SAFE_RULE else safe, R_ERROR, now_ms)

    def state(self, i):
        """Logical state (True = on) of output i."""
        return self.out[i] == 1

    def pin_level(self, i, active_high):
        """Pin level for output i: the instantaneous state (blink included),
        inverted for a normally-energised output, then the board's level."""
        level = self.drive[i] ^ self.p.inverted[i]
        return level if active_high else level ^ 1

    def override(self, i, on, expiry_s=None, persist=False, now_ms=0):
        """Force output i on/off, for expiry_s seconds (None/0 = until
        release); persist keeps it across reboot via persistent_state()."""
        if not 0 <= i < self.count:
            raise ValueError("output index")
        if expiry_s is not None and expiry_s > 0:
            if expiry_s > _MAX_OVERRIDE_S:
                raise ValueError("expiry_s > 259200")
            self.ovr_until[i] = ticks_add(now_ms, int(round(expiry_s * 1000)))
            self.ovr_expires[i] = 1
        else:
            self.ovr_expires[i] = 0
        self.ovr[i] = _OVR_ON if on else _OVR_OFF
        self.ovr_persist[i] = 1 if persist else 0
        if not self.started:
            self._start(now_ms)
        self._apply(i, 1 if on else 0, R_OVERRIDE_ON if on else R_OVERRIDE_OFF, -1, now_ms)

    def release(self, i):
        """End an override: back to the configured mode at the next evaluation."""
        self.ovr[i] = _OVR_NONE
        self.ovr_persist[i] = 0

    def set_mode(self, i, mode):
        """Change the mode ("off", "on", "auto") at run time."""
        self.mode[i] = MODE_NAMES.index(mode)

    def reset(self, i):
        """Clear a latched trip (and a max-on trip) of output i."""
        self.latched[i] = 0
        self.maxed[i] = 0

    def force(self, i, on, reason, now_ms):
        """Put output i in state `on` for `reason` outside the rules (the
        firmware's safe mode). Interlocks still apply."""
        if not self.started:
            self._start(now_ms)
        self._apply(i, 1 if on else 0, reason, -1, now_ms)

    def describe(self, i, now_ms):
        """The output's state for the API (allocates)."""
        p = self.p
        r = self.reason[i]
        leaf = self.rule[i]
        texts = p.leaf_text[i]
        expires = None
        if self.ovr[i] and self.ovr_expires[i]:
            left = ticks_diff(self.ovr_until[i], now_ms)
            expires = (left + 999) // 1000 if left > 0 else 0
        return {
            "name": p.names[i],
            "state": "on" if self.out[i] else "off",
            "level": self.drive[i],
            "mode": MODE_NAMES[self.mode[i]],
            "override": None if not self.ovr[i] else ("on" if self.ovr[i] == _OVR_ON else "off"),
            "override_expires_s": expires,
            "held_by": holder(r),
            "reason": name(r),
            "reason_code": r,
            "rule": leaf,
            "rule_text": texts[leaf] if 0 <= leaf < len(texts) else None,
            "unknown_input": self.unknown[i] == 1,
            "latched": self.latched[i] == 1,
            "inverted": p.inverted[i] == 1,
            "on_today_s": self.on_today_s[i],
            "on_total_s": self.on_total_s[i],
            "switches": self.switches[i],
        }

    def persistent_state(self):
        """What survives a reboot: persisted overrides (with the time they
        have left), latched trips, counters. Small; JSON-able."""
        ovr = []
        for i in range(self.count):
            if self.ovr[i] and self.ovr_persist[i]:
                left = -1
                if self.ovr_expires[i]:
                    left = max(1, (ticks_diff(self.ovr_until[i], self.last_now) + 999) // 1000)
                ovr.append([i, 1 if self.ovr[i] == _OVR_ON else 0, left])
        return {
            "v": 1,
            "names": list(self.p.names),
            "overrides": ovr,
            "latched": [i for i in range(self.count) if self.latched[i]],
            "on_total_s": list(self.on_total_s),
            "on_today_s": list(self.on_today_s),
            "today": list(self.today),
            "switches": list(self.switches),
            "last_on_day": list(self.last_on_day),
        }

    def restore(self, d, now_ms):
        """Apply a persistent_state() dict saved by an engine with the same
        output names; entries for other outputs are ignored."""
        if not isinstance(d, dict) or d.get("v") != 1:
            return False
        names = d.get("names", [])
        same = [i < len(names) and names[i] == self.p.names[i] for i in range(self.count)]
        for key in ("on_total_s", "on_today_s", "today", "switches", "last_on_day"):
            values = d.get(key, [])
            target = getattr(self, key)
            for i in range(min(self.count, len(values))):
                if same[i] and isinstance(values[i], int):
                    target[i] = values[i]
        for i in d.get("latched", []):
            if isinstance(i, int) and 0 <= i < self.count and same[i] and self.p.latch[i] != LATCH_NONE:
                self.latched[i] = 1
        for entry in d.get("overrides", []):
            if isinstance(entry, list) and len(entry) == 3:
                i, on, left = entry
                if isinstance(i, int) and 0 <= i < self.count and same[i]:
                    self.override(i, on == 1, left if left > 0 else None, True, now_ms)
        return True

    # -- evaluation --------------------------------------------------------

    def _start(self, now):
        # Unknown history counts as long ago: no minimum time blocks at boot.
        old = ticks_add(now, -_AGE_CAP)
        for i in range(self.count):
            self.since[i] = old
            self.deb_since[i] = old
            self.pulse_t[i] = old
            self.blink_t[i] = old
            self.ex_t[i] = old
        self.last_now = now
        self.started = True

    def _age(self, stamps, k, now):
        d = ticks_diff(now, stamps[k])
        if d > _AGE_CAP or d < 0:
            stamps[k] = ticks_add(now, -_AGE_CAP)
            return _AGE_CAP
        return d

    def _account(self, dt, day):
        # The interval since the previous evaluation belongs to the day it
        # started in: add it first, then start the new day's count.
        for i in range(self.count):
            if self.out[i]:
                ms = self.on_today_ms[i] + dt
                self.on_today_s[i] += ms // 1000
                self.on_today_ms[i] = ms % 1000
                ms = self.on_total_ms[i] + dt
                self.on_total_s[i] += ms // 1000
                self.on_total_ms[i] = ms % 1000
            if day >= 0 and day != self.today[i]:
                if self.today[i] >= 0:
                    self.on_today_s[i] = 0
                    self.on_today_ms[i] = 0
                self.today[i] = day
            if self.out[i] and day >= 0:
                self.last_on_day[i] = day

    def _prune(self, i, now):
        base = i * MAX_RATE
        cap = self.p.rate_cap[i]
        while self.ring_len[i] and self._age(self.ring, base + self.ring_head[i], now) >= _HOUR_MS:
            self.ring_head[i] = (self.ring_head[i] + 1) % cap
            self.ring_len[i] -= 1

    def _one(self, i, now, minute, day):
        p = self.p
        o = self.ovr[i]
        if o and self.ovr_expires[i] and ticks_diff(now, self.ovr_until[i]) >= 0:
            self.ovr[i] = o = _OVR_NONE
            self.ovr_persist[i] = 0
        if o:
            on = 1 if o == _OVR_ON else 0
            self._apply(i, on, R_OVERRIDE_ON if on else R_OVERRIDE_OFF, -1, now)
            return
        m = self.mode[i]
        if m == MODE_OFF:
            self._apply(i, 0, R_MODE_OFF, -1, now)
            return
        if m == MODE_ON:
            self._apply(i, 1, R_MODE_ON, -1, now)
            return
        if self.latched[i]:
            self._apply(i, 1 if p.latch[i] == LATCH_ON else 0, R_LATCHED, self.rule[i], now)
            return
        link = self.val[S_LINK]
        if link == LINK_OK and self.val[S_HAS_DATA]:
            if self.val[S_AGE] > p.stale_ms[i] and p.safe_stale[i] != SAFE_RULE:
                self._safe(i, p.safe_stale[i], R_STALE, now)
                return
        elif link == LINK_STALE:
            if p.safe_stale[i] != SAFE_RULE:
                self._safe(i, p.safe_stale[i], R_STALE, now)
                return
        elif p.safe_lost[i] != SAFE_RULE:
            self._safe(i, p.safe_lost[i], R_LOST, now)
            return
        quiet = 0
        if minute >= 0 and p.quiet_from[i] >= 0 and in_window(minute, p.quiet_from[i], p.quiet_to[i]):
            quiet = 1
        raw = self._condition(i, quiet) if p.end[i] > p.start[i] else 0
        if self._err and p.safe_error[i] != SAFE_RULE:
            self._safe(i, p.safe_error[i], R_ERROR, now)
            return
        self._auto(i, raw, now, minute, day)

    def _safe(self, i, safe, reason, now):
        self._apply(i, self.out[i] if safe == SAFE_HOLD else safe, reason, -1, now)

    def _auto(self, i, raw, now, minute, day):
        p = self.p
        cause = self._cause
        # Debounce: a change must be seen on N consecutive evaluations.
        ds = self.deb_state[i]
        pending = 0
        if raw != ds:
            count = self.deb_count[i] + 1
            if count >= p.debounce[i]:
                self.deb_state[i] = ds = raw
                self.deb_count[i] = 0
                self.deb_since[i] = now
            else:
                self.deb_count[i] = count
                pending = R_ON_DELAY if raw else R_OFF_DELAY
        else:
            self.deb_count[i] = 0
        # On/off delay: the debounced result must hold that long.
        was = self.want[i]
        w = was
        if ds != w:
            delay = p.on_delay_ms[i] if ds else p.off_delay_ms[i]
            if self._age(self.deb_since, i, now) >= delay:
                self.want[i] = w = ds
            else:
                pending = R_ON_DELAY if ds else R_OFF_DELAY
        req = w
        reason = R_RULE_ON if w else R_RULE_OFF
        if p.impulse_ms[i]:
            if w and not was:
                self.pulse[i] = 1
                self.pulse_t[i] = now
            if self.pulse[i] and self._age(self.pulse_t, i, now) >= p.impulse_ms[i]:
                self.pulse[i] = 0
            req = self.pulse[i]
            if w and not req:
                reason = R_IMPULSE
        if self.maxed[i] and not w:
            self.maxed[i] = 0
        if p.max_on_ms[i] and req and self.out[i] and self._age(self.since, i, now) >= p.max_on_ms[i]:
            self.maxed[i] = 1
        if self.maxed[i]:
            req = 0
            reason = R_MAX_ON
        if p.ex_days[i] and self._exercise(i, req, now, minute, day):
            req = 1
            reason = R_EXERCISE
        cur = self.out[i]
        if req != cur:
            if cur:
                if reason != R_MAX_ON and self._age(self.since, i, now) < p.min_on_ms[i]:
                    req = cur
                    reason = R_MIN_ON
            elif self._age(self.since, i, now) < p.min_off_ms[i]:
                req = cur
                reason = R_MIN_OFF
            elif p.rate_cap[i] and self.ring_len[i] >= p.rate_cap[i]:
                req = cur
                reason = R_RATE_CAP
        if req == cur and pending and (reason == R_RULE_ON or reason == R_RULE_OFF):
            reason = pending
        self._apply(i, req, reason, cause, now)
        latch = p.latch[i]
        if latch != LATCH_NONE and self.out[i] != cur:
            if (latch == LATCH_ON) == (self.out[i] == 1) and (reason == R_RULE_ON or reason == R_RULE_OFF):
                self.latched[i] = 1

    def _exercise(self, i, req, now, minute, day):
        p = self.p
        if self.ex_run[i]:
            if self._age(self.ex_t, i, now) >= p.ex_ms[i]:
                self.ex_run[i] = 0
                return False
            return True
        if day < 0 or minute < 0 or req:
            return False
        last = self.last_on_day[i]
        if last < 0:
            self.last_on_day[i] = day  # first known day: the interval starts now
            return False
        if day - last >= p.ex_days[i] and minute >= p.ex_at[i]:
            self.ex_run[i] = 1
            self.ex_t[i] = now
            return True
        return False

    def _apply(self, i, target, reason, cause, now):
        cur = self.out[i]
        if target and not cur:
            n = self.count
            wait = self.p.il_wait
            for j in range(n):
                w = wait[j * n + i]
                if w >= 0:
                    if self.out[j]:
                        target = 0
                        reason = R_INTERLOCK
                        break
                    if self._age(self.since, j, now) < w:
                        target = 0
                        reason = R_INTERLOCK_WAIT
                        break
        if target != cur:
            self.out[i] = target
            self.since[i] = now
            self.switches[i] = wrap_add(self.switches[i], 1)
            if target:
                cap = self.p.rate_cap[i]
                if cap:
                    if self.ring_len[i] >= cap:  # starts outside the rule still count
                        self.ring_head[i] = (self.ring_head[i] + 1) % cap
                        self.ring_len[i] -= 1
                    self.ring[i * MAX_RATE + (self.ring_head[i] + self.ring_len[i]) % cap] = now
                    self.ring_len[i] += 1
                self.drive[i] = 1
                self.blink_t[i] = now
            self.log.add(EV_OUTPUT, i, target, reason, now, self.stamp)
        self.reason[i] = reason
        self.rule[i] = cause
        if not self.out[i]:
            self.drive[i] = 0
        elif self.p.blink_on_ms[i] and target == cur:
            d = self._age(self.blink_t, i, now)
            if self.drive[i]:
                if d >= self.p.blink_on_ms[i]:
                    self.drive[i] = 0
                    self.blink_t[i] = now
            elif d >= self.p.blink_off_ms[i]:
                self.drive[i] = 1
                self.blink_t[i] = now
        else:
            self.drive[i] = 1

    def _condition(self, i, quiet):
        """The output's condition tree (postfix) -> 0/1; sets self._cause
        (deciding leaf), self._err, self.unknown[i]."""
        p = self.p
        ops = p.op
        vs = self.vstack
        cs = self.cstack
        sp = 0
        err = 0
        unknown = 0
        for k in range(p.start[i], p.end[i]):
            op = ops[k]
            if op == OP_NOT:
                vs[sp - 1] ^= 1
            elif op == OP_ALL or op == OP_ANY:
                base = sp - p.a[k]
                want = 0 if op == OP_ALL else 1
                r = 1 - want
                cause = cs[sp - 1] if op == OP_ALL else cs[base]
                for j in range(base, sp):
                    if vs[j] == want:
                        r = want
                        cause = cs[j]
                        break
                vs[base] = r
                cs[base] = cause
                sp = base + 1
            else:
                r = self._leaf(k, op, quiet)
                if r == _UNKNOWN:
                    unknown = 1
                    u = p.unk[k]
                    if u == UNKNOWN_ERROR:
                        err = 1
                        r = 0
                    else:
                        r = u
                vs[sp] = r
                cs[sp] = p.leaf[k]
                sp += 1
        self.unknown[i] = unknown
        self._err = err
        self._cause = cs[0]
        return vs[0]

    def _leaf(self, k, op, quiet):
        p = self.p
        val = self.val
        known = self.known
        if op == OP_CMP:
            sid = p.a[k]
            if not known[sid]:
                return _UNKNOWN
            v = val[sid]
            fl = p.fl[k]
            if quiet and fl & F_QUIET:
                on_t = p.qb[k]
                off_t = p.qc[k]
            else:
                on_t = p.b[k]
                off_t = p.c[k]
            st = self.hyst[k]
            if fl & F_HIGH:
                if v >= on_t:
                    st = 1
                elif v <= off_t:
                    st = 0
            elif v <= on_t:
                st = 1
            elif v >= off_t:
                st = 0
            self.hyst[k] = st
            return st
        if op == OP_BOOL:
            sid = p.a[k]
            if not known[sid]:
                return _UNKNOWN
            return 1 if (1 if val[sid] else 0) == p.b[k] else 0
        if op == OP_BITS:
            model = self.model
            if model is None or not val[S_HAS_DATA] or model.status.permission < 0:  # old protocol: no flag bytes
                return _UNKNOWN
            st = model.status
            flags = st.protection if p.a[k] == 0 else st.warning
            mask = p.c[k]
            b = p.b[k]
            if b >= 0:
                return 1 if flags[b] & mask else 0
            for b in range(8):
                if flags[b] & mask:
                    return 1
            return 0
        if op == OP_LINK:
            return (p.a[k] >> val[S_LINK]) & 1
        if op == OP_OUTPUT:
            return 1 if self.prev[p.a[k]] == p.b[k] else 0
        if op == OP_TIME:
            if self.minute < 0:
                return _UNKNOWN
            return 1 if in_window(self.minute, p.a[k], p.b[k]) else 0
        if op == OP_FLAG:
            flags = self.flags
            idx = p.a[k]
            if flags is None or idx >= len(flags):
                return _UNKNOWN
            return 1 if flags[idx] else 0
        return _UNKNOWN
