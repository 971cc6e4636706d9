# The ESP32-like interpreters themselves (tools/micropython_builds/interp.py):
# what the binaries report about themselves, the frozen firmware image with
# the host hardware layer frozen in place of firmware/hw.py, and why the
# 64-bit build hid allocations the ESP32 makes (31-bit small ints).
# CPython drives MicroPython processes.
import json
import os
import subprocess
import sys
import time

import pytest

import interp
import mpbuild
import run

EPOCH_2000 = 946684800  # 2000-01-01 in Unix time: the ESP32 port's time.time() counts from there


def run_mp(exe, script, env=None, cwd=None, heap="96K", args=()):
    r = subprocess.run([exe, "-X", "heapsize=" + heap, "-c", script] + list(args), capture_output=True, text=True,
                       timeout=60, env=env, cwd=cwd)
    assert r.returncode == 0, "%s (%s):\n%s%s" % (exe, mpbuild.interpreter_label(exe), r.stdout, r.stderr)
    return json.loads(r.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("frozen", [False, True], ids=["esp32like", "esp32like-frozen"])
def test_the_32_bit_builds_report_the_esp32s_number_model(frozen):
    exe = mpbuild.micropython(frozen=frozen, bits=32)
    facts = interp.describe(exe)
    label = mpbuild.interpreter_label(exe)
    assert label.startswith("esp32like 32-bit v1.28.0"), label
    assert facts["maxsize"] == 2**31 - 1 and facts["pointer_bytes"] == 4, facts  # 31-bit small ints, as the ESP32
    assert facts["float_repr"] == "3.3000002", facts  # single-precision floats
    assert facts["frozen_firmware"] is frozen, facts


# -- the frozen image ------------------------------------------------------------------------

_FROZEN_PROBE = r"""
import json, sys
import hw, app, views, ticks, microdot
from link import engine
print(json.dumps({"path": sys.path, "hw": hw.__file__, "host_hw": hasattr(hw, "pins"),
                  "files": [m.__file__ for m in (hw, app, views, ticks, microdot, engine)]}))
"""


def test_the_frozen_image_runs_the_firmware_with_the_host_hardware_layer(tmp_path):
    rt = run.build(str(tmp_path / "out"), "frozen")
    cwd = tmp_path / "data"
    cwd.mkdir()
    doc = run_mp(rt.micropython, _FROZEN_PROBE, env=dict(os.environ, MICROPYPATH=rt.micropath), cwd=str(cwd))
    # Only the frozen modules are on the path: no filesystem copy of lib/,
    # firmware/ or the host runtime. Frozen modules carry their path inside
    # the image ("app.py", "link/engine.py"); no file of that name exists here.
    assert doc["path"] == ["", ".frozen"], doc
    assert doc["host_hw"], doc  # the image's hw.py is tools/hostrt/hw.py (the unix manifest's host_hw)
    assert doc["files"] == ["hw.py", "app.py", "views.py", "ticks.py", "microdot/__init__.py", "link/engine.py"], doc
    assert os.listdir(cwd) == []
    assert "firmware frozen" in rt.label()


def test_the_frozen_image_holds_boot_and_main_and_every_device_module(tmp_path):
    exe = mpbuild.micropython(frozen=True)
    r = subprocess.run([exe, "-c", "help('modules')"], capture_output=True, text=True, timeout=30,
                       env=dict(os.environ, MICROPYPATH=".frozen"), cwd=str(tmp_path))
    listed = set(r.stdout.split())
    wanted = ["boot", "main", "asyncio/__init__", "microdot/microdot"]
    for top in ("lib", "firmware"):
        for src in mpbuild.device_sources(top):
            rel = os.path.relpath(src, os.path.join(mpbuild.ROOT, top))[:-3]
            if rel != "manifest":
                wanted.append(rel)
    missing = [m for m in wanted if m not in listed]
    assert not missing, (missing, r.stdout)
    assert "manifest" not in listed  # the build file itself is not frozen


# -- why the 64-bit build hid an allocation ------------------------------------------------------

# The clock arithmetic the firmware does today on every outputs pass:
# firmware/hw.py epoch_s() adds the 2000->1970 offset to time.time(), and
# firmware/outputs.py minute_of_day()/day_number() take % 86400 // 60 and
# // 86400 of the result. Each step runs alone under micropython.heap_lock().
# For contrast, the same on a clock counting seconds since 2024 (a small int
# until 2058): that never allocates.
_EPOCH_PROBE = r"""
import json, sys, micropython

t2000 = int(sys.argv[1])  # what time.time() returns on the ESP32 now (seconds since 2000)
unix = t2000 + 946684800
since_2024 = t2000 - 757382400


def add_offset(t):
    return t + 946684800  # hw.epoch_s()


def minute_of_day(t):
    return (t % 86400) // 60  # outputs.minute_of_day()


def day_number(t):
    return t // 86400  # outputs.day_number()


def allocates(fn, arg):
    micropython.heap_lock()
    try:
        fn(arg)
        return False
    except MemoryError:
        return True
    finally:
        micropython.heap_unlock()


print(json.dumps({"maxsize": sys.maxsize, "t2000_small": t2000 < 2**30, "steps": {
    "epoch_s": allocates(add_offset, t2000),
    "minute_of_day": allocates(minute_of_day, unix),
    "day_number": allocates(day_number, unix),
    "minute_of_day_2024": allocates(minute_of_day, since_2024),
    "day_number_2024": allocates(day_number, since_2024),
}}))
"""


@pytest.mark.parametrize("bits", [32, 64], ids=["esp32like32", "esp32like64"])
def test_the_unix_epoch_arithmetic_allocates_only_with_31_bit_small_ints(bits):
    exe = mpbuild.micropython(bits=bits)
    t2000 = int(time.time()) - EPOCH_2000
    doc = run_mp(exe, _EPOCH_PROBE, args=[str(t2000)])
    where = mpbuild.interpreter_label(exe)
    assert doc["t2000_small"], doc  # the device's own time.time() is still a small int
    steps = doc["steps"]
    # A seconds-since-2024 clock allocates on neither build.
    assert not steps["minute_of_day_2024"] and not steps["day_number_2024"], (where, doc)
    old = [steps["epoch_s"], steps["minute_of_day"], steps["day_number"]]
    if bits == 32:
        # As on the ESP32: a Unix time (> 2**30 since 2004) is a heap int, so
        # each step raises MemoryError under heap_lock().
        assert old == [True, True, True], (where, doc)
    else:
        # 63-bit small ints: nothing allocates, the 64-bit build cannot see it.
        assert old == [False, False, False], (where, doc)


# -- concurrent callers ----------------------------------------------------------------------


def test_a_second_caller_waits_for_the_build_lock(tmp_path):
    # Another process holds build/mp/.lock (as during a build): a caller
    # waits, says so, and goes on once it is released.
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; sys.path.insert(0, %r); import interp\n"
         "with interp._Lock(print):\n    print('held', flush=True)\n    time.sleep(1.5)\n" % os.path.dirname(interp.__file__)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        said = []
        started = time.monotonic()
        with interp._Lock(said.append):
            waited = time.monotonic() - started
        assert said == ["mp: waiting for another build of the interpreter"] and waited > 0.5, (said, waited)
    finally:
        holder.wait(10)
