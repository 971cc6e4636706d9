# mp-heap: 192K
# The control service (lib/control.py): the token gate, the allow-list of
# BMS commands (dangerous ones need an opt-in and a "confirm" naming them),
# validation of every action, a shutdown that is honoured, and the event log
# naming the command and who asked. Runs under CPython and MicroPython.
import asyncio

import control as ctl
from control import COMMAND_NAMES, SAFE_COMMANDS, Control, ControlError, token_matches
from eventlog import EV_COMMAND, EV_CONTROL, WHO_HTTP, WHO_MQTT, EventLog
from eventtext import CMD_REFUSED, CTL_FLAG_ON, CTL_OUTPUT_OFF, text

TOKEN = "s3cret-token-0123456789"


class Clock:
    def ticks_ms(self):
        return 5000


class FakeLink:
    """Finishes every submitted command at once, as the link engine does
    when the BMS acknowledges it, and logs it as the engine does."""

    def __init__(self, log, ok=True):
        self.log = log
        self.ok = ok
        self.submitted = []

    def submit(self, cmd, now_ms):
        self.submitted.append(cmd.name)
        cmd.state = 2 if self.ok else 3
        cmd.reason = "" if self.ok else "no acknowledgement after 3 attempts"
        cmd.attempts = 1
        self.log.add(EV_COMMAND, cmd.code, cmd.state, cmd.who, now_ms)
        cmd.done_cb(cmd)


class FakeRelays:
    safe_mode = False
    count = 3
    names = ("charger", "do2", "alarm")

    def __init__(self):
        self.actions = []

    def index(self, ref):
        if isinstance(ref, int) and not isinstance(ref, bool) and 0 <= ref < 3:
            return ref
        if isinstance(ref, str) and ref in self.names:
            return self.names.index(ref)
        raise ValueError("unknown output: " + str(ref))

    def command(self, i, action, mode, expiry, persist, now):
        self.actions.append((i, action, mode, expiry, persist))

    def describe(self, i, now):
        return {"name": self.names[i]}


class FakeAcc:
    def __init__(self):
        self.held_off = False
        self.woken = 0

    def hold_off(self):
        self.held_off = True

    def wake(self, now):
        self.woken += 1

    def describe(self, now):
        return {"state": "pulsing"}


def make(allow=(), ok=True, token=TOKEN):
    log = EventLog(32)
    c = Control(token, allow, FakeLink(log, ok), FakeRelays(), FakeAcc(), bytearray(8), log, Clock())
    return c, log


def refused(fn, status, words):
    try:
        fn()
    except ControlError as e:
        assert e.status == status, (e.status, e.reason)
        assert words in e.reason, e.reason
        return e
    raise AssertionError("not refused: expected %d %s" % (status, words))


def run_command(c, body, who=WHO_HTTP):
    return asyncio.run(c.command(body, who))


def test_the_token_gate():
    c, _ = make()
    assert c.authorize("Bearer " + TOKEN) is None
    assert c.authorize("bearer " + TOKEN) is None and c.authorize("BEARER " + TOKEN) is None
    for header in (None, "", TOKEN, "Bearer", "Bearer " + TOKEN[:-1], "Bearer " + TOKEN + "x", "Basic " + TOKEN):
        e = c.authorize(header)
        assert e is not None and e.status == 401, header
    off, _ = make(token="")
    assert off.authorize("Bearer anything").status == 403  # no token configured: control disabled
    assert token_matches("Bearer abc", "abc") and not token_matches("Bearer abd", "abc")


def test_safe_commands_run_and_name_who_asked():
    c, log = make()
    for name in SAFE_COMMANDS:
        d = run_command(c, {"command": name})
        assert d["ok"] and d["command"] == name and d["state"] == "done", d
    k, a, b, cc = log.entry(0)[:4]
    assert k == EV_COMMAND and COMMAND_NAMES[a] == "reboot" and cc == WHO_HTTP
    assert text(k, a, b, cc, (), COMMAND_NAMES) == "BMS command reboot from http: done"


