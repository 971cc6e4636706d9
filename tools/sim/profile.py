# The current the load or charger asks for (+ = charging), before the BMS's
# MOSFETs decide whether it can flow.
import random

PROFILES = ("idle", "charge", "discharge", "cycle", "random")


class CurrentProfile:
    def __init__(self, capacity_ah, name="idle", seed=0):
        if name not in PROFILES:
            raise ValueError("profile must be one of " + ", ".join(PROFILES))
        self.capacity_ah = capacity_ah
        self.name = name
        self.constant_a = None  # set: a fixed current, the profile is paused
        self._rng = random.Random("profile-%s" % seed)
        self._cycle_charging = True
        self._random_a = 0.0
        self._random_left_s = 0.0

    def set_constant(self, amps):
        self.constant_a = float(amps)

    def resume(self, name):
        if name not in PROFILES:
            raise ValueError("profile must be one of " + ", ".join(PROFILES))
        self.name = name
        self.constant_a = None

    def demand(self, dt_s, soc_pct, charge_blocked, discharge_blocked):
        """Current asked for during the next dt_s (simulated seconds)."""
        if self.constant_a is not None:
            return self.constant_a
        c = self.capacity_ah
        name = self.name
        if name == "charge":
            return 0.2 * c
        if name == "discharge":
            return -0.2 * c
        if name == "cycle":
            # Charge until full (or the BMS stops it), then discharge until low.
            if self._cycle_charging and (soc_pct >= 99 or charge_blocked):
                self._cycle_charging = False
            elif not self._cycle_charging and (soc_pct <= 20 or discharge_blocked):
                self._cycle_charging = True
            return 0.3 * c if self._cycle_charging else -0.3 * c
        if name == "random":
            self._random_left_s -= dt_s
            if self._random_left_s <= 0:
                self._random_left_s = self._rng.uniform(5.0, 30.0)
                if self._rng.random() < 0.25:
                    self._random_a = 0.0
                else:
                    self._random_a = round(self._rng.uniform(-0.5 * c, 0.3 * c), 1)
            return self._random_a
        return 0.0
