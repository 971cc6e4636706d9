# The control service: the one way every face (HTTP, MQTT, BLE) acts on the
# bridge. It checks the token, validates the request, keeps dangerous BMS
# commands behind an opt-in, runs BMS commands through the link's queue and
# waits for their verified result, and applies output overrides, modes,
# flags and manual ACC wakes. Every action and every refusal is logged with
# who asked. A face only turns its transport into a dict and back:
#
#   err = control.authorize(header)            # None or ControlError
#   doc = await control.command({"command": "charge-off"}, WHO_HTTP)
#   doc = control.output({"output": "charger", "action": "off"}, WHO_MQTT, now_ms)
#   values = await control.param_read_all(WHO_HTTP, refresh=True)   # the BMS's settings
#   doc = await control.param_write({"key": K, "value": V, "confirm": "write-param"}, WHO_HTTP)
#
# Refusals raise ControlError(status, reason): 400 malformed, 401 no/wrong
# token, 403 control disabled or a command not allowed, 503 busy.
import asyncio

import schema
from eventlog import EV_COMMAND, EV_CONTROL
from eventtext import (
    CMD_REFUSED,
    CTL_ACC_WAKE,
    CTL_FLAG_OFF,
    CTL_FLAG_ON,
    CTL_OUTPUT_AUTO,
    CTL_OUTPUT_MODE_OFF,
    CTL_OUTPUT_MODE_ON,
    CTL_OUTPUT_OFF,
    CTL_OUTPUT_ON,
    CTL_OUTPUT_RELEASE,
    CTL_OUTPUT_RESET,
)
from link.command import Command

# Every BMS command by code (the event log stores the code). Fixed order:
# a new command goes at the end.
COMMAND_NAMES = (
    "charge-on", "charge-off", "discharge-on", "discharge-off", "balancer-on", "balancer-off",
    "balancer-toggle", "buzzer-on", "buzzer-off", "reboot", "shutdown", "factory-reset", "clear-log",
    "zero-current", "lfp-preset", "lto-preset", "liion-preset", "save", "bluetooth-init",
    "bluetooth-off", "bluetooth-on", "bluetooth-address", "clear-discharge-ah", "clear-charge-ah",
    "clear-discharge-time", "clear-charge-time", "clear-runtime", "clear-protect-time",
    "reset-hardware", "save-customer-data", "write-param",
)
# Allowed without an opt-in: what the vendor app offers on its main screen.
SAFE_COMMANDS = (
    "charge-on", "charge-off", "discharge-on", "discharge-off", "balancer-on", "balancer-off",
    "balancer-toggle", "buzzer-on", "buzzer-off", "reboot",
)
OUTPUT_ACTIONS = ("on", "off", "auto", "release", "reset", "mode")
_MAX_EXPIRY_S = 259200  # 3 days
_CMD_SLACK_MS = 2000  # past the link's own command timeout


class ControlError(Exception):
    def __init__(self, status, reason):
        super().__init__(reason)
        self.status = status
        self.reason = reason


def token_matches(header, token):
    """header is "Bearer TOKEN" ("bearer" in any case). The time depends on
    the token's length alone: it tells neither how much of a guess was right
    nor how long the token is."""
    if header is None:
        header = ""
    if len(header) > 7 and header[:7].lower() == "bearer ":
        header = header[7:]
    else:
        header = ""
    n = len(header)
    diff = n ^ len(token)
    for i in range(len(token)):
        diff |= (ord(header[i]) if i < n else 0x100) ^ ord(token[i])
    return diff == 0