def test_dangerous_commands_need_the_opt_in_and_the_confirm_field():
    c, log = make()
    e = refused(lambda: c.check_command({"command": "factory-reset"}, WHO_MQTT), 403, "add it to control.allow_commands")
    assert "confirm" in e.reason
    k, a, b, cc = log.entry(0)[:4]  # the refusal is logged, with who asked
    assert k == EV_COMMAND and COMMAND_NAMES[a] == "factory-reset" and b == CMD_REFUSED and cc == WHO_MQTT
    assert c.link.submitted == []
    c, _ = make(allow=("factory-reset",))
    refused(lambda: c.check_command({"command": "factory-reset"}, WHO_HTTP), 403, 'needs "confirm": "factory-reset"')
    refused(lambda: c.check_command({"command": "factory-reset", "confirm": "shutdown"}, WHO_HTTP), 403, "confirm")
    d = run_command(c, {"command": "factory-reset", "confirm": "factory-reset"})
    assert d["ok"] and c.link.submitted == ["factory-reset"]
    # An opt-in covers the commands it names, nothing else.
    refused(lambda: c.check_command({"command": "shutdown", "confirm": "shutdown"}, WHO_HTTP), 403, "allow_commands")


def test_malformed_command_requests():
    c, _ = make()
    refused(lambda: c.check_command([], WHO_HTTP), 400, "expected a JSON object")
    refused(lambda: c.check_command({}, WHO_HTTP), 400, '{"command": NAME}')
    refused(lambda: c.check_command({"command": 5}, WHO_HTTP), 400, '{"command": NAME}')
    refused(lambda: c.check_command({"command": "explode"}, WHO_HTTP), 400, "unknown command: explode")
    refused(lambda: c.check_command({"command": "reboot", "colour": 1}, WHO_HTTP), 400, "unknown field: colour")


def test_a_failed_command_says_why():
    c, _ = make(ok=False)
    d = run_command(c, {"command": "charge-off"})
    assert d["ok"] is False and d["state"] == "failed" and "no acknowledgement" in d["reason"]


def test_a_shutdown_is_honoured():
    c, _ = make(allow=("shutdown",))
    d = run_command(c, {"command": "shutdown", "confirm": "shutdown"})
    assert d["ok"] and c.acc.held_off and "will not wake it until you ask" in d["note"]
    c.wake(WHO_HTTP, 0)
    assert c.acc.woken == 1


def test_output_actions_are_validated_and_logged():
    c, log = make()
    c.output({"output": "charger", "action": "off", "expiry_s": 60, "persist": True}, WHO_HTTP, 0)
    assert c.relays.actions == [(0, "off", "", 60.0, True)]
    k, a, b, cc = log.entry(0)[:4]
    assert k == EV_CONTROL and a == CTL_OUTPUT_OFF and b == 0 and cc == WHO_HTTP
    assert text(k, a, b, cc, ("charger", "do2", "alarm")) == "DO1 charger override off (from http)"
    for body, words in (({"output": 7, "action": "on"}, "unknown output"),
                        ({"output": "pump", "action": "on"}, "unknown output"),
                        ({"output": 0, "action": "explode"}, "action"),
                        ({"output": 0}, "action: required"),
                        ({"action": "on"}, "output: required"),
                        ({"output": 0, "action": "on", "expiry_s": -1}, "expiry_s"),
                        ({"output": 0, "action": "on", "expiry_s": 400000}, "expiry_s"),
                        ({"output": 0, "action": "mode"}, "mode"),
                        ({"output": 0, "action": "on", "colour": "red"}, "colour: unknown key")):
        refused(lambda: c.output(body, WHO_HTTP, 0), 400, words)
    c.relays.safe_mode = True
    refused(lambda: c.output({"output": 0, "action": "on"}, WHO_HTTP, 0), 503, "safe mode")


def test_flags():
    c, log = make()
    assert c.flag({"flag": 3, "on": True}, WHO_HTTP, 0) == [0, 0, 0, 1, 0, 0, 0, 0]
    assert log.entry(0)[:4] == (EV_CONTROL, CTL_FLAG_ON, 3, WHO_HTTP)
    for body in ({"flag": 8, "on": True}, {"flag": 0}, {"flag": "x", "on": True}, {"flag": 0, "on": 1}):
        refused(lambda: c.flag(body, WHO_HTTP, 0), 400, "flag" if "flag" not in body or body["flag"] != 0 else "on")


def test_every_command_has_a_code_and_the_opt_in_list_is_the_rest():
    assert len(set(COMMAND_NAMES)) == len(COMMAND_NAMES)
    for name in SAFE_COMMANDS:
        assert name in COMMAND_NAMES
    assert ctl.OUTPUT_ACTIONS == ("on", "off", "auto", "release", "reset", "mode")
