# Config dict -> validated Program -> fresh Engine. Every bad field raises
# schema.ConfigError naming its path; nothing is built until the whole
# config passed, so a rejected config leaves the running engine untouched.
# Runs rarely (boot, API config change): this code may allocate.
import json

from schema import ConfigError, array, boolean, integer, join, number, obj, string
from rules import program as P
from rules import signals as S
from rules.engine import Engine

_LINK_NAMES = ("ok", "stale", "lost", "asleep", "unpowered")
_OUTPUT_KEYS = (
    "name", "mode", "when", "on_delay_s", "off_delay_s", "min_on_s", "min_off_s", "max_on_s",
    "max_switches_per_hour", "impulse_s", "blink", "exercise", "debounce", "quiet_hours",
    "fail_safe", "stale_after_s", "latch", "inverted",
)
_DAY_S = 86400
_MAX_ON_S = 172800  # 2 days: timers stay well inside the 2**28 ms ticks margin
_MAX_SCALED = 0x1FFFFFFF  # |threshold| in signal units: x +- 1, x +- hyst stay small ints


def build(config, log):
    """Validate and compile `config` into a new Engine writing to `log`."""
    return Engine(compile_program(config), log)


def compile_program(config):
    obj(config, "", ("outputs", "interlocks", "stale_after_s"))
    outs = array(config, "outputs", "", max_len=P.MAX_OUTPUTS)
    if not outs:
        raise ConfigError("outputs", "needs at least one output")
    default_stale = number(config, "stale_after_s", "", 10.0, 1.0, 3600.0)
    names = []
    for i, out in enumerate(outs):
        path = join("outputs", i)
        obj(out, path, _OUTPUT_KEYS)
        name = string(out, "name", path, "do" + str(i + 1), max_len=24)
        if name in names:
            raise ConfigError(join(path, "name"), "duplicate output name")
        names.append(name)
    # Conditions first, to size the node pool.
    trees = []
    total = 0
    for i, out in enumerate(outs):
        path = join("outputs", i)
        nodes = []
        if "when" in out:
            c = _Cond(names, nodes, i)
            c.node(out["when"], join(path, "when"), 1)
        trees.append(nodes)
        total += len(nodes)
    prog = P.Program(len(outs), total)
    k = 0
    for i, out in enumerate(outs):
        path = join("outputs", i)
        prog.names[i] = names[i]
        prog.start[i] = k
        texts = prog.leaf_text[i]
        for node in trees[i]:
            op, fl, unk, a, b, c, qb, qc, text = node
            prog.op[k] = op
            prog.fl[k] = fl
            prog.unk[k] = unk
            prog.a[k] = a
            prog.b[k] = b
            prog.c[k] = c
            prog.qb[k] = qb
            prog.qc[k] = qc
            if text is not None:
                prog.leaf[k] = len(texts)
                texts.append(text)
            k += 1
        prog.end[i] = k
        _output(prog, i, out, path, default_stale, bool(trees[i]))
    _interlocks(prog, config, names)
    return prog


def _ms(d, key, path, hi, default=0.0):
    return int(round(number(d, key, path, default, 0.0, hi) * 1000))


def _minute(v, path):
    """"HH:MM" or minutes 0..1439."""
    if isinstance(v, str):
        parts = v.split(":")
        if len(parts) == 2 and parts[0].isdigit() and parts[1].isdigit():
            h = int(parts[0])
            m = int(parts[1])
            if h < 24 and m < 60:
                return h * 60 + m
        raise ConfigError(path, "must be a time \"HH:MM\"")
    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < 1440:
        raise ConfigError(path, "must be a time \"HH:MM\" or a minute of the day 0..1439")
    return v


def _window(d, key, path):
    p = join(path, key)
    w = obj(d[key], p, ("from", "to"))
    if "from" not in w or "to" not in w:
        raise ConfigError(p, "needs \"from\" and \"to\"")
    a = _minute(w["from"], join(p, "from"))
    b = _minute(w["to"], join(p, "to"))
    if a == b:
        raise ConfigError(p, "\"from\" and \"to\" must differ")
    return a, b


