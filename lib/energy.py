# Energy and charge counters, power and time-to-empty/full estimates.
#
#   energy = Energy(config)               # once; config dict or None
#   energy.update(now_ms, model)          # on every model change (cheap)
#   if energy.save_due(now_ms):           # at most every save_every_min
#       write(energy.to_dict()); energy.mark_saved(now_ms)
#
# update() integrates V*I between consecutive FRESH status frames (model.link
# == LINK_OK, a new model.fresh_ms). It is idempotent: calling it again for
# the same frame adds nothing, and any non-OK link state drops the anchor, so
# the gap across a stale or lost link is never integrated (nor is any gap
# longer than max_gap_ms).
#
# Integration rule: trapezoid, split per sample. Each frame's power counts
# for half the interval before it and half the interval after it, into the
# charged or discharged counter by its own sign. When both ends of an interval
# have the same sign this is exactly the trapezoid rule; across a sign change
# the net energy is still the trapezoid's, and each direction gets the half
# interval nearest to its own sample (no division by a zero-crossing time,
# which would overflow the small-int range).
#
# Fixed point, never an int >= 2**30 (the ESP32's small-int limit, so no
# allocation): energy is whole Wh + mJ remainder (0..3_599_999) + µJ
# remainder, charge is whole Ah + mAs remainder (0..3_599_999) + 0.1 mAs
# remainder; pack voltage and current are clamped to +-200 V / +-2000 A.
from array import array

try:
    from micropython import const
except ImportError:  # CPython
    def const(__value):  # positional-only, like the stub
        return __value

import schema
from link.model import LINK_OK
from ticks import ticks_diff, wrap_add

_MJ_PER_WH = const(3600000)
_MAS_PER_AH = const(3600000)
_MAX_CV = const(20000)  # 200 V in 0.01 V
_MAX_DA = const(20000)  # 2000 A in 0.1 A
_EMA_SCALE = const(16)  # smoothed current in 1/16 of 0.1 A (1/160 A)
_EMA_SHIFT = const(10)  # smoothing factor in 1/1024
_MAX_MOVED = const(400000000)  # cap of the "changed since save" counters
_MAX_TIME_S = const(31622400)  # 366 days: estimates beyond are clamped
# seconds = mAh * 3.6 / A, with the current in 1/160 A: mAh * 576 / ema
_S_PER_MAH_EMA = const(576)

# Counter slots in Energy.counters (array "i").
_IN_WH = const(0)  # charged energy
_IN_MJ = const(1)
_IN_UJ = const(2)
_OUT_WH = const(3)  # discharged energy
_OUT_MJ = const(4)
_OUT_UJ = const(5)
_IN_AH = const(6)  # charged charge
_IN_MAS = const(7)
_IN_SUB = const(8)  # 0.1 mAs
_OUT_AH = const(9)
_OUT_MAS = const(10)
_OUT_SUB = const(11)
_SLOTS = const(12)

_KEYS = (
    "version",
    "charged_wh",
    "charged_mj",
    "discharged_wh",
    "discharged_mj",
    "charged_ah",
    "charged_mas",
    "discharged_ah",
    "discharged_mas",
)


class EnergyConfig:
    """Validated settings (schema.ConfigError on a bad field)."""

    def __init__(self, d=None, path="energy"):
        d = schema.obj({} if d is None else d, path, _CONFIG_KEYS)
        self.max_gap_ms = schema.integer(d, "max_gap_ms", path, 10000, 100, 120000)
        self.save_every_min = schema.integer(d, "save_every_min", path, 10, 1, 1440)
        self.save_min_wh = schema.number(d, "save_min_wh", path, 1.0, 0.0, 100.0)
        self.save_min_ah = schema.number(d, "save_min_ah", path, 0.1, 0.0, 100.0)
        self.smoothing_s = schema.integer(d, "smoothing_s", path, 60, 1, 3600)
        self.idle_current_a = schema.number(d, "idle_current_a", path, 0.5, 0.0, 100.0)
        self.mismatch_tolerance_w = schema.integer(d, "mismatch_tolerance_w", path, 20, 0, 100000)
        self.mismatch_tolerance_pct = schema.integer(d, "mismatch_tolerance_pct", path, 10, 0, 1000)
        self.mismatch_frames = schema.integer(d, "mismatch_frames", path, 5, 1, 1000)


_CONFIG_KEYS = (
    "max_gap_ms",
    "save_every_min",
    "save_min_wh",
    "save_min_ah",
    "smoothing_s",
    "idle_current_a",
    "mismatch_tolerance_w",
    "mismatch_tolerance_pct",
    "mismatch_frames",
)


