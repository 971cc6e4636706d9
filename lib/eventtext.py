# The sentence for an event log entry (lib/eventlog.py): the one place that
# knows what each kind's small-int arguments mean. A face: it allocates.
from acc import STATE_NAMES as ACC_STATES
from acc import SUPPLY_REASONS
from ant import alarms
from eventlog import (
    EV_ACC,
    EV_ALARM,
    EV_BMS_ALARM,
    EV_BOOT,
    EV_COMMAND,
    EV_CONFIG,
    EV_CONTROL,
    EV_LINK,
    EV_OUTPUT,
    EV_SUPPLY,
    EV_TASK,
    EV_WIFI,
    WHO_NAMES,
)
from link.model import LINE_NAMES, LINK_NAMES
from rules.reasons import name as reason_name

# Reset causes (EV_BOOT a), as the hardware layer reports them.
RESET_NAMES = ("unknown", "power-on", "hard reset", "watchdog", "deep-sleep wake", "soft reset",
               "brown-out", "firmware crash")
# Command results (EV_COMMAND b): link.command states, plus refused.
CMD_DONE = 2
CMD_FAILED = 3
CMD_REFUSED = 4
_CMD_RESULTS = ("pending", "running", "done", "failed", "refused")
# EV_ALARM codes.
ALARM_SENSE = 1  # c = output index
# EV_TASK: what happened.
TASK_CRASHED = 0
TASK_HUNG = 1
TASK_NAMES = ("link", "outputs", "acc", "http", "persist", "wifi", "mqtt", "ble")
# EV_CONTROL actions (an output override, a flag, a manual ACC wake, ...).
CTL_OUTPUT_ON = 0
CTL_OUTPUT_OFF = 1
CTL_OUTPUT_AUTO = 2
CTL_OUTPUT_RELEASE = 3
CTL_OUTPUT_RESET = 4
CTL_OUTPUT_MODE_OFF = 5
CTL_OUTPUT_MODE_ON = 6
CTL_FLAG_ON = 7
CTL_FLAG_OFF = 8
CTL_ACC_WAKE = 9
CTL_REBOOT = 10
_CTL_TEXT = ("override on", "override off", "back to auto", "override released", "latch reset",
             "mode off", "mode on", "flag set", "flag cleared", "ACC wake", "bridge reboot")
CONFIG_SETTINGS = 0
CONFIG_STATE = 1
# EV_WIFI: a = lib/wifistate.py state, b = its reason (R_*), c = the WLAN
# status code (set-up mode: b = why set-up started, c = the last failure).
WIFI_NAMES = ("off", "connecting", "up", "down", "set-up mode", "joining")
WIFI_REASONS = (None, "no network configured", "wrong password", "network not found",
                "no IP address (DHCP)", "no answer", "connection lost", "failed", "radio error",
                "BOOT button held", "the network failed too long")
_WIFI_SETUP = 4


def _name(names, i):
    return names[i] if 0 <= i < len(names) else str(i)


def _output(names, i):
    label = "DO" + str(i + 1)
    if 0 <= i < len(names) and names[i] != "do" + str(i + 1):
        label += " " + names[i]
    return label


def text(kind, a, b, c, outputs=(), commands=()):
    """The entry as a sentence. `outputs`: the output names (DO1-DO3);
    `commands`: command names by code."""
    if kind == EV_BOOT:
        s = "bridge started (" + _name(RESET_NAMES, a) + ")"
        if b:
            s += " in SAFE MODE after " + str(c) + " crashed boots: outputs at their fail-safe state, link off"
        elif c:
            s += " after " + str(c) + " crashed boot" + ("s" if c > 1 else "")
        return s
    if kind == EV_LINK:
        s = "BMS link " + _name(LINK_NAMES, b) + " -> " + _name(LINK_NAMES, a)
        if a != 0 and 0 < c < len(LINE_NAMES):
            s += " (line " + LINE_NAMES[c] + ")"
        return s
    if kind == EV_OUTPUT:
        why = "boot state" if c == 0 else reason_name(c)
        return _output(outputs, a) + (" on (" if b else " off (") + why + ")"
    if kind == EV_COMMAND:
        s = "BMS command " + _name(commands, a) if commands else "BMS command " + str(a)
        return s + " from " + _name(WHO_NAMES, c) + ": " + _name(_CMD_RESULTS, b)
    if kind == EV_CONTROL:
        what = _name(_CTL_TEXT, a)
        if a <= CTL_OUTPUT_MODE_ON:
            what = _output(outputs, b) + " " + what
        elif a <= CTL_FLAG_OFF:
            what = what + " " + str(b)
        return what + " (from " + _name(WHO_NAMES, c) + ")"
    if kind == EV_ACC:
        s = "ACC " + _name(ACC_STATES, a)
        if b:
            s += ", " + str(b) + " failed wake" + ("s" if b > 1 else "")
        return s + (" (ACC high)" if c else "")
    if kind == EV_SUPPLY:
        return "TTL supply " + ("on" if a else "off") + " (" + _name(SUPPLY_REASONS, b) + ")"
    if kind == EV_ALARM:
        if a == ALARM_SENSE:
            if b:
                return _output(outputs, c) + ": the sense input disagrees with the output (relay stuck?)"
            return _output(outputs, c) + ": the sense input agrees again"
        return "alarm " + str(a) + (" raised" if b else " cleared")
    if kind == EV_BMS_ALARM:
        return "BMS " + alarms.name(a) + (" active" if b else " cleared")
    if kind == EV_CONFIG:
        what = "state.json" if b == CONFIG_STATE else "settings"
        return what + (" applied" if a else " rejected (see /api/health)")
    if kind == EV_TASK:
        s = "task " + _name(TASK_NAMES, a) + (" hung" if b == TASK_HUNG else " crashed")
        return s + "; restarted (" + str(c) + " so far)"
    if kind == EV_WIFI:
        s = "Wi-Fi " + _name(WIFI_NAMES, a)
        why = _name(WIFI_REASONS, b) if b else None
        if a == _WIFI_SETUP:
            if why:
                s += " (" + why + (", last: " + _name(WIFI_REASONS, c) if c else "") + ")"
        elif why:
            s += ": " + why + (" (status " + str(c) + ")" if c else "")
        return s
    return "event " + str(kind)