def _choice(d, key, path, names, default):
    return names.index(string(d, key, path, default, choices=names))


def _output(prog, i, out, path, default_stale, has_when):
    mode = _choice(out, "mode", path, P.MODE_NAMES, "auto" if has_when else "off")
    prog.mode[i] = mode
    prog.on_delay_ms[i] = _ms(out, "on_delay_s", path, _DAY_S)
    prog.off_delay_ms[i] = _ms(out, "off_delay_s", path, _DAY_S)
    prog.min_on_ms[i] = _ms(out, "min_on_s", path, _DAY_S)
    prog.min_off_ms[i] = _ms(out, "min_off_s", path, _DAY_S)
    prog.max_on_ms[i] = _ms(out, "max_on_s", path, _MAX_ON_S)
    prog.rate_cap[i] = integer(out, "max_switches_per_hour", path, 0, 0, P.MAX_RATE)
    prog.impulse_ms[i] = _ms(out, "impulse_s", path, 3600)
    prog.debounce[i] = integer(out, "debounce", path, 1, 1, 100)
    prog.stale_ms[i] = int(round(number(out, "stale_after_s", path, default_stale, 1.0, 3600.0) * 1000))
    prog.inverted[i] = 1 if boolean(out, "inverted", path, False) else 0
    prog.latch[i] = _choice(out, "latch", path, P.LATCH_NAMES, "none")
    if "blink" in out:
        p = join(path, "blink")
        b = obj(out["blink"], p, ("on_s", "off_s"))
        for key in ("on_s", "off_s"):
            if key not in b:
                raise ConfigError(join(p, key), "required")
        prog.blink_on_ms[i] = _ms(b, "on_s", p, 3600)
        prog.blink_off_ms[i] = _ms(b, "off_s", p, 3600)
        if prog.blink_on_ms[i] < 100 or prog.blink_off_ms[i] < 100:
            raise ConfigError(p, "on_s and off_s must be >= 0.1")
    if prog.impulse_ms[i] and prog.blink_on_ms[i]:
        raise ConfigError(join(path, "blink"), "cannot be combined with impulse_s")
    if "exercise" in out:
        p = join(path, "exercise")
        e = obj(out["exercise"], p, ("every_days", "minutes", "at"))
        prog.ex_days[i] = integer(e, "every_days", p, None, 1, 365)
        prog.ex_ms[i] = integer(e, "minutes", p, None, 1, 24 * 60) * 60000
        prog.ex_at[i] = _minute(e["at"], join(p, "at")) if "at" in e else 0
    if "quiet_hours" in out:
        prog.quiet_from[i], prog.quiet_to[i] = _window(out, "quiet_hours", path)
    fs = out.get("fail_safe", "off")
    p = join(path, "fail_safe")
    if isinstance(fs, str):
        s = _choice(out, "fail_safe", path, P.SAFE_NAMES, "off")
        prog.safe_stale[i] = prog.safe_lost[i] = prog.safe_error[i] = s
    else:
        obj(fs, p, ("stale", "lost", "error"))
        prog.safe_stale[i] = _choice(fs, "stale", p, P.SAFE_NAMES, "off")
        prog.safe_lost[i] = _choice(fs, "lost", p, P.SAFE_NAMES, "off")
        prog.safe_error[i] = _choice(fs, "error", p, P.SAFE_NAMES, "off")
    if mode == P.MODE_AUTO and not has_when and not prog.ex_days[i]:
        raise ConfigError(join(path, "when"), "required for mode \"auto\"")
    for n in range(prog.start[i], prog.end[i]):
        if prog.fl[n] & P.F_QUIET and prog.quiet_from[i] < 0:
            raise ConfigError(join(path, "quiet_hours"), "required by a \"quiet\" threshold")