def _seconds(mah, ema_abs):
    """mAh at a current of ema_abs (1/160 A) in s, clamped, no big ints."""
    q = mah // ema_abs
    if q >= _MAX_TIME_S // _S_PER_MAH_EMA:
        return _MAX_TIME_S
    r = mah - q * ema_abs
    return q * _S_PER_MAH_EMA + (r * _S_PER_MAH_EMA) // ema_abs


class Energy:
    def __init__(self, config=None):
        self.counters = array("i", [0] * _SLOTS)
        self.configure(config)
        # Live values (the rules engine and the faces read these).
        self.time_to_empty_s = -1
        self.time_to_full_s = -1
        self.charge_power_w = 0
        self.discharge_power_w = 0
        self.computed_power_w = 0  # V*I in W, + = charging
        self.bms_power_w = 0  # the BMS's own power field, for comparison
        self.power_mismatch = False
        self.current_avg_da = 0  # smoothed current, 0.1 A, + = charging
        self.frames = 0  # frames seen (wraps at 2**30)
        self.gaps = 0  # intervals not integrated (stale link or too long)
        self._have_last = False
        self._last_ms = 0
        self._last_mw = 0
        self._last_da = 0
        self._ema = 0  # 1/160 A
        self._ema_rem = 0
        self._mismatch_run = 0
        self._match_run = 0
        self._moved_mj = 0  # energy moved since the last save (capped)
        self._moved_mas = 0
        self._saved_ms = 0
        self._save_started = False
        self._save_eligible = False

    def configure(self, config):
        """Apply a config dict (or an EnergyConfig); validates first."""
        c = config if isinstance(config, EnergyConfig) else EnergyConfig(config)
        self.config = c
        self._tau_ms = c.smoothing_s * 1000
        self._idle_ema = int(c.idle_current_a * 10 * _EMA_SCALE + 0.5)
        self._min_mj = int(c.save_min_wh * _MJ_PER_WH + 0.5)
        self._min_mas = int(c.save_min_ah * _MAS_PER_AH + 0.5)
        self._save_every_ms = c.save_every_min * 60000
        return self

    # -- the hot path --------------------------------------------------------

    def update(self, now_ms, model):
        """Take the model's status if it is a new fresh frame; otherwise
        (link not OK) drop the anchor and blank the estimates."""
        if model.link != LINK_OK or not model.has_data:
            self._invalidate()
            return
        t = model.fresh_ms
        if self._have_last and t == self._last_ms:
            return  # same frame as last time
        st = model.status
        cv = st.pack_cv
        cv = 0 if cv < 0 else (_MAX_CV if cv > _MAX_CV else cv)
        da = st.current_da
        da = -_MAX_DA if da < -_MAX_DA else (_MAX_DA if da > _MAX_DA else da)
        mw = cv * da  # 0.01 V * 0.1 A = 1 mW; |mw| <= 4e8
        self.frames = wrap_add(self.frames, 1)
        if self._have_last:
            dt = ticks_diff(t, self._last_ms)
            if 0 < dt <= self.config.max_gap_ms:
                half = dt // 2
                self._add(self._last_mw, self._last_da, half)
                self._add(mw, da, dt - half)
                self._smooth(da, dt)
            else:
                self.gaps = wrap_add(self.gaps, 1)
                self._restart_smoothing(da)
        else:
            self._restart_smoothing(da)
        self._have_last = True
        self._last_ms = t
        self._last_mw = mw
        self._last_da = da
        # Powers in W, truncated toward zero.
        w = mw // 1000 if mw >= 0 else -((-mw) // 1000)
        self.computed_power_w = w
        self.charge_power_w = w if w > 0 else 0
        self.discharge_power_w = -w if w < 0 else 0
        self.bms_power_w = st.power_w
        self._check_power(st.power_w, w)
        self._estimate(st)
        if not self._save_started:
            self._save_started = True
            self._saved_ms = now_ms

    def _invalidate(self):
        if self._have_last:
            self.gaps = wrap_add(self.gaps, 1)
        self._have_last = False
        self.time_to_empty_s = -1
        self.time_to_full_s = -1
        self.charge_power_w = 0
        self.discharge_power_w = 0
        self.computed_power_w = 0

    def _add(self, mw, da, dt):
        """Integrate mw (mW) and da (0.1 A) over dt ms into the counters of
        their sign."""
        c = self.counters
        if mw > 0:
            self._moved_mj = _add_energy(c, _IN_WH, mw, dt, self._moved_mj)
        elif mw < 0:
            self._moved_mj = _add_energy(c, _OUT_WH, -mw, dt, self._moved_mj)
        if da > 0:
            self._moved_mas = _add_charge(c, _IN_AH, da, dt, self._moved_mas)
        elif da < 0:
            self._moved_mas = _add_charge(c, _OUT_AH, -da, dt, self._moved_mas)

    def _restart_smoothing(self, da):
        self._ema = da * _EMA_SCALE
        self._ema_rem = 0
        self.current_avg_da = da

    def _smooth(self, da, dt):
        # ema += (x - ema) * dt / tau, with the rounding remainder carried so
        # a constant input converges exactly (no dead band).
        tau = self._tau_ms
        alpha = (dt << _EMA_SHIFT) // tau if dt < tau else (1 << _EMA_SHIFT)
        acc = (da * _EMA_SCALE - self._ema) * alpha + self._ema_rem
        step = acc >> _EMA_SHIFT
        self._ema_rem = acc - (step << _EMA_SHIFT)
        self._ema += step
        e = self._ema
        self.current_avg_da = e // _EMA_SCALE if e >= 0 else -((-e) // _EMA_SCALE)

    def _check_power(self, bms_w, w):
        c = self.config
        diff = bms_w - w
        if diff < 0:
            diff = -diff
        aw = w if w >= 0 else -w
        tol = aw * c.mismatch_tolerance_pct // 100
        if tol < c.mismatch_tolerance_w:
            tol = c.mismatch_tolerance_w
        n = c.mismatch_frames
        if diff > tol:
            self._match_run = 0
            if self._mismatch_run < n:
                self._mismatch_run += 1
            if self._mismatch_run >= n:
                self.power_mismatch = True
        else:
            self._mismatch_run = 0
            if self._match_run < n:
                self._match_run += 1
            if self._match_run >= n:
                self.power_mismatch = False

    def _estimate(self, st):
        self.time_to_empty_s = -1
        self.time_to_full_s = -1
        cap = st.capacity_mah
        if cap <= 0:
            return  # no capacity data
        e = self._ema
        thr = self._idle_ema
        if thr < 1:
            thr = 1
        rem = st.remaining_mah
        if rem < 0:
            rem = 0
        # The smoothed current decays slowly after the pack stops: an
        # estimate also needs the present current beyond the idle threshold,
        # in the same direction (nothing charges, nothing to estimate).
        now = st.current_da * _EMA_SCALE
        if -thr < now < thr:
            return
        if e <= -thr and now < 0:
            self.time_to_empty_s = _seconds(rem, -e)
        elif e >= thr and now > 0:
            missing = cap - rem
            self.time_to_full_s = _seconds(missing if missing > 0 else 0, e)

    # -- persistence ---------------------------------------------------------

    def save_due(self, now_ms):
        """True when the counters should be written: the save interval has
        passed since the last save AND they moved by the minimum amount."""
        if not self._save_started:
            self._save_started = True
            self._saved_ms = now_ms
            return False
        if not self._save_eligible and ticks_diff(now_ms, self._saved_ms) >= self._save_every_ms:
            self._save_eligible = True  # sticky: survives a ticks wrap
        if not self._save_eligible:
            return False
        return self._moved_mj >= self._min_mj and self._moved_mj > 0 or (
            self._moved_mas >= self._min_mas and self._moved_mas > 0
        )

    def mark_saved(self, now_ms):
        self._saved_ms = now_ms
        self._save_started = True
        self._save_eligible = False
        self._moved_mj = 0
        self._moved_mas = 0

    def to_dict(self):
        c = self.counters
        return {
            "version": 1,
            "charged_wh": c[_IN_WH],
            "charged_mj": c[_IN_MJ],
            "discharged_wh": c[_OUT_WH],
            "discharged_mj": c[_OUT_MJ],
            "charged_ah": c[_IN_AH],
            "charged_mas": c[_IN_MAS],
            "discharged_ah": c[_OUT_AH],
            "discharged_mas": c[_OUT_MAS],
        }

    def from_dict(self, d, path="energy_counters"):
        """Restore counters saved by to_dict(); validates everything before
        changing anything (schema.ConfigError)."""
        schema.obj(d, path, _KEYS)
        schema.integer(d, "version", path, 1, 1, 1)
        v = []
        for key in _KEYS[1:]:
            hi = 0x3FFFFFFF if key[-3:] in ("_wh", "_ah") else _MJ_PER_WH - 1
            v.append(schema.integer(d, key, path, 0, 0, hi))
        c = self.counters
        for i in range(_SLOTS):
            c[i] = 0
        c[_IN_WH], c[_IN_MJ], c[_OUT_WH], c[_OUT_MJ] = v[0], v[1], v[2], v[3]
        c[_IN_AH], c[_IN_MAS], c[_OUT_AH], c[_OUT_MAS] = v[4], v[5], v[6], v[7]
        return self

    def reset(self):
        """Zero the counters (the API's "reset energy")."""
        c = self.counters
        for i in range(_SLOTS):
            c[i] = 0
        self._moved_mj = _MAX_MOVED  # make the zeroing persist at the next save
        self._moved_mas = _MAX_MOVED

    # -- faces (allocate) ----------------------------------------------------

    @property
    def charged_wh(self):
        return self.counters[_IN_WH]

    @property
    def charged_mj(self):
        return self.counters[_IN_MJ]

    @property
    def discharged_wh(self):
        return self.counters[_OUT_WH]

    @property
    def discharged_mj(self):
        return self.counters[_OUT_MJ]

    @property
    def charged_ah(self):
        return self.counters[_IN_AH]

    @property
    def charged_mas(self):
        return self.counters[_IN_MAS]

    @property
    def discharged_ah(self):
        return self.counters[_OUT_AH]

    @property
    def discharged_mas(self):
        return self.counters[_OUT_MAS]

    def charged_kwh(self):
        c = self.counters
        return (c[_IN_WH] + (c[_IN_MJ] + c[_IN_UJ] / 1000) / _MJ_PER_WH) / 1000

    def discharged_kwh(self):
        c = self.counters
        return (c[_OUT_WH] + (c[_OUT_MJ] + c[_OUT_UJ] / 1000) / _MJ_PER_WH) / 1000

    def charged_ah_total(self):
        c = self.counters
        return c[_IN_AH] + (c[_IN_MAS] + c[_IN_SUB] / 10) / _MAS_PER_AH

    def discharged_ah_total(self):
        c = self.counters
        return c[_OUT_AH] + (c[_OUT_MAS] + c[_OUT_SUB] / 10) / _MAS_PER_AH

    def describe(self):
        """Dict for the API and Home Assistant's energy dashboard (kWh as
        total_increasing sensors)."""
        tte = self.time_to_empty_s
        ttf = self.time_to_full_s
        return {
            "charged_kwh": round(self.charged_kwh(), 4),
            "discharged_kwh": round(self.discharged_kwh(), 4),
            "charged_ah": round(self.charged_ah_total(), 3),
            "discharged_ah": round(self.discharged_ah_total(), 3),
            "charge_power_w": self.charge_power_w,
            "discharge_power_w": self.discharge_power_w,
            "computed_power_w": self.computed_power_w,
            "bms_power_w": self.bms_power_w,
            "power_mismatch": self.power_mismatch,
            "current_avg_a": self.current_avg_da / 10,
            "time_to_empty_s": tte,
            "time_to_full_s": ttf,
            "time_to_empty_h": None if tte < 0 else round(tte / 3600, 2),
            "time_to_full_h": None if ttf < 0 else round(ttf / 3600, 2),
        }


