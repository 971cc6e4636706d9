# The control port's line commands: one command per line in, one JSON-able
# dict out ({"ok": true, ...} or {"ok": false, "error": why}).
from sim import device as devmod
from sim.profile import PROFILES

HELP = {
    "state": "the whole simulated state",
    "acc 0|1": "the ACC input (a rising edge wakes the BMS)",
    "vcc 0|1": "the TTL port's VCC wire; 0 = unpowered (forced: stays until vcc 1), silent, input ignored",
    "supply 0|1": "the bridge's isolated supply (the host runtime forwards its supply_enable pin)",
    "bridge_baud N": "the bridge UART's baud; != baud garbles both directions",
    "baud N": "the BMS's own baud",
    "protocol old|new|both": "which request families are answered",
    "fault NAME VALUE": "drop|truncate|flip|garbage (rate 0..1), delay (ms), display (poll ms), silent (s)",
    "fault clear": "all faults off",
    "current A": "constant current, + = charging (pauses the profile), within +-3276.7 A",
    "profile NAME": "resume a profile: " + "|".join(PROFILES),
    "soc PCT": "set the state of charge",
    "cell N MV|auto": "pin cell N (1-based) to MV / release it",
    "temp N|mosfet|balancer C|auto": "pin probe N (1-based) or the MOSFET/balancer sensor, -39..200 C",
    "sleep | deepsleep | wake": "force the sleep state",
    "idle_sleep S": "seconds idle (|I| < 0.5 A, ACC low) before sleeping, 0 = never",
    "password SECRET|none": "set / clear the required password",
    "time_scale X": "speed factor of the pack dynamics",
    "limit NAME VALUE": "set a protection limit (names: see state.limits)",
    "log CODE CELL charge|discharge": "add an entry to the OLD system log (state code 0..31, cell 0..31)",
    "help": "this list",
}


class CommandError(ValueError):
    pass


def _int(text, what):
    try:
        return int(text, 0)
    except ValueError:
        raise CommandError(what + " must be an integer, not %r" % text) from None


def _float(text, what):
    try:
        return float(text)
    except ValueError:
        raise CommandError(what + " must be a number, not %r" % text) from None


def _bit(args):
    if len(args) != 1 or args[0] not in ("0", "1"):
        raise CommandError("expected 0 or 1")
    return args[0] == "1"


def _arity(args, n, usage):
    if len(args) != n:
        raise CommandError("usage: " + usage)


def execute(dev, line, now):
    """Run one control line against `dev` at time `now`."""
    words = line.split()
    if not words:
        return {"ok": False, "error": "empty command"}
    try:
        extra = _run(dev, words[0].lower(), words[1:], now)
    except (CommandError, ValueError) as e:
        return {"ok": False, "error": str(e)}
    reply = {"ok": True}
    if extra:
        reply.update(extra)
    return reply


