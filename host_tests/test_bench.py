# `make bench` (tools/bench.py) is not part of make test: its figures come
# from a real run (bench/results.json). This is a smoke run with tiny
# durations (--quick, the frozen 32-bit configuration only): the JSON has
# its shape, the bisection bracketed a failing and a passing heap, and the
# figures are physically plausible. No timing is asserted.
import json
import os
import subprocess
import sys

import pytest

import bench
from fwproc import firmware_module

ROOT = bench.ROOT


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("bench") / "results.json")
    r = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "bench.py"), "--quick", "--configs", "frozen-32",
                        "--out", out], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    with open(out) as f:
        return json.load(f), r.stdout


def test_the_heap_bisection_brackets_the_minimum(quick):
    results, _ = quick
    heap = results["heap"]
    assert heap["clients"] == 4 and heap["paths"] == ["/api/status", "/", "/api/events", "/metrics"]
    (config,) = heap["configs"]
    assert (config["name"], config["deploy"], config["bits"]) == ("frozen-32", "frozen", 32)
    assert "32-bit" in config["interpreter"] and "frozen" in config["interpreter"]
    probes = config["probes"]
    passed = [p["heap_kb"] for p in probes if p["ok"]]
    failed = [p["heap_kb"] for p in probes if not p["ok"]]
    assert passed and failed
    assert config["min_heap_kb"] in passed
    assert max(f for f in failed if f < config["min_heap_kb"]) >= config["min_heap_kb"] - config["resolution_kb"]
    for p in probes:
        assert (p["reason"] is None) == p["ok"]
        if p["ok"]:
            assert p["requests"] > 0 and p["by_status"].get("200", 0) > 0
    # The firmware frozen into a 32-bit image cannot start in a few KB, nor need megabytes.
    assert 16 < config["min_heap_kb"] < 512
    assert config["confirmed_kb"] is None or config["confirmed_kb"] >= config["min_heap_kb"]


def test_decode_cost_is_per_frame_against_its_wire_time(quick):
    results, _ = quick
    d = results["decode"]
    assert d["baud"] == 19200 and "32-bit" in d["interpreter"]
    rows = {(r["protocol"], r["cells"]): r for r in d["rows"]}
    assert set(rows) == {(p, n) for p in ("new", "old") for n in (8, 16, 20, 24)}
    for (protocol, cells), r in rows.items():
        assert r["wire_us"] == pytest.approx(r["frame_bytes"] * 10 / 19200 * 1e6, abs=0.1)
        assert r["decode_us"] > 0 and r["ratio"] == pytest.approx(r["decode_us"] / r["wire_us"], rel=1e-3)
    assert {rows[("old", n)]["frame_bytes"] for n in (8, 16, 20, 24)} == {140}  # the old frame has 32 cell slots
    assert [rows[("new", n)]["frame_bytes"] - rows[("new", 8)]["frame_bytes"] for n in (8, 16, 20, 24)] == [
        0, 16, 24, 32]  # the new one grows 2 bytes a cell


def test_the_link_rate_stays_under_the_lines_limit(quick):
    results, _ = quick
    for r in results["rate"]:
        assert r["latency_ms"] == 20 and r["poll_ms"] == 50
        assert r["frames"] > 0 and r["frames_per_s"] > 0
        # What the simulator can send at all (reply latency + reply on the
        # wire); a little slack for the edges of the measuring window.
        assert r["frames_per_s"] <= r["sim_limit_per_s"] * 1.05
        assert r["limit_per_s"] < r["sim_limit_per_s"]
        cycle_ms = (r["request_bytes"] + r["reply_bytes"]) * 10 / 19.2 + r["latency_ms"]
        assert r["limit_per_s"] == pytest.approx(1000 / cycle_ms, rel=1e-3)
    assert {r["protocol"] for r in results["rate"]} == {"new", "old"}


def test_cpu_is_measured_in_both_link_designs(quick):
    results, out = quick
    cpu = results["cpu"]
    for mode in ("wait", "poll"):
        assert cpu[mode]["rx"] == mode
        assert cpu[mode]["cpu_s"] > 0 and cpu[mode]["frames"] > 0  # the link ran in both designs
        assert cpu[mode]["cpu_s_per_min"] == pytest.approx(cpu[mode]["cpu_s"] * 60 / cpu[mode]["seconds"], rel=1e-2)
    assert results["quick"] is True and results["machine"]["cores"] == os.cpu_count()
    assert "heap minimum, 4 HTTP clients" in out and "firmware CPU at 1 s polls" in out


def test_link_rx_is_wait_or_poll():
    settings = firmware_module("settings")
    assert settings.parse({}).link_poll_rx is False
    assert settings.parse({"link": {"rx": "wait"}}).link_poll_rx is False
    assert settings.parse({"link": {"rx": "poll"}}).link_poll_rx is True
    with pytest.raises(Exception, match="link.rx: must be one of: wait, poll"):
        settings.parse({"link": {"rx": "fast"}})
