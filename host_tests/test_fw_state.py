# What the firmware keeps in storage, tested on the modules themselves
# (CPython): state.json read with bounds and written atomically, the
# persistence's coalesced and bounded writes, parts kept for a rejected
# configuration, damaged parts reported (and the file kept aside), the
# crashed-boots record behind safe mode, and settings files that must never
# stop a boot.
import json
import os

import pytest

from eventlog import EventLog
from fwproc import firmware_module

statestore = firmware_module("statestore")
persist_mod = firmware_module("persist")
safemode = firmware_module("safemode")
settings_mod = firmware_module("settings")


class Clock:
    def __init__(self):
        self.now = 1000

    def ticks_ms(self):
        return self.now


def test_state_store_writes_atomically_and_bounds_what_it_reads(tmp_path):
    root = str(tmp_path) + "/"
    store = statestore.StateStore(root)
    assert store.load() == {} and store.error is None  # first boot
    assert store.save({"energy": {"version": 1}, "outputs": {"v": 1}})
    assert sorted(os.listdir(tmp_path)) == ["state.json"]  # no temporary file left behind
    assert statestore.StateStore(root).load() == {"energy": {"version": 1}, "outputs": {"v": 1}}
    # A runaway file is not read whole: reported, kept aside as state.json.bad.
    (tmp_path / "state.json").write_text(json.dumps({"pad": "x" * statestore.MAX_FILE_BYTES}))
    store = statestore.StateStore(root)
    assert store.load() == {} and "larger than 8192 bytes" in store.error
    assert (tmp_path / "state.json.bad").read_text() == (tmp_path / "state.json").read_text()
    # Storage failing (the rename, here onto a directory): counted, no temporary file left.
    (tmp_path / "d" / "state.json").mkdir(parents=True)
    store = statestore.StateStore(root + "d/")
    assert store.save({"energy": {"version": 1}}) is False and store.save_errors == 1 and store.saves == 0
    assert sorted(os.listdir(tmp_path / "d")) == ["state.json"]


@pytest.mark.parametrize("text, why", [
    ("[" * 1500 + "]" * 1500, "nested deeper than 6 levels"),
    ("[" + ",".join(["0"] * 900) + "]", "more than 800 values"),
    ('{"a": "' + "\\\"[" * 1000 + '"}', None),  # brackets and escaped quotes inside a string are text
])
def test_json_shape_is_checked_before_parsing(tmp_path, text, why):
    path = str(tmp_path / "f.json")
    with open(path, "w") as f:
        f.write(text)
    if why is None:
        assert statestore.read_json(path, 8192) == json.loads(text)
    else:
        with pytest.raises(statestore.TooLarge, match=why):
            statestore.read_json(path, 8192)


def make_persist(tmp_path, parts=("a",)):
    store = statestore.StateStore(str(tmp_path) + "/")
    log = EventLog(16)
    clock = Clock()
    p = persist_mod.Persist(store, log, clock)
    values = {name: 0 for name in parts}
    loaded = {}

    def adder(name):
        p.add(name, lambda now: values[name], lambda v, now: loaded.__setitem__(name, v) or True)

    for name in parts:
        adder(name)
    return p, store, log, clock, values, loaded


def test_saves_are_coalesced_and_bounded(tmp_path):
    p, store, log, clock, values, _ = make_persist(tmp_path)
    # A change is written 2 s after it, together with what came meanwhile.
    values["a"] = 1
    p.mark(clock.now)
    clock.now += 1000
    values["a"] = 2
    p.mark(clock.now)
    assert not p.due(clock.now)
    clock.now += 1000
    assert p.due(clock.now)
    p.save(clock.now)
    assert json.loads((tmp_path / "state.json").read_text())["a"] == 2 and store.saves == 1
    # A loop of changes (an override toggled 100 times a second for a
    # minute) costs at most one write per 10 s.
    for _ in range(6000):
        clock.now += 10
        values["a"] += 1
        p.mark(clock.now)
        if p.due(clock.now):
            p.save(clock.now)
    assert store.saves <= 1 + 7, store.saves
    p.flush(clock.now)  # a clean stop writes what is unsaved, at once
    assert json.loads((tmp_path / "state.json").read_text())["a"] == values["a"]


def test_events_are_saved_in_batches(tmp_path):
    p, store, log, clock, _, _ = make_persist(tmp_path)
    p.add("events", lambda now: log.to_list(32), lambda v, now: log.restore(v) or True)
    for i in range(15):
        log.add(1, i)
        clock.now += 100
        assert not p.due(clock.now)  # 15 new events: not yet a batch
    log.add(1, 15)
    assert not p.due(clock.now)  # the 16th makes a batch: written after the coalescing delay
    assert p.due(clock.now + 2000)
    p.save(clock.now + 2000)
    saved = json.loads((tmp_path / "state.json").read_text())["events"]
    assert [e[1] for e in saved] == list(range(16))
    log.add(1, 99)  # one lone event: saved once it is 10 minutes old
    assert not p.due(clock.now + 3000)
    assert not p.due(clock.now + 300000)
    assert not p.due(clock.now + 603000)  # 10 minutes old now: marked ...
    assert p.due(clock.now + 605000)  # ... and written after the coalescing delay
    # Restored after a "reboot", flagged as from an earlier boot.
    log2 = EventLog(16)
    assert log2.restore(saved) == 16 and log2.earlier[log2.index(0)] == 1 and log2.a[log2.index(0)] == 15