def _run(dev, cmd, args, now):
    dev.tick(now)
    if cmd == "state":
        return {"state": dev.state()}
    if cmd == "help":
        return {"commands": HELP}
    if cmd == "acc":
        dev.power.set_acc(_bit(args), now)
    elif cmd in ("vcc", "supply"):
        on = _bit(args)
        if cmd == "vcc":
            dev.power.set_vcc(on)
        else:
            dev.power.set_supply(on)
        if not dev.power.powered():
            dev.wire.clear()  # a reply under way dies with the supply
    elif cmd in ("bridge_baud", "baud"):
        _arity(args, 1, cmd + " N")
        baud = _int(args[0], cmd)
        if not 300 <= baud <= 1000000:
            raise CommandError("baud must be 300..1000000")
        if cmd == "baud":
            dev.baud = baud
            dev.wire.baud = baud
        else:
            dev.bridge_baud = baud
    elif cmd == "protocol":
        _arity(args, 1, "protocol old|new|both")
        if args[0] not in devmod.PROTOCOLS:
            raise CommandError("protocol must be old, new or both")
        dev.protocol = args[0]
    elif cmd == "fault":
        if args == ["clear"]:
            dev.faults.clear()
            dev.display.set_period(0, now)
            return None
        _arity(args, 2, "fault NAME VALUE | fault clear")
        dev.faults.set(args[0], _float(args[1], "value"), now)
        if args[0] == "display":
            dev.display.set_period(dev.faults.display, now)
    elif cmd == "current":
        _arity(args, 1, "current A")
        amps = _float(args[0], "current")
        devmod.check_current(amps)
        dev.profile.set_constant(amps)
    elif cmd == "profile":
        _arity(args, 1, "profile NAME")
        dev.profile.resume(args[0])
    elif cmd == "soc":
        _arity(args, 1, "soc PCT")
        pct = _float(args[0], "soc")
        if not 0 <= pct <= 100:
            raise CommandError("soc must be 0..100")
        dev.pack.set_soc(pct)
    elif cmd == "cell":
        _arity(args, 2, "cell N MV|auto")
        n = _int(args[0], "cell")
        if not 1 <= n <= dev.pack.cells:
            raise CommandError("cell must be 1..%d" % dev.pack.cells)
        if args[1] == "auto":
            dev.pack.pinned_cells.pop(n - 1, None)
        else:
            mv = _int(args[1], "MV")
            if not 0 <= mv <= 65535:
                raise CommandError("MV must be 0..65535")
            dev.pack.pinned_cells[n - 1] = mv
    elif cmd == "temp":
        _arity(args, 2, "temp N|mosfet|balancer C|auto")
        value = None if args[1] == "auto" else int(round(_float(args[1], "C")))
        if value is not None and not devmod.MIN_FITTED_TEMP_C <= value <= 200:
            raise CommandError("C must be %d..200 (-40 is what the frame sends for an absent probe)"
                               % devmod.MIN_FITTED_TEMP_C)
        if args[0] == "mosfet":
            dev.pack.pinned_mosfet = value
        elif args[0] == "balancer":
            dev.pack.pinned_balancer = value
        else:
            n = _int(args[0], "probe")
            if not 1 <= n <= dev.pack.probes:
                raise CommandError("probe must be 1..%d (fitted probes)" % dev.pack.probes)
            if value is None:
                dev.pack.pinned_probes.pop(n - 1, None)
            else:
                dev.pack.pinned_probes[n - 1] = value
    elif cmd == "sleep":
        dev.power.sleep()
    elif cmd == "deepsleep":
        dev.power.sleep(deep=True)
    elif cmd == "wake":
        dev.power.wake(now)
    elif cmd == "idle_sleep":
        _arity(args, 1, "idle_sleep S")
        seconds = _float(args[0], "seconds")
        if seconds < 0:
            raise CommandError("seconds must be >= 0")
        dev.power.idle_sleep_s = seconds
    elif cmd == "password":
        _arity(args, 1, "password SECRET|none")
        dev.password = None if args[0] == "none" else args[0].encode()
        dev.authed = False
    elif cmd == "time_scale":
        _arity(args, 1, "time_scale X")
        scale = _float(args[0], "time_scale")
        if not 0 < scale <= 1e6:
            raise CommandError("time_scale must be > 0")
        dev.time_scale = scale
    elif cmd == "log":
        _arity(args, 3, "log CODE CELL charge|discharge")
        if args[2] not in ("charge", "discharge"):
            raise CommandError("the table is charge or discharge")
        dev.protection.add_entry(_int(args[0], "code"), _int(args[1], "cell"), args[2] == "discharge")
    elif cmd == "limit":
        _arity(args, 2, "limit NAME VALUE")
        if not hasattr(dev.limits, args[0]):
            raise CommandError("unknown limit " + args[0])
        setattr(dev.limits, args[0], _int(args[1], "value"))
    else:
        raise CommandError("unknown command %r (try help)" % cmd)
    dev.settle(now)
    return None
