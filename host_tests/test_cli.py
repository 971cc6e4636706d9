# tools/antbms.py decode/encode as a user runs them: a separate process with
# nothing but the standard library and lib/.
import json
import os
import subprocess
import sys

from conftest import ROOT

CLI = os.path.join(ROOT, "tools", "antbms.py")
with open(os.path.join(ROOT, "host_tests", "vectors.json")) as _f:
    VECTORS = json.load(_f)


def cli(*args, stdin=None):
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": ""}  # nothing but stdlib + lib/
    return subprocess.run(
        [sys.executable, "-S", CLI] + list(args), input=stdin, capture_output=True, text=True, env=env, timeout=60
    )


STATUS_KEYS = (
    "valid error protocol kind pack_voltage_v current_a power_w soc_pct soh_pct capacity_ah remaining_ah "
    "cycle_ah runtime_s cell_count cell_voltages_v cell_min_v cell_min_index cell_max_v cell_max_index "
    "cell_avg_v cell_delta_v temperatures_c mosfet_temp_c balancer_temp_c charge_mos discharge_mos "
    "balancer balancing_cells"
).split()


def test_decode_stdin_prints_one_object_per_line_in_order():
    lines = [v["hex"] for v in VECTORS]
    # Spaces inside a line are allowed; blank lines are not inputs.
    lines[0] = " ".join(lines[0][i : i + 2] for i in range(0, len(lines[0]), 2))
    r = cli("decode", stdin="\n".join(lines[:60]) + "\n\n" + "\n".join(lines[60:]) + "\n")
    out = [json.loads(x) for x in r.stdout.splitlines()]
    assert len(out) == len(VECTORS)
    assert r.returncode == 1  # some vectors are invalid on purpose
    for v, d in zip(VECTORS, out):
        for key in STATUS_KEYS:
            assert key in d
        e = v["expected"]
        invalid = e.get("valid_frame") is False or e.get("crc_ok") is False or e.get("checksum_ok") is False
        assert d["valid"] is (not invalid and "notifications" not in e), v["hex"]
        if d["valid"] and d["kind"] == "status":
            assert d["protocol"] == v["protocol"]
            assert d["cell_count"] == e["cell_count"]
            raw = e.get("current_a", e.get("current_a_raw_sign"))
            assert abs(d["current_a"] + raw) < 1e-9  # positive = charging
            assert d["power_w"] == -e["power_w"]


def test_decode_status_schema_of_a_new_frame():
    v = VECTORS[112]  # 30S, four probe slots, one absent
    r = cli("decode", v["hex"])
    assert r.returncode == 0
    d = json.loads(r.stdout)
    assert d["valid"] is True and d["error"] is None
    assert (d["protocol"], d["kind"]) == ("new", "status")
    assert d["pack_voltage_v"] == 115.32 and d["cell_count"] == 30
    assert d["temperatures_c"] == [15, 16, 15, None]
    assert d["cell_min_index"] == 28 and d["cell_max_index"] == 3
    assert d["charge_mos"] == {"code": 1, "on": True, "text": "on"}
    assert d["balancer"]["on"] is False and d["balancing_cells"] == []
    assert d["soh_pct"] == 100


def test_decode_old_frame_has_null_for_fields_it_lacks():
    d = json.loads(cli("decode", VECTORS[11]["hex"]).stdout)
    assert d["soh_pct"] is None
    assert d["temperatures_c"] == [21, 22, None, None]
    assert d["mosfet_temp_c"] == 23 and d["balancer_temp_c"] == 25


def test_decode_errors_name_their_reason():
    cases = {
        VECTORS[18]["hex"]: "bad_checksum",
        "fefe": "bad_header",
        "7ea111": "too_short",
        "7ea1999900000000aa55": "unknown_function",
        "zz": "bad_hex",
        "7ea1510d000018e6aa56": "bad_trailer",
    }
    r = cli("decode", *cases)
    out = [json.loads(x) for x in r.stdout.splitlines()]
    assert [d["error"] for d in out] == list(cases.values())
    assert all(d["valid"] is False for d in out)
    assert r.returncode == 1


def test_decode_exit_zero_when_every_line_is_valid():
    r = cli("decode", VECTORS[0]["hex"], "5a5aff0000ff5a5aff0000ff")
    assert r.returncode == 0
    second = json.loads(r.stdout.splitlines()[1])
    assert second["kind"] == "frames" and len(second["frames"]) == 2


def test_encode_prints_both_protocols_or_one():
    r = cli("encode", "charge-on")
    assert r.stdout.split("\n")[:2] == ["new 7ea1510600006924aa55", "old a5a5fa0001fb"]
    assert cli("encode", "buzzer-off", "--protocol", "new").stdout.strip() == "7ea1511f0000b8e3aa55"
    assert cli("encode", "status", "--protocol", "old", "--variant", "1").stdout.strip() == "dbdb00000000"
    r = cli("encode", "write-param", "0", "3650", "--protocol", "new")
    assert r.stdout.split() == ["7ea122000002420ebdecaa55", "7ea15107000038e4aa55"]
    assert cli("encode", "password", "12345678", "--protocol", "old").stdout.strip() == (
        "a5a5f1313254a5a5f2333459a5a5f335365ea5a5f4373863"
    )


def test_encode_refuses_what_a_protocol_lacks():
    r = cli("encode", "buzzer-on", "--protocol", "old")
    assert r.returncode == 2 and "old protocol" in r.stderr
    r = cli("encode", "no-such-thing")
    assert r.returncode == 2 and "unknown command" in r.stderr
