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
        for key in ("valid", "error", "protocol", "kind"):
            assert key in d
        # A status frame has every key of the schema; nothing else has any.
        is_status = d["kind"] == "status"
        for key in STATUS_KEYS[4:]:
            assert (key in d) == is_status, (key, d)
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


def test_a_command_frame_carries_only_its_own_keys():
    d = json.loads(cli("decode", "7ea1510600006924aa55").stdout)
    assert d == {"valid": True, "error": None, "protocol": "new", "function": 0x51, "address": 6,
                 "kind": "command", "register": 6, "command": "charge-on", "length": 10}


def _old_frame(temps, cells=16):
    from ant import old
    from ant.status import Status

    st = Status()
    st.cell_count = min(cells, 32)
    for i in range(st.cell_count):
        st.cells_mv[i] = 3300
    for i, t in enumerate(temps):
        st.temps_c[i] = t
    b = bytearray(old.build_status(st))
    b[123] = cells
    total = sum(b[4:138]) & 0xFFFF
    b[138:140] = bytes((total >> 8, total & 0xFF))
    return b.hex()


def test_decode_probes_says_how_many_are_fitted():
    # An old unit whose unfitted slots 3 and 4 read 0 and -30 °C.
    frame = _old_frame([21, 22, 0, -30])
    assert json.loads(cli("decode", frame).stdout)["temperatures_c"] == [21, 22, 0, -30]
    r = cli("decode", "--probes", "2", frame)
    assert r.returncode == 0 and json.loads(r.stdout)["temperatures_c"] == [21, 22]
    r = cli("decode", "--probes", "-1", frame)
    assert r.returncode == 2 and "--probes" in r.stderr


def test_both_generations_refuse_a_status_of_more_than_32_cells():
    r = cli("decode", _old_frame([21], cells=33), _old_frame([21], cells=32))
    first, second = [json.loads(x) for x in r.stdout.splitlines()]
    assert first["valid"] is False and first["error"] == "bad_cell_count" and "cell_count" not in first
    assert second["valid"] is True and second["cell_count"] == 32
    assert r.returncode == 1
    # A NEW status of 33 cells, its LEN consistent with that.
    from ant import new

    b = bytearray(116 + 66 + 4)
    b[0:3] = b"\x7e\xa1\x11"
    b[5] = 106 + 66 + 4
    b[8] = 2
    b[9] = 33
    new.seal(b, len(b) - 4)
    d = json.loads(cli("decode", b.hex()).stdout)
    assert d["valid"] is False and d["error"] == "bad_cell_count"


def test_help_of_every_subcommand_names_its_options():
    r = cli("decode", "--help")
    assert r.returncode == 0 and "--probes N" in r.stdout and "--direction" in r.stdout
    for sub in ("monitor", "control"):
        r = subprocess.run([sys.executable, CLI, sub, "--help"], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0 and "--probes N" in r.stdout and "--port" in r.stdout, sub
