# tools/run.py (`make run`): its settings file, its --control client and its
# options, without starting the firmware. CPython only.
import json
import os
import subprocess
import sys

import pytest

import run  # tools/run.py (tools/ is on sys.path via conftest)
from simproc import SimProcess


def _sim_json(out, port):
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "sim.json"), "w") as f:
        json.dump({"tcp": 1, "control": port, "pty": None, "pid": 1}, f)


def test_control_exit_codes_say_what_happened(tmp_path, capsys):
    out = str(tmp_path)
    assert run.control(out, ["state"]) == 1  # no sim.json: nothing was started
    assert "no running simulator" in capsys.readouterr().err
    with SimProcess() as sim:
        _sim_json(out, sim.control_port)
        assert run.control(out, ["state"]) == 0
        reply = json.loads(capsys.readouterr().out)
        assert reply["ok"] is True and "vcc" in reply["state"]
        assert run.control(out, ["fault drop 0.1", "bogus"]) == 1  # a refusal fails the run
        lines = capsys.readouterr().out.splitlines()
        assert json.loads(lines[0]) == {"ok": True}
        assert json.loads(lines[1])["ok"] is False and "unknown command" in json.loads(lines[1])["error"]
        assert sim.state()["faults"]["drop"] == 0.1  # the lines before the refusal were carried out
        for empty in ("", "   "):
            assert run.control(out, [empty]) == 2  # said as such, not "no simulator"
            err = capsys.readouterr().err
            assert "needs one command" in err and "no running simulator" not in err
        port = sim.control_port
    assert run.control(out, ["state"]) == 1  # the simulator has gone
    assert "nothing listens on control port %d" % port in capsys.readouterr().err


def test_settings_are_created_once_and_a_users_file_is_left_alone(tmp_path):
    data = str(tmp_path / "data")
    fresh = run.write_settings(data)
    assert len(fresh["api_token"]) == 32
    assert [o["name"] for o in fresh["outputs"]["outputs"]] == ["charger", "do2", "alarm"]
    path = tmp_path / "data" / "settings.json"
    assert json.loads(path.read_text()) == fresh
    assert sorted(os.listdir(data)) == ["settings.json"]  # no temporary file left
    # The user removes the token (control off) and edits the file: kept as is.
    mine = {"outputs": fresh["outputs"], "link": {"poll_ms": 500}}
    path.write_text(json.dumps(mine))
    before = path.read_bytes()
    assert run.write_settings(data) is None
    assert path.read_bytes() == before and "api_token" not in json.loads(path.read_text())
    assert "control is off" in run.control_note(data)
    for content in ('{"api_token": "mine", ', "[" * 100000 + "]" * 100000, "\xff\xfe"):
        path.write_text(content)
        assert run.write_settings(data) is None
        assert path.read_text() == content
        assert "unreadable" in run.control_note(data) or "control is off" in run.control_note(data)
    path.write_text('{"api_token": "t0k-0123456789abcdef"}')
    assert "TOKEN = api_token in" in run.control_note(data)


def test_a_path_that_cannot_hold_settings_is_one_clear_error(tmp_path):
    (tmp_path / "a" / "settings.json").mkdir(parents=True)
    with pytest.raises(run.RunError) as e:
        run.write_settings(str(tmp_path / "a"))
    assert "is not a file" in str(e.value) and "\n" not in str(e.value)
    (tmp_path / "b").write_text("a file where the data directory should be")
    with pytest.raises(run.RunError) as e:
        run.write_settings(str(tmp_path / "b"))
    assert "is not a directory" in str(e.value)


def test_main_reports_a_bad_settings_path_in_one_line(tmp_path, monkeypatch, capsys):
    # make run as far as the settings (the build and the ports stubbed out).
    monkeypatch.setattr(run, "build", lambda out, deploy=None: run.Runtime("micropython", ".frozen", "frozen"))
    monkeypatch.setattr(run, "_check_port_free", lambda port: None)
    (tmp_path / "settings.json").mkdir()
    assert run.main(["--data", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("run: ") and "is not a file" in lines[0]
    assert "Traceback" not in captured.out + captured.err


def test_options_and_help_agree_with_what_runs():
    assert run.parse_args(["--cells", "32"]).cells == 32
    assert run.parse_args(["--cells", "8"]).cells == 8
    tool = os.path.join(run.ROOT, "tools", "run.py")
    r = subprocess.run([sys.executable, tool, "--cells", "33"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "8..32" in r.stderr
    r = subprocess.run([sys.executable, tool, "--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "8..32" in r.stdout and "8-20" not in r.stdout
