# README's samples of `antbms` run as written and print what README shows:
# every `$ ... tools/antbms.py ...` line of README's "The PC tool" section
# that is followed by output. decode/encode run as they are; monitor/control
# run against the simulator in place of /dev/ttyUSB0, set up as the text
# around each sample says. In the expected text `...` stands for anything
# (within a line, or a whole line of its own for any number of lines), and a
# line starting with a space continues the one before. CPython only.
import os
import re
import shlex
import subprocess
import sys

import pytest

from conftest import ROOT
from simproc import SimProcess

README = os.path.join(ROOT, "README.md")
CLI = os.path.join(ROOT, "tools", "antbms.py")


def section(text, title):
    start = text.index("## " + title)
    end = text.find("\n## ", start + 3)
    return text[start:] if end < 0 else text[start:end]


def samples():
    """[(command, [expected lines])] of the PC tool's section, in order."""
    with open(README, encoding="utf-8") as f:
        text = section(f.read(), "The PC tool")
    out = []
    for block in re.findall(r"```\n(.*?)```", text, re.S):
        lines = block.splitlines()
        i = 0
        while i < len(lines):
            if not lines[i].startswith("$ "):
                i += 1
                continue
            command = lines[i][2:]
            j = i + 1
            while j < len(lines) and not lines[j].startswith("$ "):
                j += 1
            expected = lines[i + 1 : j]
            if expected and "tools/antbms.py" in command:
                out.append((command, expected))
            i = j
    return out


def logical(lines):
    merged = []
    for line in lines:
        if line.startswith(" ") and merged:
            merged[-1] += line
        else:
            merged.append(line)
    return merged


def line_matches(pattern, line):
    parts = pattern.split("...")
    if len(parts) == 1:
        return line == pattern
    if not line.startswith(parts[0]) or not line.endswith(parts[-1]):
        return False
    pos = len(parts[0])
    for part in parts[1:-1]:
        found = line.find(part, pos)
        if found < 0:
            return False
        pos = found + len(part)
    return pos <= len(line) - len(parts[-1])


def matches(expected, actual):
    """Expected logical lines against actual lines ("..." lines: any number)."""
    if not expected:
        return not actual
    head = expected[0]
    if head.strip() == "...":
        return any(matches(expected[1:], actual[k:]) for k in range(len(actual) + 1))
    return bool(actual) and line_matches(head, actual[0]) and matches(expected[1:], actual[1:])


def run(command, port=None):
    """Run a README command line as written (a trailing `; echo $?` too);
    stdout and stderr together, as a terminal shows them."""
    if port is not None:
        command = command.replace("/dev/ttyUSB0", port)
    command = command.split("  #")[0].strip()
    echo_status = command.endswith("; echo $?")
    if echo_status:
        command = command[: -len("; echo $?")].strip()
    argv = shlex.split(command)
    assert argv[0] in ("python3", ".venv/bin/python") and argv[1] == "tools/antbms.py", command
    r = subprocess.run([sys.executable, CLI] + argv[2:], capture_output=True, text=True, timeout=90, cwd=ROOT)
    lines = (r.stdout + r.stderr).splitlines()
    if echo_status:
        lines.append(str(r.returncode))
    return lines


# How each monitor/control sample's BMS is set up, by a phrase of its command.
SIMULATED = (
    ("monitor --port /dev/ttyUSB0 --json --count 1", ("--current", "-12.5"), ()),
    ("monitor --port /dev/ttyUSB0 --timeout 5", (), ("vcc 0",)),
    ("control --port /dev/ttyUSB0", ("--password", "123456789abc"), ()),  # one BMS for the session
)


def setup_of(command):
    for phrase, sim_args, controls in SIMULATED:
        if phrase in command:
            return sim_args, controls
    return None


def test_readme_has_the_samples_this_test_runs():
    found = samples()
    offline = [c for c, _ in found if "/dev/tty" not in c]
    online = [c for c, _ in found if "/dev/tty" in c]
    assert sum(" decode " in c for c in offline) >= 2 and sum(" encode " in c for c in offline) >= 3
    assert len(online) >= 5 and all(setup_of(c) is not None for c in online), online
    # the matcher itself
    assert matches(logical(["a ... c", "...", "z"]), ["a b c", "x", "y", "z"])
    assert not matches(logical(["a ... c"]), ["a b c d"]) and not matches(["x"], ["x", "y"])
    assert matches(logical(['{"a": 1,', ' "b": ...}']), ['{"a": 1, "b": 2}'])


@pytest.mark.parametrize("command, expected", [s for s in samples() if "/dev/tty" not in s[0]],
                         ids=lambda v: v if isinstance(v, str) else "")
def test_decode_and_encode_samples_print_what_readme_shows(command, expected):
    actual = run(command)
    assert matches(logical(expected), actual), "README:\n%s\nprinted:\n%s" % ("\n".join(expected), "\n".join(actual))


def test_monitor_and_control_samples_print_what_readme_shows():
    groups = []  # consecutive samples that share one simulated BMS
    for command, expected in samples():
        if "/dev/tty" not in command:
            continue
        setup = setup_of(command)
        if groups and groups[-1][0] == setup:
            groups[-1][1].append((command, expected))
        else:
            groups.append((setup, [(command, expected)]))
    for (sim_args, controls), session in groups:
        with SimProcess(*sim_args) as sim:
            for line in controls:
                assert sim.control(line)["ok"]
            for command, expected in session:
                actual = run(command, "socket://127.0.0.1:%d" % sim.tcp_port)
                assert matches(logical(expected), actual), "README:\n%s\nprinted:\n%s" % (
                    "\n".join(expected), "\n".join(actual))