def _add_energy(c, base, mw, dt, moved):
    """Add mw (mW, > 0) over dt ms to c[base..base+2] (Wh, mJ, µJ)."""
    pw = mw // 1000  # W
    pr = mw - pw * 1000  # mW remainder
    s = dt // 1000
    m = dt - s * 1000
    j = pw * s  # J      (<= 4e5 * 120)
    mj = pw * m + pr * s  # mJ   (<= 4e8)
    uj = c[base + 2] + pr * m  # µJ  (< 1e6 + 1000)
    k = uj // 1000
    c[base + 2] = uj - k * 1000
    wh_j = j // 3600
    mj += k + (j - wh_j * 3600) * 1000 + c[base + 1]
    wh = mj // _MJ_PER_WH
    c[base + 1] = mj - wh * _MJ_PER_WH
    c[base] += wh_j + wh
    inc = (j if j < 100000 else 100000) * 1000 + pw * m + pr * s  # < 5e8
    moved += inc
    return moved if moved < _MAX_MOVED else _MAX_MOVED


def _add_charge(c, base, da, dt, moved):
    """Add da (0.1 A, > 0) over dt ms to c[base..base+2] (Ah, mAs, 0.1 mAs)."""
    a = da // 10
    r = da - a * 10
    mas = a * dt  # A * ms = mAs        (<= 2000 * 120000)
    sub = c[base + 2] + r * dt  # 0.1 mAs
    k = sub // 10
    c[base + 2] = sub - k * 10
    mas += k + c[base + 1]
    ah = mas // _MAS_PER_AH
    c[base + 1] = mas - ah * _MAS_PER_AH
    c[base] += ah
    moved += a * dt + k
    return moved if moved < _MAX_MOVED else _MAX_MOVED
