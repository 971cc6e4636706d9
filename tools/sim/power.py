# Power and wake model of the BMS's TTL side (reference §6.1 leaves it open;
# this is the model the bridge firmware is written against):
#   - the TTL side is powered only while both hold: the bridge's isolated
#     supply is on (`supply`, which the host runtime forwards from the
#     bridge's supply_enable pin) and the VCC wire carries it (`vcc`, a fault
#     the user forces: a cut wire, a dead converter; it stays until cleared,
#     whatever the bridge does with its supply). Unpowered, nothing is sent
#     or heard.
#   - sleep: after idle_sleep_s real seconds with |I| < 0.5 A and ACC low the
#     BMS stops answering; a rising ACC edge or a charging current wakes it.
#   - deep sleep (shutdown control, `deepsleep`): only a rising ACC edge wakes.
#   - reboot: silent for reboot_s, then answers again.
AWAKE = "awake"
SLEEP = "sleep"
DEEP = "deep"
_IDLE_A = 0.5


class Power:
    def __init__(self, idle_sleep_s=0.0, reboot_s=3.0, acc=0, vcc=1, supply=1):
        self.vcc = vcc
        self.supply = supply
        self.acc = acc
        self.state = AWAKE
        self.idle_sleep_s = float(idle_sleep_s)
        self.reboot_s = float(reboot_s)
        self.reboot_until = None
        self.boot_time = None  # set by the device on the first update
        self._idle_since = None
        self.wakes = 0
        self.sleeps = 0

    def powered(self):
        """The TTL side has its 3.3 V."""
        return bool(self.vcc) and bool(self.supply)

    def answers(self, now):
        return self.powered() and self.state == AWAKE and not self.rebooting(now)

    def rebooting(self, now):
        if self.reboot_until is not None and now >= self.reboot_until:
            self.reboot_until = None
        return self.reboot_until is not None

    def reboot(self, now):
        self.reboot_until = now + self.reboot_s
        self.boot_time = now
        self._idle_since = None

    def set_acc(self, level, now):
        level = 1 if level else 0
        if level and not self.acc:
            self.wake(now)
        self.acc = level

    def set_vcc(self, level):
        self.vcc = 1 if level else 0

    def set_supply(self, level):
        self.supply = 1 if level else 0

    def wake(self, now):
        if self.state != AWAKE:
            self.wakes += 1
        self.state = AWAKE
        self._idle_since = None

    def sleep(self, deep=False):
        if self.state == AWAKE:
            self.sleeps += 1
        self.state = DEEP if deep else SLEEP
        self._idle_since = None

    def update(self, now, current_a):
        if self.state == SLEEP and current_a > _IDLE_A:
            self.wake(now)
            return
        if self.state != AWAKE:
            return
        if self.idle_sleep_s > 0 and abs(current_a) < _IDLE_A and not self.acc:
            if self._idle_since is None:
                self._idle_since = now
            elif now - self._idle_since >= self.idle_sleep_s:
                self.sleep()
        else:
            self._idle_since = None
