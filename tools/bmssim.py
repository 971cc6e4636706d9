#!/usr/bin/env python3
"""bmssim: a simulated ANT smart BMS on a TCP port and/or a pty.

It answers the status requests, controls, passwords and parameter reads and
writes of both protocol generations with byte-exact frames built by lib/ant,
paces its bytes at the baud rate, runs a pack model (state of charge, cell
voltages, temperatures, balancing, protections) and models VCC, ACC, sleep,
a display on the same port and line faults. A control port (one text command
per line, one JSON reply per line) drives it at run time; send `help` there
for the list.

examples:
  python3 tools/bmssim.py --tcp 127.0.0.1:7000 --control 127.0.0.1:7001
  python3 tools/bmssim.py --tcp 127.0.0.1:0 --control 127.0.0.1:0 \\
      --ready-file /tmp/sim.json --protocol old --cells 20 --profile cycle
  python3 tools/bmssim.py --tcp 127.0.0.1:7000 --control 127.0.0.1:7001 \\
      --pty /tmp/ttyBMS --faults "drop=0.1,display=1000"

control port (any line-based TCP client): one command per line, e.g.
  state | help | acc 1 | vcc 0 | supply 0 | current -40 | fault drop 0.2 | fault clear
"""
import argparse
import asyncio
import os
import sys
import textwrap
import time

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(_HERE, "..", "lib"))
sys.path.insert(0, _HERE)

from sim.device import MAX_CAPACITY_AH, MAX_CURRENT_A, PROTOCOLS, Config, Device  # noqa: E402
from sim.profile import PROFILES  # noqa: E402
from sim.server import Server, parse_address  # noqa: E402


def _address(text):
    try:
        return parse_address(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _ranged(kind, lo, hi):
    def convert(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError("%r is not a number" % text) from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError("must be %s..%s" % (lo, hi))
        return value

    return convert


def build_parser():
    p = argparse.ArgumentParser(
        prog="bmssim.py",
        description=textwrap.fill(__doc__.split("\n\n")[1].replace("\n", " "), 78),
        epilog="\n".join(__doc__.split("\n")[__doc__.split("\n").index("examples:") :]),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    io = p.add_argument_group("ports")
    io.add_argument("--tcp", type=_address, default=("127.0.0.1", 0), metavar="HOST:PORT",
                    help="the BMS's TTL port as a TCP byte stream (port 0 = any free port; default 127.0.0.1:0)")
    io.add_argument("--control", type=_address, default=("127.0.0.1", 0), metavar="HOST:PORT",
                    help="control port: text commands, JSON replies (default 127.0.0.1:0)")
    io.add_argument("--pty", metavar="PATH", help="also expose the TTL port as a pty, symlinked at PATH")
    io.add_argument("--ready-file", metavar="PATH",
                    help='written atomically once listening: {"tcp", "control", "pty", "pid"}')
    io.add_argument("--quiet", action="store_true", help="no log lines on stderr")
    bms = p.add_argument_group("the BMS")
    bms.add_argument("--protocol", choices=PROTOCOLS, default="new",
                     help="request families answered: old (AA 55), new (7E A1) or both (default new)")
    bms.add_argument("--baud", type=_ranged(int, 300, 1000000), default=19200, help="UART baud (default 19200)")
    bms.add_argument("--password", metavar="SECRET",
                     help="controls and writes need this password first (old: <= 8 characters)")
    bms.add_argument("--reply-latency-ms", type=_ranged(float, 0, 10000), metavar="N",
                     help="fixed reply latency (default: status 20-150, old echo 32-84, new ACK 62-124 ms)")
    bms.add_argument("--idle-sleep-s", type=_ranged(float, 0, 1e9), default=0.0, metavar="N",
                     help="sleep after N s with |I| < 0.5 A and ACC low (default 0 = never; real units ~180)")
    bms.add_argument("--reboot-s", type=_ranged(float, 0, 600), default=3.0, metavar="N",
                     help="silence after a reboot control (default 3)")
    pack = p.add_argument_group("the pack")
    pack.add_argument("--cells", type=_ranged(int, 8, 32), default=16, help="cells in series, 8..32 (default 16)")
    pack.add_argument("--temps", type=_ranged(int, 0, 6), default=2,
                      help="fitted temperature probes, 0..6 (default 2; old frames carry probes 1-4)")
    pack.add_argument("--temp-slots", type=_ranged(int, 0, 8), metavar="N",
                      help="probe slots a NEW status frame announces (default --temps; unfitted slots read -40)")
    pack.add_argument("--unfitted", type=int, choices=(-40, -30, 0), default=-40,
                      help="what an unfitted OLD probe slot reads: -40, -30 or 0 (default -40)")
    pack.add_argument("--capacity-ah", type=_ranged(float, 1, MAX_CAPACITY_AH), default=100.0,
                      help="capacity, 1..%g Ah: what the frames' u32 in µAh holds (default 100)" % MAX_CAPACITY_AH)
    pack.add_argument("--soc", type=_ranged(float, 0, 100), default=70.0, help="initial state of charge %% (default 70)")
    pack.add_argument("--profile", choices=PROFILES, default="idle",
                      help="current profile: idle, charge (0.2C), discharge (0.2C), cycle (0.3C), random")
    pack.add_argument("--current", type=_ranged(float, -MAX_CURRENT_A, MAX_CURRENT_A), metavar="A",
                      help="constant current in A, + = charging, within +-%g A (the new frame's field; "
                      "overrides --profile)" % MAX_CURRENT_A)
    pack.add_argument("--time-scale", type=_ranged(float, 1e-3, 1e6), default=1.0, metavar="X",
                      help="speed factor of the pack dynamics and protection delays (default 1)")
    pack.add_argument("--seed", type=int, default=0, help="seed of every random choice (default 0)")
    pack.add_argument("--faults", default="", metavar="SPEC",
                      help="line faults, NAME=VALUE,...: drop, truncate, flip, garbage (rates 0..1 per reply), "
                      "delay (extra ms), display (a display polls every N ms), silent (no answer for N s); "
                      'e.g. "drop=0.1,delay=300,display=1000"')
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    config = Config(
        protocol=args.protocol,
        cells=args.cells,
        temps=args.temps,
        temp_slots=args.temp_slots,
        unfitted=args.unfitted,
        capacity_ah=args.capacity_ah,
        soc=args.soc,
        baud=args.baud,
        password=args.password,
        profile=args.profile,
        current=args.current,
        idle_sleep_s=args.idle_sleep_s,
        reboot_s=args.reboot_s,
        seed=args.seed,
        faults=args.faults,
        reply_latency_ms=args.reply_latency_ms,
        time_scale=args.time_scale,
    )
    if args.temp_slots is not None and args.temp_slots < args.temps:
        build_parser().error("--temp-slots must be >= --temps")
    try:
        device = Device(config, time.monotonic())
    except ValueError as e:
        build_parser().error(str(e))
    if args.pty:
        parent = os.path.dirname(os.path.abspath(args.pty))
        if not os.path.isdir(parent):
            build_parser().error("--pty: directory %s does not exist" % parent)
    server = Server(device, args.tcp, args.control, args.pty, args.ready_file, args.quiet)
    try:
        asyncio.run(server.run())
    except OSError as e:
        sys.stderr.write("bmssim: %s\n" % e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
