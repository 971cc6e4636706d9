# Config validators (lib/schema.py), under CPython and MicroPython: every bad
# value is a ConfigError naming its path, never another exception.
import json

from schema import ConfigError, array, boolean, integer, number, obj, string


def rejects(fn, d, key, reason, *args):
    try:
        fn(d, key, "cfg", *args)
    except ConfigError as e:
        assert e.path == "cfg." + key, e.path
        assert e.reason == reason, e.reason
        return
    raise AssertionError("accepted: " + repr(d))


def test_absent_keys_take_the_default_or_are_required():
    for fn, default in ((integer, 7), (number, 0.5), (boolean, False), (string, "x"), (array, [])):
        assert fn({}, "k", "cfg", default) == default
        rejects(fn, {}, "k", "required")


def test_integer_accepts_integral_floats_and_rejects_everything_else():
    assert integer({"k": 5.0}, "k", "cfg", None, 0, 10) == 5
    assert type(integer({"k": 5.0}, "k", "cfg")) is int
    for bad in (5.5, True, "5", None, [5]):
        rejects(integer, {"k": bad}, "k", "must be an integer")
    rejects(integer, {"k": 11}, "k", "must be <= 10", None, 0, 10)
    rejects(integer, {"k": -1}, "k", "must be >= 0", None, 0, 10)


def test_non_finite_numbers_are_config_errors_not_crashes():
    # JSON 1e400 parses as inf on both runtimes; int(inf) used to escape as
    # OverflowError, past the settings loader's `except ConfigError`.
    inf = json.loads("1e400")
    nan = inf - inf
    for v in (inf, -inf, nan):
        rejects(integer, {"k": v}, "k", "must be an integer", None, 0, 10)
        rejects(number, {"k": v}, "k", "must be a finite number")
    assert number({"k": 3}, "k", "cfg", None, 0.0, 5.0) == 3.0
    rejects(number, {"k": 5.5}, "k", "must be <= 5.0", None, 0.0, 5.0)


def test_strings_booleans_arrays_and_objects():
    rejects(string, {"k": "b"}, "k", "must be one of: a, c", None, ("a", "c"))
    rejects(string, {"k": "x" * 65}, "k", "longer than 64 characters")
    rejects(boolean, {"k": 1}, "k", "must be true or false")
    rejects(array, {"k": [0] * 33}, "k", "more than 32 entries")
    rejects(array, {"k": {}}, "k", "must be a list")
    try:
        obj({"typo": 1}, "cfg", ("good",))
    except ConfigError as e:
        assert e.path == "cfg.typo" and e.reason == "unknown key (allowed: good)"
    else:
        raise AssertionError("unknown key accepted")
