# One BMS command as a transaction: password first where configured, the
# frame, its acknowledgement (NEW ACK / OLD echo), then the next status frames
# showing the new state. Bounded retries; a toggle is never sent twice blind.
#
# The link engine owns the bus and decides *when* a transaction may transmit
# (a quiet bus between polls, or a gap in a display's traffic); this module
# decides *what* to send and what counts as success. Commands are rare, so
# this code may allocate.
from ant import codes, commands, new, old
from ant.status import PROTOCOL_NEW, PROTOCOL_OLD

PENDING = 0
RUNNING = 1
DONE = 2  # succeeded
FAILED = 3
STATE_NAMES = ("pending", "running", "done", "failed")

# Steps of a running transaction.
STEP_AUTH = 0
STEP_SEND = 1
STEP_VERIFY = 2

# How the next status frames confirm a command (None: the ACK/echo is all
# there is to check, e.g. the buzzer has no status field).
_MOS_MANUAL_OFF = 15


def _charge_on(st):
    return st.charge_mos != 0 and st.charge_mos != _MOS_MANUAL_OFF


def _charge_off(st):
    return st.charge_mos != 1


def _discharge_on(st):
    return st.discharge_mos != 0 and st.discharge_mos != _MOS_MANUAL_OFF


def _discharge_off(st):
    return st.discharge_mos != 1


def _balancer_off(st):
    return not codes.balancer_on(st.balancer)


CONFIRM = {
    "charge-on": _charge_on,
    "charge-off": _charge_off,
    "discharge-on": _discharge_on,
    "discharge-off": _discharge_off,
    "balancer-off": _balancer_off,
}


def note_after(name, st):
    """What the confirming status says beyond success (a FET held off by a
    protection, a balancer that accepted but idles)."""
    if name == "charge-on" and st.charge_mos != 1:
        return "charge MOSFET held off: " + codes.charge_text(st.charge_mos)
    if name == "discharge-on" and st.discharge_mos != 1:
        return "discharge MOSFET held off: " + codes.discharge_text(st.discharge_mos)
    if name == "balancer-on" and not codes.balancer_on(st.balancer):
        return "accepted; the balancer idles (" + codes.balancer_text(st.balancer) + ")"
    return ""


class Command:
    """A request from a face (HTTP, MQTT, BLE, CLI). The engine fills in
    `state`, `reason` and `note`; `done_cb(command)` is called at the end."""

    def __init__(self, name, done_cb=None):
        if name not in commands.CONTROLS:
            raise ValueError("unknown command: " + name)
        self.name = name
        self.done_cb = done_cb
        self.state = PENDING
        self.reason = ""  # why it failed
        self.note = ""  # what the status said after success
        self.attempts = 0
        self.submitted_ms = 0
        self.finished_ms = 0
        self.code = 255  # the control service's command code (event log), 255 = unknown
        self.who = 0  # who asked (eventlog.WHO_*)

    def finished(self):
        return self.state >= DONE

    def describe(self):
        return {
            "command": self.name,
            "state": STATE_NAMES[self.state],
            "ok": self.state == DONE,
            "reason": self.reason or None,
            "note": self.note or None,
            "attempts": self.attempts,
        }


class Transaction:
    """The protocol side of one command in flight."""

    def __init__(self, command, protocol, password, balance_known):
        self.command = command
        self.protocol = protocol
        self.password = password
        self.name = command.name
        self.step = STEP_AUTH if password else STEP_SEND
        self.awaiting = False  # a frame went out and its reply is due
        self.acked = False
        self.verify_frames = 0
        self.auth_replies = 0
        self.rejected = False
        self.no_ack = False
        # OLD has only a balancer toggle; map on/off onto it using what the
        # last toggle echo said (-1 = unknown).
        self.toggle_target = -1
        if protocol == PROTOCOL_OLD and self.name in ("balancer-on", "balancer-off"):
            self.toggle_target = 1 if self.name == "balancer-on" else 0
            self.frame = commands.control("balancer-toggle", PROTOCOL_OLD)
            self.already = balance_known == self.toggle_target
        else:
            self.frame = commands.control(self.name, protocol)
            self.already = False
        self.no_ack = protocol == PROTOCOL_NEW and self.name in commands.NO_ACK
        self.auth_frame = commands.password(protocol, password) if password else None
        self.register = self.frame[2] if protocol == PROTOCOL_OLD else self.frame[3]
        self.new_balance_state = -1

    def next_frame(self):
        """What to transmit for the current step (None: nothing to send)."""
        if self.step == STEP_AUTH:
            return self.auth_frame
        if self.step == STEP_SEND:
            return self.frame
        return None

    def restart(self):
        self.step = STEP_AUTH if self.password else STEP_SEND
        self.awaiting = False
        self.acked = False
        self.verify_frames = 0
        self.auth_replies = 0
        self.rejected = False

    # -- replies -------------------------------------------------------------
    # Each returns None (not for us / keep waiting), True (step done) or a
    # failure reason string.

    def on_short(self, b, o):
        """An OLD 6-byte frame arrived."""
        if self.protocol != PROTOCOL_OLD or not self.awaiting:
            return None
        reg = b[o + 2]
        value = (b[o + 3] << 8) | b[o + 4]
        if b[o] != old.HEAD_WRITE:
            return None
        if self.step == STEP_AUTH:
            self.auth_replies += 1
            last = self.auth_frame
            if last is not None and reg == last[20] and value == (last[21] << 8 | last[22]):
                return True  # the last password word was echoed: accepted
            if reg == old.REG_REJECTED and self.auth_replies >= 4:
                return "wrong password (the BMS rejected it)"
            return None
        if self.step == STEP_SEND:
            if reg == old.REG_REJECTED and value == 1:
                self.rejected = True
                if self.password:
                    return "rejected by the BMS although the password was accepted"
                return "the BMS requires a password (write rejected)"
            if reg == self.register:
                if self.toggle_target >= 0:
                    self.new_balance_state = value & 1
                self.acked = True
                return True
        return None

    def on_new(self, b, o):
        """A NEW frame (not a status) arrived."""
        if self.protocol != PROTOCOL_NEW or not self.awaiting:
            return None
        func = b[o + 2]
        if self.step == STEP_AUTH and func == new.REPLY_PASSWORD:
            level = b[o + 6] | (b[o + 7] << 8)
            if level == 0:
                return "wrong password (granted level 0)"
            return True
        if self.step == STEP_SEND and func == new.REPLY_CONTROL and b[o + 3] == self.register:
            result = b[o + 6] | (b[o + 7] << 8)
            if result == 1:
                self.acked = True
                return True
            if result == 3:
                return "no permission: the BMS wants a (higher-level) password"
            return "the BMS answered: " + codes.control_result_text(result)
        return None

    def confirm(self, st):
        """A status frame arrived during STEP_VERIFY: True when it shows the
        commanded state."""
        check = CONFIRM.get(self.name)
        if check is None:
            return True
        return check(st)

    def needs_status(self):
        if self.no_ack:
            return False
        if self.toggle_target >= 0:
            return False  # the echo carries the new toggle state
        return self.name in CONFIRM
