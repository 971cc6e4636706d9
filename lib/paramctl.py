# The parameter half of the control service (lib/control.py), loaded on the
# first parameter action so that the firmware at rest holds none of it:
#
#   values = await control.param_read_all(who, refresh)   # -> read_all()
#   doc = await control.param_write(body, who)             # -> write()
#
# Reading changes nothing and the values are no secret (the vendor's display
# shows them): it needs no token. It costs bus time, so one full read runs at
# a time (later callers wait for the same one), status polls and BMS
# commands go between its exchanges (link/engine.py), and the values stay
# cached with their time. A write is dangerous: the opt-in ("write-param" in
# control.allow_commands), "confirm": "write-param", the table's range and
# step, a live link, then the engine writes, commits (OLD apply / NEW save)
# and reads back. Refusals raise control.ControlError and are logged.
import asyncio

from ant import params as P
from control import COMMAND_NAMES, ControlError, _CMD_SLACK_MS, _object
from link.paramjob import DONE, READ_ALL, WRITE, ParamJob
from link.paramvalues import Values

READ_WAIT_MS = 30000  # a face waits this long for a full read (then serves what is there)
_WRITE_WAIT_MS = 35000  # a write's exchanges (below the HTTP handler's 40 s)
_LINK_OK = 0  # link.model.LINK_OK
_BODY = '{"key": KEY, "value": NUMBER, "confirm": "write-param"}'


def values(control):
    """The control service's parameter cache, made on first use."""
    if control.params is None:
        control.params = Values()
    return control.params


async def read_all(control, who, refresh=False, wait_ms=READ_WAIT_MS):
    """The parameter cache (link.paramjob.Values), read afresh first when
    `refresh` or when nothing of this BMS is cached; waits (at most wait_ms)
    for a read in flight. values.error says why a read failed or could not
    start."""
    v = values(control)
    model = control.link.model
    if control._param_read is None and (refresh or not v.complete or v.protocol != model.protocol):
        if model.link != _LINK_OK or not model.protocol:
            if refresh or not v.complete:
                v.error = "the BMS link is not live: nothing read"
            return v
        _start_read(control, v, model.protocol)
    done = control._param_read
    if done is not None:
        try:
            await asyncio.wait_for(done.wait(), wait_ms / 1000)
        except asyncio.TimeoutError:
            pass  # still reading: what has arrived so far, "reading": true
    return v


def _start_read(control, v, protocol):
    done = asyncio.Event()
    control._param_read = done
    v.reset(protocol)
    v.error = ""
    clock = control.clock

    def finished(job):
        control._param_read = None
        if job.state == DONE:
            v.complete = True
            v.read_ms = clock.ticks_ms()
            v.read_s = clock.clock_s() if hasattr(clock, "clock_s") else 0
        else:
            v.error = job.reason
        done.set()

    control.link.submit_job(ParamJob(READ_ALL, v, -1, 0, finished), clock.ticks_ms())


def check(control, body, who):
    """Validate a parameter write; (row, raw value). Raises ControlError."""
    _object(body, ("key", "value", "confirm"))
    key = body.get("key")
    if not isinstance(key, str):
        raise ControlError(400, "expected " + _BODY)
    if "write-param" not in control.allow:
        control._refused("write-param", who)
        raise ControlError(403, "parameter writes are off: add \"write-param\" to control.allow_commands in "
                           "settings.json to allow them, then send " + _BODY)
    if body.get("confirm") != "write-param":
        control._refused("write-param", who)
        raise ControlError(403, "a parameter write needs \"confirm\": \"write-param\" in the request")
    row = P.find(key)
    if row < 0:
        raise ControlError(400, "unknown parameter: " + key[:40])
    r = P.ROWS[row]
    if not r[P.FLAGS] & P.F_WRITE:
        raise ControlError(400, key + " is read-only")
    value = body.get("value")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ControlError(400, "value must be a number")
    exp = r[P.EXP]
    exact = value * 10 ** -exp  # exponents are <= 0
    raw = int(round(exact))
    if abs(exact - raw) > 0.05:  # float32 on the device: 3.65 * 1000 is 3650.0002
        raise ControlError(400, key + ": value must be a multiple of " + decimal(1, exp))
    if not r[P.LO] <= raw <= r[P.HI]:
        raise ControlError(400, key + ": value must be within " + decimal(r[P.LO], exp) + " .. "
                           + decimal(r[P.HI], exp) + " " + r[P.UNIT])
    model = control.link.model
    if model.link != _LINK_OK or not model.protocol:
        raise ControlError(503, "the BMS link is not live: nothing written")
    if not P.offered(row, model.protocol):
        raise ControlError(400, key + " is not offered by the " + ("old" if model.protocol == 1 else "new")
                           + " protocol")
    return row, raw


async def write(control, body, who):
    """Write one parameter and read it back: {"ok", "key", "raw", "exp",
    "unit", "reason"}, the value read back being raw * 10**exp (raw None
    when nothing could be read). A refusal of the BMS is "ok": false with
    its reason; a refusal of ours raises ControlError."""
    row, raw = check(control, body, who)
    v = values(control)
    protocol = control.link.model.protocol
    if v.protocol != protocol:
        v.reset(protocol)
    done = asyncio.Event()
    job = ParamJob(WRITE, v, row, raw, lambda j: done.set())
    job.code = COMMAND_NAMES.index("write-param")
    job.who = who
    control.link.submit_job(job, control.clock.ticks_ms())
    wait_ms = min(2 * control.command_timeout_ms + _CMD_SLACK_MS, _WRITE_WAIT_MS)
    try:
        await asyncio.wait_for(done.wait(), wait_ms / 1000)
    except asyncio.TimeoutError:
        pass
    r = P.ROWS[row]
    reason = job.reason or None
    if not job.finished():
        reason = "no result within " + str(wait_ms // 1000) + " s"
    return {"ok": job.state == DONE, "key": r[P.KEY], "raw": v.raw(row), "exp": r[P.EXP], "unit": r[P.UNIT],
            "reason": reason}


def decimal(raw, exp):
    """raw * 10**exp as exact text ("3.65", "0.1")."""
    if exp >= 0:
        return str(raw * 10 ** exp)
    sign = "-" if raw < 0 else ""
    digits = str(abs(raw))
    if len(digits) <= -exp:
        digits = "0" * (-exp - len(digits) + 1) + digits
    whole = digits[:exp]
    frac = digits[exp:].rstrip("0")
    return sign + whole + ("." + frac if frac else "")
