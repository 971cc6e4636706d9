# The supervisor (firmware/supervisor.py) under the MicroPython unix port,
# frozen as on the device: a task that hangs (an await that never returns)
# is cancelled, released and restarted; a task that crashes is released and
# restarted after a pause; the hardware watchdog is fed only while every
# task beats in time; each failure is in the event log. CPython drives
# host_tests/sup_probe.py.
import json
import os
import subprocess

import mpbuild
from eventlog import EV_TASK
from eventtext import TASK_CRASHED, TASK_HUNG, TASK_NAMES

ROOT = mpbuild.ROOT


def test_hung_and_crashed_tasks_are_restarted_and_the_watchdog_waits_for_them():
    exe = mpbuild.micropython(frozen=True)
    env = dict(os.environ, MICROPYPATH=".frozen:" + os.path.join(ROOT, "host_tests"))
    r = subprocess.run([exe, "-X", "heapsize=96K", os.path.join(ROOT, "host_tests", "sup_probe.py")],
                       capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0, "on %s:\n%s%s" % (mpbuild.interpreter_label(exe), r.stdout, r.stderr)
    d = json.loads(r.stdout.strip().splitlines()[-1])
    # The hung task: found late (600 ms budget), cancelled, released, run again, fine since.
    assert d["hangs"] == 1 and d["hangs_runs"] == 2 and d["hangs_closed"] == 1, d
    # The crashing task: twice, each released before its restart; then fine.
    assert d["crashes"] == 2 and d["crashes_runs"] == 3 and d["crashes_closed"] == 2, d
    assert d["restarts"] == {"link": 0, "outputs": 1, "acc": 2}, d
    assert d["alive"] == [True, True, True] and d["healthy_passes"] > 50, d
    assert d["last_crash"] in ("acc: ValueError: crash number 2", "outputs: no progress for 600 ms"), d
    # Fed about once a second, but not while a task was late or down.
    assert d["feeds"] >= 3 and d["longest_gap_ms"] >= 1900, d
    events = [tuple(e) for e in d["events"]]
    assert (EV_TASK, TASK_NAMES.index("outputs"), TASK_HUNG, 1) in events, events
    assert (EV_TASK, TASK_NAMES.index("acc"), TASK_CRASHED, 2) in events, events
    assert "ValueError: crash number 1" in r.stderr  # one traceback per crash on the console
