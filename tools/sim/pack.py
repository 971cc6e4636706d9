# Pack dynamics: coulomb counting, cell voltages that follow the state of
# charge (LiFePO4 open-circuit curve, per-cell capacity spread, IR drop),
# probe/MOSFET/balancer temperatures and passive balancing bleed.
#
# All rates use simulated seconds (real seconds x --time-scale).
import random

# (SOC %, open-circuit mV) of an LFP cell; steep ends make a charging pack
# reach the 3650 mV over-voltage limit near 100 % and a discharged one the
# under-voltage limit near 0 %.
_OCV = (
    (0, 2600), (2, 2900), (5, 3000), (10, 3180), (20, 3240), (30, 3270), (40, 3290),
    (50, 3300), (60, 3310), (70, 3325), (80, 3335), (90, 3345), (95, 3360), (98, 3400),
    (100, 3450),
)
_OVERCHARGE_MV_PER_PCT = 150
_UNDERCHARGE_MV_PER_PCT = 100
_CHARGE_LIMIT_PCT = 103.0  # the coulomb counter may run past 100 % until protection stops it
_SPREAD_PCT = 1.2  # cell capacity spread: each cell's SOC differs by up to this
_TEMP_TAU_S = 120.0
AMBIENT_C = 25.0


def ocv_mv(soc):
    if soc >= 100:
        return 3450 + (soc - 100) * _OVERCHARGE_MV_PER_PCT
    if soc <= 0:
        return 2600 + soc * _UNDERCHARGE_MV_PER_PCT
    for i in range(1, len(_OCV)):
        s1, v1 = _OCV[i]
        if soc <= s1:
            s0, v0 = _OCV[i - 1]
            return v0 + (v1 - v0) * (soc - s0) / (s1 - s0)
    return _OCV[-1][1]


class Pack:
    def __init__(self, cells=16, capacity_ah=100.0, soc_pct=70.0, probes=2, seed=0):
        if not 1 <= cells <= 32:
            raise ValueError("cells must be 1..32")
        rng = random.Random("pack-%s" % seed)
        self.cells = cells
        self.capacity_ah = float(capacity_ah)
        self.charge_ah = self.capacity_ah * soc_pct / 100.0
        self.offsets_pct = [rng.uniform(-_SPREAD_PCT, _SPREAD_PCT) for _ in range(cells)]
        # ~1 mOhm per cell at 100 Ah, scaled with capacity, +-20 %
        self.resistance_ohm = [(0.1 / self.capacity_ah) * rng.uniform(0.8, 1.2) for _ in range(cells)]
        self.probes = probes
        self.probe_c = [AMBIENT_C + 0.5 * i for i in range(probes)]
        self.mosfet_c = AMBIENT_C + 1.0
        self.balancer_c = AMBIENT_C
        self.current_a = 0.0  # flowing now, + = charging
        self.pinned_cells = {}  # 0-based index -> mV
        self.pinned_probes = {}  # 0-based index -> C
        self.pinned_mosfet = None
        self.pinned_balancer = None
        self.balancing_mask = 0
        self.cycle_ah = 0.0  # cumulative discharged Ah (the frames' "cycle capacity")
        self.total_charged_ah = 0.0
        self.total_discharged_ah = 0.0
        self.charge_time_s = 0.0
        self.discharge_time_s = 0.0

    # -- state of charge ----------------------------------------------------

    @property
    def soc_exact(self):
        return 100.0 * self.charge_ah / self.capacity_ah

    def soc_pct(self):
        return int(round(min(100.0, max(0.0, self.soc_exact))))

    def remaining_ah(self):
        return min(self.capacity_ah, max(0.0, self.charge_ah))

    def set_soc(self, pct):
        self.charge_ah = self.capacity_ah * float(pct) / 100.0

    # -- voltages and temperatures ------------------------------------------

    def cells_mv(self):
        soc = self.soc_exact
        out = []
        for i in range(self.cells):
            if i in self.pinned_cells:
                out.append(self.pinned_cells[i])
                continue
            v = ocv_mv(soc + self.offsets_pct[i]) + 1000.0 * self.current_a * self.resistance_ohm[i]
            out.append(max(0, min(5000, int(round(v)))))
        return out

    def pack_cv(self, cells_mv=None):
        return sum(cells_mv if cells_mv is not None else self.cells_mv()) // 10

    def probes_c(self):
        return [self.pinned_probes.get(i, int(round(self.probe_c[i]))) for i in range(self.probes)]

    def mosfet_temp_c(self):
        return self.pinned_mosfet if self.pinned_mosfet is not None else int(round(self.mosfet_c))

    def balancer_temp_c(self):
        return self.pinned_balancer if self.pinned_balancer is not None else int(round(self.balancer_c))

    # -- time step --------------------------------------------------------------

    def step(self, dt_s, current_a, balancing_mask, balance_current_ma):
        """Advance dt_s simulated seconds with current_a flowing (+ charging)."""
        self.current_a = current_a
        dah = current_a * dt_s / 3600.0
        self.charge_ah = min(self.capacity_ah * _CHARGE_LIMIT_PCT / 100, max(-0.05 * self.capacity_ah, self.charge_ah + dah))
        if current_a > 0:
            self.total_charged_ah += dah
            self.charge_time_s += dt_s
        elif current_a < 0:
            self.total_discharged_ah -= dah
            self.cycle_ah -= dah
            self.discharge_time_s += dt_s
        self.balancing_mask = balancing_mask
        if balancing_mask:
            bleed_pct = 100.0 * (balance_current_ma / 1000.0) * dt_s / 3600.0 / self.capacity_ah
            for i in range(self.cells):
                if balancing_mask >> i & 1:
                    self.offsets_pct[i] -= bleed_pct
        k = min(1.0, dt_s / _TEMP_TAU_S)
        amps = abs(current_a)
        for i in range(self.probes):
            target = AMBIENT_C + 0.5 * i + 0.02 * amps
            self.probe_c[i] += (target - self.probe_c[i]) * k
        self.mosfet_c += (AMBIENT_C + 1.0 + 0.08 * amps - self.mosfet_c) * k
        self.balancer_c += (AMBIENT_C + (4.0 if balancing_mask else 0.0) - self.balancer_c) * k

    def pick_balancing(self, cells_mv, mode, start_mv, diff_mv):
        """Mask of the cells to bleed: mode 'auto' balances cells above
        start_mv that exceed the lowest by diff_mv; 'on' (manual) balances
        every cell above the average; 'off' none."""
        if mode == "off" or not cells_mv:
            return 0
        lo = min(cells_mv)
        mask = 0
        if mode == "on":
            avg = sum(cells_mv) / len(cells_mv)
            for i, v in enumerate(cells_mv):
                if v > avg and v - lo >= 1:
                    mask |= 1 << i
            return mask
        for i, v in enumerate(cells_mv):
            if v >= start_mv and v - lo >= diff_mv:
                mask |= 1 << i
        return mask