def test_a_part_of_a_rejected_configuration_is_kept_unchanged(tmp_path):
    (tmp_path / "state.json").write_text(json.dumps({"a": "the real config's overrides", "b": 5}))
    p, store, log, clock, values, loaded = make_persist(tmp_path, ("a", "b"))
    p.restore(store.load(), clock.now, keep=("a",))
    assert "a" not in loaded and loaded["b"] == 5
    values["b"] = 6
    p.save(clock.now)
    saved = json.loads((tmp_path / "state.json").read_text())
    assert saved["a"] == "the real config's overrides" and saved["b"] == 6


def test_a_damaged_part_is_reported_and_the_file_kept(tmp_path):
    original = json.dumps({"a": {"broken": True}, "b": 5})
    (tmp_path / "state.json").write_text(original)
    store = statestore.StateStore(str(tmp_path) + "/")
    p = persist_mod.Persist(store, EventLog(8), Clock())

    def load_a(value, now):
        raise ValueError("a: must be a list")

    p.add("a", lambda now: [], load_a)
    p.add("b", lambda now: 5, lambda v, now: False)  # a loader that says "not in the expected form"
    p.restore(store.load(), 0)
    assert "state.json: a: a: must be a list; this part starts from zero" in store.error
    assert "state.json: b: not in the expected form" in store.error
    assert (tmp_path / "state.json.bad").read_text() == original


def test_three_crashed_boots_in_a_row_mean_safe_mode(tmp_path):
    root = str(tmp_path) + "/"
    for expected in (0, 1, 2):
        rec = safemode.BootRecord(root).begin()
        assert rec.crashed == expected and not rec.safe_mode  # (each boot dies before clean())
    rec = safemode.BootRecord(root).begin()
    assert rec.crashed == 3 and rec.safe_mode and rec.boots == 4
    rec.clean()  # a clean run (or a clean stop) starts the count over
    rec = safemode.BootRecord(root).begin()
    assert rec.crashed == 0 and not rec.safe_mode and rec.boots == 5
    (tmp_path / "boots.json").write_text("[[[[[[garbage")  # unreadable: a fresh count, never a crash
    assert safemode.BootRecord(root).begin().crashed == 0


BOOT_KILLERS = {
    "deep_settings": "[" * 1500 + "]" * 1500,
    "rule_with_560_conditions": json.dumps({"outputs": {"outputs": [
        {"name": "x", "when": {"all": [{"soc": {"below": i % 100}} for i in range(560)]}}]}}),
    "huge_string": json.dumps({"api_token": "x" * 20000}),
    "not_json": '{"api_token": ',
    "not_an_object": "[1, 2, 3]",
}


@pytest.mark.parametrize("name", sorted(BOOT_KILLERS))
def test_settings_that_once_killed_the_boot_are_refused_with_a_reason(tmp_path, name):
    (tmp_path / "settings.json").write_text(BOOT_KILLERS[name])
    s = settings_mod.boot_load(str(tmp_path) + "/")
    assert s.error and "settings.json" in s.error, s.error
    assert s.api_token == "" and s.program is not None  # defaults: control off, outputs off
    assert "all" in s.rejected or "outputs" in s.rejected


# -- a fuzzed corpus: no settings or state file stops a boot ------------------------------

from hypothesis import HealthCheck, given, settings as hsettings, strategies as hs  # noqa: E402

_scalars = hs.one_of(hs.none(), hs.booleans(), hs.integers(-2**40, 2**40), hs.floats(allow_nan=False),
                     hs.text(max_size=40))
_json = hs.recursive(_scalars, lambda kids: hs.one_of(hs.lists(kids, max_size=6),
                                                      hs.dictionaries(hs.text(max_size=12), kids, max_size=6)),
                     max_leaves=40)
_keys = hs.sampled_from(["api_token", "board", "link", "outputs", "acc", "energy", "wifi", "control", "time",
                         "watchdog", "sense_check_s", "http_port", "energy", "events", "v"])
_documents = hs.dictionaries(_keys, _json, max_size=8)


@hsettings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=_documents, tail=hs.binary(max_size=40), garble=hs.booleans())
def test_no_settings_file_stops_a_boot(tmp_path, doc, tail, garble):
    text = json.dumps(doc).encode()
    if garble:
        text = text[: len(text) // 2] + tail
    (tmp_path / "settings.json").write_bytes(text)
    s = settings_mod.boot_load(str(tmp_path) + "/")  # never raises
    assert s.program is not None  # the outputs compile (the file's, or the defaults)
    if s.error is None:
        assert s.rejected == ()
    else:
        assert s.error.startswith("settings.json") and s.rejected


@hsettings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=_documents, tail=hs.binary(max_size=40), garble=hs.booleans())
def test_no_state_file_stops_a_boot(tmp_path, doc, tail, garble):
    from energy import Energy
    from rules.engine import Engine

    text = json.dumps(doc).encode()
    if garble:
        text = text[: len(text) // 2] + tail
    (tmp_path / "state.json").write_bytes(text)
    store = statestore.StateStore(str(tmp_path) + "/")
    log = EventLog(16)
    p = persist_mod.Persist(store, log, Clock())
    energy = Energy(None)
    s = settings_mod.Settings()
    rules = Engine(settings_mod.compile_outputs(settings_mod.DEFAULT_OUTPUTS), log)
    p.add("energy", lambda now: energy.to_dict(), lambda v, now: energy.from_dict(v) and True)
    p.add("outputs", lambda now: rules.persistent_state(), lambda v, now: rules.restore(v, now))
    p.add("events", lambda now: log.to_list(), lambda v, now: log.restore(v) and True)
    p.restore(store.load(), 0)  # never raises; whatever was wrong is in store.error
    assert s.error is None
    p.save(0)  # and what is saved next is whole again
    assert json.loads((tmp_path / "state.json").read_text())["v"] == persist_mod.VERSION