def _interlocks(prog, config, names):
    groups = array(config, "interlocks", "", [], max_len=P.MAX_OUTPUTS)
    n = prog.count
    for g, group in enumerate(groups):
        path = join("interlocks", g)
        obj(group, path, ("outputs", "wait_s"))
        members = array(group, "outputs", path, max_len=P.MAX_OUTPUTS)
        if len(members) < 2:
            raise ConfigError(join(path, "outputs"), "needs at least two outputs")
        wait = _ms(group, "wait_s", path, 3600)
        idx = []
        for k, m in enumerate(members):
            j = _output_ref(m, names, join(join(path, "outputs"), k))
            if j in idx:
                raise ConfigError(join(join(path, "outputs"), k), "listed twice")
            idx.append(j)
        for a in idx:
            for b in idx:
                if a != b:
                    prev = prog.il_wait[a * n + b]
                    prog.il_wait[a * n + b] = wait if wait > prev else prev


def _output_ref(v, names, path):
    if isinstance(v, str):
        if v in names:
            return names.index(v)
        raise ConfigError(path, "no output named \"" + v + "\"")
    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < len(names):
        raise ConfigError(path, "must be an output name or index 0.." + str(len(names) - 1))
    return v


def _scaled(d, key, path, scale, default=None, lo=None):
    """d[key] * scale as an int, bounded so that the thresholds derived from
    it (x + 1, x - hyst) stay small ints on the ESP32 (|v| < 2**30): a bigger
    one would be a heap int read on every evaluation, or not fit array("i")."""
    v = number(d, key, path, default, lo) * scale
    if not -_MAX_SCALED <= v <= _MAX_SCALED:
        raise ConfigError(join(path, key), "must be within +-" + str(_MAX_SCALED // scale))
    return int(round(v))


def _thresholds(spec, path, scale, allow_quiet):
    """{"on": a, "off": b} | {"above"|"below": x, "hyst": h} -> (high, on, off)."""
    keys = ("on", "off", "above", "below", "hyst", "quiet") if allow_quiet else ("on", "off", "above", "below", "hyst")
    obj(spec, path, keys)
    if "on" in spec or "off" in spec:
        for k in ("above", "below", "hyst"):
            if k in spec:
                raise ConfigError(join(path, k), "use either on/off or above/below with hyst")
        on = _scaled(spec, "on", path, scale)
        off = _scaled(spec, "off", path, scale)
        if on == off:
            raise ConfigError(join(path, "off"), "must differ from \"on\" (that gap is the hysteresis)")
        return on > off, on, off
    hyst = _scaled(spec, "hyst", path, scale, 0.0, 0.0)
    if "above" in spec and "below" in spec:
        raise ConfigError(join(path, "below"), "use one of above/below")
    if "above" in spec:
        x = _scaled(spec, "above", path, scale)
        return True, x + 1, x - hyst
    if "below" in spec:
        x = _scaled(spec, "below", path, scale)
        return False, x - 1, x + hyst
    raise ConfigError(path, "needs on/off or above/below")


class _Cond:
    """Flattens one output's condition tree into postfix node tuples."""

    def __init__(self, names, nodes, me):
        self.names = names
        self.nodes = nodes
        self.me = me
        self.leaves = 0

    def node(self, c, path, depth):
        if not isinstance(c, dict) or not c:
            raise ConfigError(path, "must be a condition object")
        if len(self.nodes) >= P.MAX_NODES:
            raise ConfigError(path, "more than " + str(P.MAX_NODES) + " condition nodes")
        for key, op in (("all", P.OP_ALL), ("any", P.OP_ANY)):
            if key in c:
                obj(c, path, (key,))
                if depth > P.MAX_DEPTH:
                    raise ConfigError(path, "nested deeper than " + str(P.MAX_DEPTH))
                kids = array(c, key, path, max_len=P.MAX_LEAVES)
                if not kids:
                    raise ConfigError(join(path, key), "needs at least one condition")
                for k, kid in enumerate(kids):
                    self.node(kid, join(join(path, key), k), depth + 1)
                self.nodes.append((op, 0, 0, len(kids), 0, 0, 0, 0, None))
                return
        if "not" in c:
            obj(c, path, ("not",))
            if depth > P.MAX_DEPTH:
                raise ConfigError(path, "nested deeper than " + str(P.MAX_DEPTH))
            self.node(c["not"], join(path, "not"), depth + 1)
            self.nodes.append((P.OP_NOT, 0, 0, 0, 0, 0, 0, 0, None))
            return
        self.leaf(c, path)

    def leaf(self, c, path):
        keys = [k for k in c if k != "if_unknown"]
        if len(keys) != 1:
            raise ConfigError(path, "a condition names exactly one input (plus optional if_unknown)")
        key = keys[0]
        p = join(path, key)
        self.leaves += 1
        if self.leaves > P.MAX_LEAVES:
            raise ConfigError(path, "more than " + str(P.MAX_LEAVES) + " conditions")
        unk = P.UNKNOWN_FALSE
        if "if_unknown" in c:
            u = c["if_unknown"]
            if u is False:
                unk = P.UNKNOWN_FALSE
            elif u is True:
                unk = P.UNKNOWN_TRUE
            elif u == "error":
                unk = P.UNKNOWN_ERROR
            else:
                raise ConfigError(join(path, "if_unknown"), "must be false, true or \"error\"")
        v = c[key]
        text = key + " " + json.dumps(v)
        fl = 0
        a = b = cc = qb = qc = 0
        if key in S.NUMERIC or key in S.INDEXED:
            if key in S.NUMERIC:
                a, scale = S.NUMERIC[key]
                spec = obj(v, p)
            else:
                first, count, scale = S.INDEXED[key]
                spec = obj(v, p)
                sel = "cell" if key == "cell_v" else "probe"
                idx = integer(spec, sel, p, None, 1, count)
                a = first + idx - 1
                spec = dict((k2, spec[k2]) for k2 in spec if k2 != sel)
            op = P.OP_CMP
            high, b, cc = _thresholds(spec, p, scale, True)
            fl = P.F_HIGH if high else 0
            if "quiet" in spec:
                qhigh, qb, qc = _thresholds(spec["quiet"], join(p, "quiet"), scale, False)
                if qhigh != high:
                    raise ConfigError(join(p, "quiet"), "must switch in the same direction as the normal thresholds")
                fl |= P.F_QUIET
        elif key in S.BOOLEAN:
            op = P.OP_BOOL
            a = S.BOOLEAN[key]
            b = 1 if boolean(c, key, path) else 0
        elif key in ("protection", "warning"):
            op = P.OP_BITS
            a = 0 if key == "protection" else 1
            if v == "any":
                b, cc = -1, 0xFF
            else:
                spec = obj(v, p, ("byte", "bit", "mask"))
                b = integer(spec, "byte", p, None, 0, 7)
                if ("bit" in spec) == ("mask" in spec):
                    raise ConfigError(p, "needs one of \"bit\" (0..7) or \"mask\" (1..255)")
                if "bit" in spec:
                    cc = 1 << integer(spec, "bit", p, None, 0, 7)
                else:
                    cc = integer(spec, "mask", p, None, 1, 255)
        elif key == "link":
            op = P.OP_LINK
            states = [v] if isinstance(v, str) else v
            if not isinstance(states, list) or not states:
                raise ConfigError(p, "must be a link state or a list of them: " + ", ".join(_LINK_NAMES))
            for s in states:
                if s not in _LINK_NAMES:
                    raise ConfigError(p, "unknown link state (allowed: " + ", ".join(_LINK_NAMES) + ")")
                a |= 1 << _LINK_NAMES.index(s)
        elif key in ("output_on", "output_off"):
            op = P.OP_OUTPUT
            a = _output_ref(v, self.names, p)
            if a == self.me:
                raise ConfigError(p, "an output cannot depend on itself")
            b = 1 if key == "output_on" else 0
        elif key == "time":
            op = P.OP_TIME
            a, b = _window(c, key, path)
        elif key == "flag":
            op = P.OP_FLAG
            a = integer(c, key, path, None, 0, 31)
        else:
            raise ConfigError(p, "unknown input")
        self.nodes.append((op, fl, unk, a, b, cc, qb, qc, text))
