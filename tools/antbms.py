#!/usr/bin/env python3
"""antbms: talk to an ANT smart BMS from a PC, like the vendor's BMS_V1.5.

  antbms.py decode [HEX ...]        decode frames (arguments, or stdin lines)
  antbms.py encode COMMAND [ARGS]   print the frame of a request or command
  antbms.py monitor --port PORT     live view through a USB-TTL adapter
  antbms.py control --port PORT CMD send a command and confirm it

PORT is a serial device (/dev/ttyUSB0) or any pyserial URL, for example
socket://127.0.0.1:7000 for the simulator. decode and encode need nothing but
the standard library; monitor and control need pyserial.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))

from ant import commands  # noqa: E402
from ant.commands import Unsupported  # noqa: E402
from ant.describe import frame_dict  # noqa: E402
from ant.framer import REASONS, Framer  # noqa: E402

# Framer drop reasons as the CLI names them when a line holds no frame.
_ERROR_NAMES = {
    "noise": "bad_header",
    "truncated": "too_short",
}


def _error(reason):
    return _ERROR_NAMES.get(reason, reason)


def _invalid(error, protocol=None):
    return {"valid": False, "error": error, "protocol": protocol, "kind": None}


def _guess_protocol(data):
    if data[:1] == b"\x7e":
        return "new"
    if data[:1] in (b"\xaa", b"\x5a", b"\xa5", b"\xdb"):
        return "old"
    return None


class _RecordingFramer(Framer):
    """A framer that remembers why the first dropped byte was dropped."""

    first_reason = None

    def _drop(self, reason):
        if self.first_reason is None:
            self.first_reason = REASONS[reason]
        Framer._drop(self, reason)


def decode_bytes(data, direction="auto", probes=-1):
    """One JSON-ready dict for one input line of bytes (probes >= 0: the
    number of temperature probes fitted)."""
    if not data:
        return _invalid("too_short")
    framer = _RecordingFramer()
    found = []

    def take():
        found.append(frame_dict(framer.buf, framer.start, framer.length, framer.kind, direction, probes=probes))

    pos = 0
    while True:
        pos = framer.feed(data, pos)
        if not framer.kind:
            break
        take()
    while framer.flush():
        take()
    dropped = framer.dropped_bytes
    if len(found) == 1 and dropped == 0:
        return found[0]
    if not found:
        return _invalid(_error(framer.first_reason or "truncated"), _guess_protocol(data))
    # Several frames on one line (echoes arriving in one packet), or frames
    # with garbage or a truncated frame around them.
    d = _invalid(None, found[0]["protocol"])
    d["kind"] = "frames"
    d["frames"] = found
    d["dropped_bytes"] = dropped
    if dropped:
        d["error"] = _error(framer.first_reason)
    else:
        d["valid"] = all(f["valid"] for f in found)
    return d


def decode_line(line, direction="auto", probes=-1):
    text = "".join(line.split())
    if text.lower().startswith("0x"):
        text = text[2:]
    try:
        data = bytes.fromhex(text)
    except ValueError:
        return _invalid("bad_hex")
    return decode_bytes(data, direction, probes)


def cmd_decode(args):
    if args.frames:
        lines = args.frames
    else:
        lines = [ln for ln in sys.stdin.read().splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    ok = True
    probes = -1 if args.probes is None else args.probes
    for line in lines:
        d = decode_line(line, args.direction, probes)
        ok = ok and d["valid"]
        print(json.dumps(d))
    return 0 if ok else 1


def _int(text):
    return int(text, 0)


def encode(command, protocol, params):
    """List of (protocol, frame bytes) for a command name and its params."""
    protocols = [protocol] if protocol else ["new", "old"]
    out = []
    errors = []
    for proto in protocols:
        try:
            if command == "status":
                frames = [commands.status_request(proto, params.variant)]
            elif command == "device-info":
                if proto == "old":
                    raise Unsupported("device-info does not exist in the old protocol")
                frames = [commands.device_info_request()]
            elif command == "system-info":
                if proto == "old":
                    raise Unsupported("system-info does not exist in the old protocol")
                frames = [commands.system_info_request()]
            elif command == "password":
                frames = [commands.password(proto, params.value, params.address)]
            elif command == "read-param":
                frames = [commands.read_param(proto, params.address, params.length)]
            elif command == "write-param":
                frames = list(commands.write_param(proto, params.address, params.value, params.length))
            else:
                frames = [commands.control(command, proto)]
        except (Unsupported, ValueError) as e:
            errors.append(str(e))
            continue
        out.extend((proto, f) for f in frames)
    if not out:
        raise Unsupported("; ".join(errors))
    return out


ENCODE_HELP = (
    "status [--variant N], device-info, system-info, password SECRET [--address A], "
    "read-param ADDR [--length N], write-param ADDR VALUE [--length N], or a control: "
    + ", ".join(sorted(commands.CONTROLS))
)


def cmd_encode(args):
    params = argparse.Namespace(variant=args.variant, length=args.length, address=None, value=None)
    rest = args.args
    try:
        if args.command == "password":
            if len(rest) != 1:
                raise ValueError("password needs the secret")
            params.value = rest[0]
            params.address = args.address
        elif args.command in ("read-param", "write-param"):
            need = 1 if args.command == "read-param" else 2
            if len(rest) != need:
                raise ValueError(args.command + " needs " + ("ADDR" if need == 1 else "ADDR VALUE"))
            params.address = _int(rest[0])
            if need == 2:
                params.value = _int(rest[1])
        elif rest:
            raise ValueError(args.command + " takes no arguments")
        frames = encode(args.command, args.protocol, params)
    except (Unsupported, ValueError) as e:
        print("antbms encode: " + str(e), file=sys.stderr)
        return 2
    for proto, frame in frames:
        print(frame.hex() if args.protocol else proto + " " + frame.hex())
    return 0


def build_parser():
    try:
        import antbms_serial
    except ImportError:  # started from elsewhere: tools/ is not on the path
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import antbms_serial
    p = argparse.ArgumentParser(prog="antbms", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)

    d = sub.add_parser("decode", help="decode hex frames (arguments or one per stdin line)")
    d.add_argument("frames", nargs="*", help="hex strings (spaces allowed inside quotes)")
    d.add_argument(
        "--direction",
        choices=("auto", "host", "bms"),
        default="auto",
        help="who sent old 6-byte frames (an echo is byte-identical to its command)",
    )
    d.add_argument(
        "--probes",
        type=antbms_serial.probe_count,
        default=None,
        metavar="N",
        help="temperature probes actually fitted: the others read null and are left out (an unfitted old "
        "slot may read -30 or 0, not -40). Default: every slot the frame has",
    )
    d.set_defaults(func=cmd_decode)

    e = sub.add_parser("encode", help="print a request/command frame", description=ENCODE_HELP)
    e.add_argument("command")
    e.add_argument("args", nargs="*")
    e.add_argument("--protocol", choices=("old", "new"), help="default: print both")
    e.add_argument("--variant", type=int, default=0, help="old status request form (0: 5A5A0000 0101, 1: DBDB, 2: 5A5A0000 0000)")
    e.add_argument("--length", type=int, default=2, help="parameter size in bytes (new protocol)")
    e.add_argument("--address", type=_int, default=None, help="new password slot address")
    e.set_defaults(func=cmd_encode)

    antbms_serial.add_parsers(sub)
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