class Control:
    def __init__(self, token, allow, link, relays, acc, flags, log, clock, command_timeout_ms=15000):
        self.token = token  # "" = control disabled
        self.allow = allow  # BMS commands opted in beyond SAFE_COMMANDS
        self.link = link  # link.engine.LinkEngine (its command queue)
        self.relays = relays  # firmware relays (overrides, modes)
        self.acc = acc  # firmware AccWake (manual wake, hold_off)
        self.flags = flags  # bytearray: the rules' {"flag": n} inputs
        self.log = log
        self.clock = clock  # .ticks_ms()
        self.command_timeout_ms = command_timeout_ms
        self.refresh = None  # callable(now_ms): run an outputs pass now (the firmware sets it)
        self.params = None  # link.paramjob.Values, made on the first parameter action
        self._param_read = None  # the asyncio.Event of the full read in flight

    def on_refresh(self, refresh):
        """refresh(now_ms) runs an outputs pass (so an action takes effect at once)."""
        self.refresh = refresh

    # -- the gate ---------------------------------------------------------------------

    def authorize(self, header):
        """None when `header` (an Authorization value) may control the
        bridge, else the ControlError to answer with."""
        if not self.token:
            return ControlError(403, "control is disabled: set api_token in settings.json")
        if not token_matches(header, self.token):
            return ControlError(401, "missing or wrong API token")
        return None

    def command_allowed(self, name):
        return name in SAFE_COMMANDS or name in self.allow

    # -- BMS commands ---------------------------------------------------------------------

    def check_command(self, body, who):
        """Validate a command request; the name. Raises ControlError."""
        _object(body, ("command", "confirm"))
        name = body.get("command")
        if not isinstance(name, str):
            raise ControlError(400, 'expected {"command": NAME}')
        if name not in COMMAND_NAMES or name == "write-param":
            raise ControlError(400, "unknown command: " + name[:40])
        if name in SAFE_COMMANDS:
            return name
        if name not in self.allow:
            self._refused(name, who)
            raise ControlError(403, name + " is a dangerous command: add it to control.allow_commands "
                               "in settings.json to allow it, then send {\"command\": \"" + name
                               + "\", \"confirm\": \"" + name + "\"}")
        if body.get("confirm") != name:
            self._refused(name, who)
            raise ControlError(403, name + " needs \"confirm\": \"" + name + "\" in the request")
        return name

    async def command(self, body, who):
        """Run a BMS command and wait for its verified result (or the
        link's timeout); the result document."""
        name = self.check_command(body, who)
        done = asyncio.Event()
        cmd = Command(name, lambda c: done.set())
        cmd.code = COMMAND_NAMES.index(name)
        cmd.who = who
        self.link.submit(cmd, self.clock.ticks_ms())
        wait_ms = self.command_timeout_ms + _CMD_SLACK_MS
        try:
            await asyncio.wait_for(done.wait(), wait_ms / 1000)
        except asyncio.TimeoutError:
            pass
        d = cmd.describe()
        if not cmd.finished():
            d["reason"] = "no result within " + str(wait_ms // 1000) + " s"
        elif d["ok"] and name == "shutdown" and self.acc is not None:
            # Honour it: no automatic ACC wake until someone asks for one.
            self.acc.hold_off()
            d["note"] = ("the BMS is shut down; the bridge will not wake it until you ask "
                         "(POST /api/acc/wake)")
        return d

    def _refused(self, name, who):
        code = COMMAND_NAMES.index(name) if name in COMMAND_NAMES else 255
        self.log.add(EV_COMMAND, code, CMD_REFUSED, who, self.clock.ticks_ms())

    # -- the BMS's parameters (the vendor app's parameter screen) -----------------------------
    # The work is in lib/paramctl.py and the job code in link/paramjob.py,
    # loaded on the first parameter action (and kept: loading and dropping
    # them for each action would cut the heap into pieces): the firmware at
    # rest holds only these methods.

    def param_reading(self):
        """A full read of the parameters is under way."""
        return self._param_read is not None

    async def param_read_all(self, who, refresh=False):
        """The parameter cache (link.paramjob.Values), read afresh first when
        `refresh` or when nothing of this BMS is cached; see paramctl."""
        import paramctl

        return await paramctl.read_all(self, who, refresh)

    async def param_write(self, body, who):
        """Write one parameter and read it back; see paramctl.write()."""
        import paramctl

        return await paramctl.write(self, body, who)

    # -- outputs, flags, ACC ------------------------------------------------------------------

    def output(self, body, who, now_ms):
        """An override, mode or reset of one output; its description."""
        relays = self.relays
        try:
            schema.obj(body, "", ("output", "action", "mode", "expiry_s", "persist"))
            if "output" not in body:
                raise schema.ConfigError("output", "required")
            action = schema.string(body, "action", "", None, OUTPUT_ACTIONS)
            mode = schema.string(body, "mode", "", "", ("off", "on", "auto"))
            if action == "mode" and not mode:
                raise schema.ConfigError("mode", "required with action mode")
            expiry = schema.number(body, "expiry_s", "", 0.0, 0.0, float(_MAX_EXPIRY_S))
            persist = schema.boolean(body, "persist", "", False)
        except schema.ConfigError as e:
            raise ControlError(400, e.path + ": " + e.reason)
        try:
            i = relays.index(body["output"])
        except ValueError as e:
            raise ControlError(400, str(e))
        if relays.safe_mode:
            raise ControlError(503, "safe mode: the outputs stay at their fail-safe state")
        relays.command(i, action, mode, expiry or None, persist, now_ms)
        if action == "mode":
            act = CTL_OUTPUT_MODE_OFF if mode == "off" else (CTL_OUTPUT_MODE_ON if mode == "on" else CTL_OUTPUT_AUTO)
        else:
            act = (CTL_OUTPUT_ON, CTL_OUTPUT_OFF, CTL_OUTPUT_AUTO, CTL_OUTPUT_RELEASE,
                   CTL_OUTPUT_RESET)[OUTPUT_ACTIONS.index(action)]
        self.log.add(EV_CONTROL, act, i, who, now_ms)
        if self.refresh is not None:
            self.refresh(now_ms)  # takes effect at once: the pins are written now
        return relays.describe(i, now_ms)

    def flag(self, body, who, now_ms):
        try:
            schema.obj(body, "", ("flag", "on"))
            n = schema.integer(body, "flag", "", None, 0, len(self.flags) - 1)
            on = schema.boolean(body, "on", "", None)
        except schema.ConfigError as e:
            raise ControlError(400, e.path + ": " + e.reason)
        self.flags[n] = 1 if on else 0
        self.log.add(EV_CONTROL, CTL_FLAG_ON if on else CTL_FLAG_OFF, n, who, now_ms)
        if self.refresh is not None:
            self.refresh(now_ms)
        return list(self.flags)

    def wake(self, who, now_ms):
        """Pulse ACC now (and end a hold-off after a shutdown)."""
        if self.acc is None:
            raise ControlError(503, "ACC is not running (safe mode)")
        self.acc.wake(now_ms)
        self.log.add(EV_CONTROL, CTL_ACC_WAKE, 0, who, now_ms)
        return self.acc.describe(now_ms)


def _object(body, keys):
    if not isinstance(body, dict):
        raise ControlError(400, "expected a JSON object")
    for k in body:
        if k not in keys:
            raise ControlError(400, "unknown field: " + str(k)[:40])
