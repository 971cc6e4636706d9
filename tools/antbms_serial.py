"""antbms monitor / control: a BMS through a USB-TTL adapter (or any pyserial
URL, e.g. socket://127.0.0.1:7000 for the simulator), like the vendor's
BMS_V1.5 PC software.

Both drive the firmware's own sans-IO link engine (lib/link) with real time:
autodetection, link states, wiring diagnosis, display coexistence and the
command queue behave exactly as on the bridge.
"""
import json
import os
import sys
import time

_TICKS_MASK = 0x3FFFFFFF
_READ_SIZE = 512
_READ_TIMEOUT_S = 0.005
# What the simulator (tools/sim/server.py BUSY) sends a second client before
# closing: its port serves one client at a time.
_SIM_BUSY = b"bmssim: busy"
_SIM_BUSY_TEXT = ("the simulator already has a client on that port (one at a time: `make run`'s firmware, "
                  "or another antbms?); stop it, or start a second simulator")

PROTOCOL_CHOICES = ("auto", "old", "new")
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


def ticks_ms():
    """Monotonic ms, wrapped like MicroPython's ticks (the engine's clock)."""
    return (time.monotonic_ns() // 1000000) & _TICKS_MASK


class UsageError(Exception):
    """Bad arguments or a missing dependency (exit 2)."""


class PortError(Exception):
    """The port cannot be opened or was refused (exit 1)."""


class SerialLink:
    """One serial port and one LinkEngine, pumped in real time."""

    def __init__(self, port, config, serial_module=None):
        from link.engine import LinkEngine
        from link.model import Model

        if serial_module is None:
            try:
                import serial as serial_module
            except ImportError:
                raise UsageError("monitor and control need pyserial (pip install pyserial)")
        self.serial_module = serial_module
        self.model = Model()
        self.engine = LinkEngine(self.model, config)
        try:
            self.port = serial_module.serial_for_url(port, baudrate=self.engine.baud, timeout=_READ_TIMEOUT_S)
        except (serial_module.SerialException, ValueError, OSError) as e:
            raise PortError("cannot open %s: %s" % (port, e))
        self.engine.baud_changed = False
        self._head = b""  # the first bytes from a socket:// port, checked for the simulator's refusal
        self._check_busy = port.startswith("socket://")

    def close(self):
        try:
            self.port.close()
        except Exception:
            pass

    def pump(self):
        """Read what arrived, let time pass in the engine, write what is due."""
        engine = self.engine
        port = self.port
        waiting = port.in_waiting
        try:
            data = port.read(waiting if waiting > 0 else 1)
        except self.serial_module.SerialException:
            if self._check_busy and self._head.startswith(_SIM_BUSY):
                raise PortError(_SIM_BUSY_TEXT)
            raise
        if data and self._check_busy:
            self._head = (self._head + data)[: len(_SIM_BUSY)]
            if self._head.startswith(_SIM_BUSY):
                raise PortError(_SIM_BUSY_TEXT)
            if len(self._head) >= len(_SIM_BUSY):
                self._check_busy = False  # a BMS's bytes: the port is ours
        now = ticks_ms()
        if data:
            engine.feed(data, len(data), now)
        engine.tick(now)
        if engine.baud_changed:  # before sending: the same tick may switch and poll
            engine.baud_changed = False
            port.baudrate = engine.baud  # a no-op for socket:// (no baud on TCP)
        if engine.tx is not None:
            port.write(engine.tx)
            engine.sent(ticks_ms())
        return now


def make_config(args):
    from ant.status import PROTOCOL_NEW, PROTOCOL_OLD
    from link.engine import LinkConfig

    config = LinkConfig()
    config.protocol = {"auto": 0, "old": PROTOCOL_OLD, "new": PROTOCOL_NEW}[args.protocol]
    config.baud = args.baud
    config.password = args.password
    config.poll_ms = int(args.interval * 1000)
    config.invert_current = args.invert_current
    if args.probes is not None:
        config.probes_fitted = args.probes
    return config


# -- the terminal view -------------------------------------------------------------


def _num(value, fmt, absent="—"):
    return absent if value is None else fmt % value


def _signed(value, fmt):
    return ("+" if value > 0 else "") + fmt % value


def _state(d):
    return "%s (%s, code %d)" % ("on" if d["on"] else "off", d["text"], d["code"])


def _stats_line(link):
    s = link["stats"]
    err = link["last_error"]
    loss = link["loss_pct"]
    reply = link["reply_ms"]
    return ("frames %d  polls %d  timeouts %d  late %d  checksum %d  resyncs %d  dropped %d B  foreign %d  "
            "loss %s of %d polls  reply %s (timeout %d ms)  last error: %s") % (
        s["frames_ok"],
        s["polls"],
        s["timeouts"],
        s["late_replies"],
        s["checksum_errors"],
        s["resyncs"],
        s["bytes_dropped"],
        s["foreign_frames"],
        "—" if loss is None else "%d %%" % loss,
        link["window"],
        "—" if reply is None else "%d ms" % reply,
        link["reply_timeout_ms"],
        "none" if err is None else "%s (%.1f s ago)" % (err["error"], err["age_ms"] / 1000),
    )


def _link_line(snap):
    link = snap["link"]
    age = snap["data_age_ms"]
    parts = ["link %s" % link["state"].upper()]
    parts.append("protocol %s @ %d baud" % (link["protocol"] or "?", link["baud"]))
    if link["passive"]:
        parts.append("passive (another master polls)")
    parts.append("data age %s" % ("—" if age is None else "%.1f s" % (age / 1000)))
    return "  ".join(parts)


_ALARM_SOURCES = {
    "protection": "protection flag",
    "warning": "warning flag",
    "charge_mos": "charge MOS",
    "discharge_mos": "discharge MOS",
    "system_log": "system log",
}


def alarm_text(alarm):
    where = _ALARM_SOURCES.get(alarm["source"], alarm["source"])
    if "cell" in alarm:
        where += ", cell %d" % alarm["cell"]
    return "%s (%s)" % (alarm["name"], where)


def render(snap, port):
    """The full-screen view as a list of lines."""
    link = snap["link"]
    lines = ["ANT BMS on %s    %s" % (port, time.strftime("%H:%M:%S")), _link_line(snap)]
    if not snap["live"]:
        lines.append("NOT LIVE: the values below are the last ones received." if snap["cell_count"] else "No status yet.")
        lines.append("line: %s — %s" % (link["line"], link["hint"]))
    if snap["cell_count"]:
        current = snap["current_a"]
        direction = "charging" if current > 0 else ("discharging" if current < 0 else "idle")
        lines.append(
            "pack %.2f V   %s A   %s W   (%s)   SOC %d %%   remaining %.1f / %.1f Ah"
            % (
                snap["pack_voltage_v"],
                _signed(current, "%.1f"),
                _signed(snap["power_w"], "%d"),
                direction,
                snap["soc_pct"],
                snap["remaining_ah"],
                snap["capacity_ah"],
            )
        )
        cells = snap["cell_voltages_v"]
        lo = snap["cell_min_index"]
        hi = snap["cell_max_index"]
        lines.append(
            "cells %d   min %.3f V (#%d)   max %.3f V (#%d)   delta %d mV   (v = min, ^ = max, * = balancing)"
            % (len(cells), snap["cell_min_v"], lo, snap["cell_max_v"], hi, round(snap["cell_delta_v"] * 1000))
        )
        row = []
        for i, v in enumerate(cells, 1):
            mark = "v" if i == lo else ("^" if i == hi else " ")
            bal = "*" if i in snap["balancing_cells"] else " "
            row.append("%2d %.3f%s%s" % (i, v, mark, bal))
            if len(row) == 8:
                lines.append("  " + "  ".join(row))
                row = []
        if row:
            lines.append("  " + "  ".join(row))
        temps = ["T%d %s" % (i, _num(t, "%d °C")) for i, t in enumerate(snap["temperatures_c"], 1)]
        temps.append("MOSFET %s" % _num(snap["mosfet_temp_c"], "%d °C"))
        temps.append("balancer %s" % _num(snap["balancer_temp_c"], "%d °C"))
        lines.append("temps  " + "   ".join(temps))
        lines.append("charge MOS %s   discharge MOS %s" % (_state(snap["charge_mos"]), _state(snap["discharge_mos"])))
        lines.append("balancer %s" % _state(snap["balancer"]))
        alarm_names = [alarm_text(a) for a in link["alarms"]]
        lines.append("alarms: " + (", ".join(alarm_names) if alarm_names else "none"))
    if snap["live"]:
        lines.append("line: %s — %s" % (link["line"], link["hint"]))
    lines.append(_stats_line(link))
    return lines


def plain_line(snap):
    """One line per status for logs and pipes."""
    link = snap["link"]
    head = "%s %s" % (time.strftime("%H:%M:%S"), link["state"])
    if not snap["cell_count"]:
        return "%s line=%s: %s" % (head, link["line"], link["hint"])
    cells = snap["cell_voltages_v"]
    temps = "/".join(_num(t, "%d") for t in snap["temperatures_c"]) or "—"
    alarm_names = ",".join(alarm_text(a) for a in link["alarms"]) or "none"
    return (
        "%s %s %.2fV %sA %sW SOC %d%% rem %.1fAh cells %d min %.3f(#%d) max %.3f(#%d) T %s°C "
        "CHG %s DSG %s BAL %s alarms %s age %sms frames %d timeouts %d crc %d"
        % (
            head,
            link["protocol"],
            snap["pack_voltage_v"],
            _signed(snap["current_a"], "%.1f"),
            _signed(snap["power_w"], "%d"),
            snap["soc_pct"],
            snap["remaining_ah"],
            len(cells),
            snap["cell_min_v"],
            snap["cell_min_index"],
            snap["cell_max_v"],
            snap["cell_max_index"],
            temps,
            snap["charge_mos"]["text"],
            snap["discharge_mos"]["text"],
            snap["balancer"]["text"],
            alarm_names,
            snap["data_age_ms"],
            link["stats"]["frames_ok"],
            link["stats"]["timeouts"],
            link["stats"]["checksum_errors"],
        )
    )


# -- commands ----------------------------------------------------------------------


def _open(args):
    if args.interval <= 0:
        raise UsageError("--interval must be positive")
    if args.timeout is not None and args.timeout <= 0:
        raise UsageError("--timeout must be positive")
    return SerialLink(args.port, make_config(args))


def _open_or_explain(args, what):
    """(link, None), or (None, exit code) after saying why on stderr."""
    try:
        return _open(args), None
    except UsageError as e:
        print("antbms %s: %s" % (what, e), file=sys.stderr)
        return None, EXIT_USAGE
    except PortError as e:
        print("antbms %s: %s" % (what, e), file=sys.stderr)
        return None, EXIT_FAILED


def cmd_monitor(args, out=None):
    from link.describe import snapshot
    from ticks import ticks_diff

    out = out or sys.stdout
    link, code = _open_or_explain(args, "monitor")
    if link is None:
        return code
    tty = not args.json and out.isatty()
    shown = 0
    start = ticks_ms()
    last_fresh = start
    last_frames = link.engine.stats.frames_ok
    last_redraw = start
    try:
        while args.count is None or shown < args.count:
            now = link.pump()
            frames = link.engine.stats.frames_ok
            fresh = frames != last_frames
            if fresh:
                last_frames = frames
                last_fresh = now
                shown += 1
            elif args.timeout is not None and ticks_diff(now, last_fresh) >= args.timeout * 1000:
                snap = snapshot(link.model, link.engine, now)
                if args.json:
                    print(json.dumps(snap), file=out, flush=True)
                print(
                    "antbms monitor: no status from the BMS for %g s (link %s, line %s): %s"
                    % (args.timeout, snap["link"]["state"], snap["link"]["line"], snap["link"]["hint"]),
                    file=sys.stderr,
                )
                return EXIT_FAILED
            # Redraw on every fresh status, and once a second while nothing
            # arrives so a dying link is visible.
            if not fresh and (args.json or ticks_diff(now, last_redraw) < 1000):
                continue
            last_redraw = now
            snap = snapshot(link.model, link.engine, now)
            if args.json:
                snap["time"] = round(time.time(), 3)
                print(json.dumps(snap), file=out, flush=True)
            elif tty:
                out.write("\x1b[H\x1b[2J" + "\n".join(render(snap, args.port)) + "\n")
                out.flush()
            else:
                # One line per fresh status on stdout (--count N: N lines);
                # while none arrives, the link's state once a second on stderr.
                print(plain_line(snap), file=out if fresh else sys.stderr, flush=True)
    except KeyboardInterrupt:
        return EXIT_OK
    except PortError as e:
        print("antbms monitor: %s" % e, file=sys.stderr)
        return EXIT_FAILED
    except BrokenPipeError:  # piped into head & co.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except OSError as e:  # serial.SerialException included: the adapter was unplugged
        print("antbms monitor: port lost: %s" % e, file=sys.stderr)
        return EXIT_FAILED
    finally:
        link.close()
    return EXIT_OK


def cmd_control(args, out=None):
    from link import command as cmd

    out = out or sys.stdout
    link, code = _open_or_explain(args, "control")
    if link is None:
        return code
    timeout_s = args.timeout if args.timeout is not None else 20.0
    link.engine.config.command_timeout_ms = int(timeout_s * 1000)
    command = cmd.Command(args.command)
    try:
        link.engine.submit(command, ticks_ms())
        deadline = time.monotonic() + timeout_s + 2
        while not command.finished() and time.monotonic() < deadline:
            link.pump()
        if not command.finished():
            command.state = cmd.FAILED
            command.reason = "timed out"
    except KeyboardInterrupt:
        return EXIT_FAILED
    except PortError as e:
        print("antbms control: %s" % e, file=sys.stderr)
        return EXIT_FAILED
    except OSError as e:
        print("antbms control: port lost: %s" % e, file=sys.stderr)
        return EXIT_FAILED
    finally:
        link.close()
    result = command.describe()
    if args.json:
        from link.describe import describe_link

        result["link"] = describe_link(link.model, link.engine, ticks_ms())
        print(json.dumps(result), file=out)
    elif result["ok"]:
        text = "%s: ok" % args.command
        if result["note"]:
            text += " (%s)" % result["note"]
        print(text, file=out)
        if link.model.has_data:
            from ant import codes

            st = link.model.status
            print(
                "charge MOS: %s; discharge MOS: %s; balancer: %s"
                % (codes.charge_text(st.charge_mos), codes.discharge_text(st.discharge_mos), codes.balancer_text(st.balancer)),
                file=out,
            )
    else:
        print("%s: failed: %s" % (args.command, result["reason"]), file=out)
    return EXIT_OK if result["ok"] else EXIT_FAILED


# -- argument parsing --------------------------------------------------------------


def probe_count(text):
    """argparse type of --probes (decode, monitor, control)."""
    import argparse

    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("%r is not a number" % text) from None
    if not 0 <= n <= 255:
        raise argparse.ArgumentTypeError("must be 0..255")
    return n


def _common(p):
    p.add_argument("--port", required=True, help="serial device (/dev/ttyUSB0) or pyserial URL (socket://HOST:PORT)")
    p.add_argument("--protocol", choices=PROTOCOL_CHOICES, default="auto", help="BMS protocol generation (default: detect)")
    p.add_argument("--baud", type=int, choices=(0, 19200, 9600), default=0, help="0 = detect (19200, then 9600)")
    p.add_argument("--password", default=None, help="BMS password, sent before every command (never printed)")
    p.add_argument("--interval", type=float, default=1.0, help="poll interval in seconds (default 1; 0.25 at least)")
    p.add_argument("--invert-current", action="store_true", help="flip the current's sign (shunt mounted backwards)")
    p.add_argument("--probes", type=probe_count, default=None, metavar="N",
                   help="temperature probes actually fitted: the others read absent (an unfitted old slot may "
                   "read -30 or 0, not -40)")
    p.add_argument("--json", action="store_true", help="JSON output")


def add_parsers(sub):
    from ant.commands import CONTROLS

    m = sub.add_parser(
        "monitor",
        help="live view of a BMS through a serial port",
        description="Poll the BMS and show cells, pack, temperatures, MOSFET and balancer states, "
        "the link state with its wiring hint and the line statistics (full screen on a terminal). "
        "Piped, one line per fresh status on stdout and, while none arrives, the link's state once a "
        "second on stderr; --json prints one JSON object per fresh status (JSON Lines). Exit 1 when "
        "--timeout passes without a status or the port is lost or refused.",
    )
    _common(m)
    m.add_argument("--count", type=int, default=None, help="exit after N fresh statuses (N data lines)")
    m.add_argument("--timeout", type=float, default=None, help="exit 1 when no status arrived for S seconds")
    m.set_defaults(func=cmd_monitor)

    c = sub.add_parser(
        "control",
        help="send a command and confirm it",
        description="Send one command through the link's command queue (password first when given), "
        "confirm it from the ACK/echo and the next status. Exit 0 on success, 1 on failure.",
    )
    _common(c)
    c.add_argument("--timeout", type=float, default=None, help="give up after S seconds (default 20)")
    c.add_argument("command", choices=sorted(CONTROLS), metavar="COMMAND", help=", ".join(sorted(CONTROLS)))
    c.set_defaults(func=cmd_control)
