# The user's settings: one JSON file in storage (settings.json) holding only
# what differs from the defaults below. A missing file means defaults; a
# corrupt or invalid one means defaults too, with the reason kept in
# `Settings.error` for the log and the faces, and the file left untouched so
# the user can fix it. Writes are atomic (temporary file + rename), so a
# power cut never leaves half a file.
import gc
import sys

import schema
from control import COMMAND_NAMES, SAFE_COMMANDS
from link.engine import LinkConfig

from statestore import TooLarge, read_json, write_json_atomic

FILE = "settings.json"
MAX_FILE_BYTES = 16384  # a full config is ~2 KB; a larger file is refused unread
MAX_DEPTH = 12  # the deepest real config (nested rule conditions) is ~10
MAX_VALUES = 600  # three outputs with every condition they may have use ~400
FLAGS = 8  # API flags ({"flag": n} conditions, POST /api/flags)
PROTOCOLS = ("auto", "old", "new")  # index = PROTOCOL_* (0 = auto)
_MIN_TOKEN = 16
_TOP_KEYS = ("board", "api_token", "http_port", "wifi", "link", "outputs", "acc", "energy", "sense_check_s",
             "control", "time", "watchdog")
# A fresh bridge switches nothing until its outputs are configured.
DEFAULT_OUTPUTS = {"outputs": [{"name": "do1", "mode": "off"}, {"name": "do2", "mode": "off"},
                               {"name": "do3", "mode": "off"}]}
_LINK_KEYS = (
    "poll_ms",
    "poll_floor_ms",
    "reply_timeout_ms",
    "stale_ms",
    "lost_ms",
    "gap_ms",
    "quiet_ms",
    "listen_first_ms",
    "protocol",
    "baud",
    "password",
    "invert_current",
    "probes_fitted",
    "passive",
    "passive_hold_ms",
    "command_timeout_ms",
    "command_attempts",
    "verify_frames",
    "rx",
)
RX_MODES = ("wait", "poll")  # link.rx: wait on the UART (default), or read it every 10 ms (the old design)


class Settings:
    def __init__(self):
        self.board = ""  # "" = hw's default board
        self.api_token = ""  # "" = control over HTTP disabled
        self.http_port = 80
        self.wifi_ssid = ""  # "" = no network: set-up mode
        self.wifi_password = ""
        self.wifi_hostname = ""  # "" = antbridge-XXXX (the set-up network's name)
        self.wifi_ap_password = ""  # the set-up network's WPA2 passphrase; "" = an open network
        self.wifi_setup_after_ms = 300000  # failing this long: set-up mode (0 = never)
        self.ntp_server = "pool.ntp.org"  # host or host:port; "" = no NTP
        self.link = LinkConfig()
        self.link_poll_rx = False  # link.rx "poll": bmslink reads the UART every 10 ms instead of waiting
        self.outputs: object = DEFAULT_OUTPUTS  # the rules config (lib/rules format; None once compiled)
        self.program: object = None  # outputs compiled (rules.program.Program); None = compile DEFAULT_OUTPUTS
        self.acc: object = None  # acc.AccConfig; None = defaults
        self.acc_rule_output = ""  # a rules output whose state is ACC's rule flag ("" = none)
        self.acc_rule_flag = -1  # or an API flag (-1 = none)
        self.energy: object = None  # energy.EnergyConfig; None = defaults
        self.flag_count = FLAGS
        self.sense_check_s = 2.0  # sense input disagreeing with its output this long = alarm (0 = off)
        self.allow_commands = ()  # dangerous BMS commands opted in (control.COMMAND_NAMES beyond SAFE_COMMANDS)
        self.tz_offset_min = 0  # local time = UTC + this (quiet hours, schedules)
        self.watchdog = True  # start the hardware watchdog
        self.clean_run_s = 300  # running this long clears the crashed-boots count
        self.error: str | None = None  # why the file was not used (None = it was, or there is none)
        self.found = False  # a settings file existed
        self.rejected: tuple = ()  # sections not applied ("all": the whole file)


def _link(d, path):
    schema.obj(d, path, _LINK_KEYS)
    c = LinkConfig()
    c.poll_ms = schema.integer(d, "poll_ms", path, c.poll_ms, 10, 600000)
    c.poll_floor_ms = schema.integer(d, "poll_floor_ms", path, 250, 50, 5000)
    c.reply_timeout_ms = schema.integer(d, "reply_timeout_ms", path, c.reply_timeout_ms, 0, 10000)
    c.stale_ms = schema.integer(d, "stale_ms", path, c.stale_ms, 0, 3600000)
    c.lost_ms = schema.integer(d, "lost_ms", path, c.lost_ms, 0, 3600000)
    c.gap_ms = schema.integer(d, "gap_ms", path, c.gap_ms, 5, 1000)
    c.quiet_ms = schema.integer(d, "quiet_ms", path, c.quiet_ms, 0, 1000)
    c.listen_first_ms = schema.integer(d, "listen_first_ms", path, c.listen_first_ms, 0, 10000)
    c.protocol = PROTOCOLS.index(schema.string(d, "protocol", path, "auto", PROTOCOLS))
    c.baud = schema.integer(d, "baud", path, c.baud, 0, 19200)
    if c.baud not in (0, 9600, 19200):
        raise schema.ConfigError(schema.join(path, "baud"), "must be 0 (auto), 9600 or 19200")
    if d.get("password") is not None:
        c.apply({"password": schema.string(d, "password", path, max_len=16) or None})
    c.invert_current = schema.boolean(d, "invert_current", path, c.invert_current)
    c.probes_fitted = schema.integer(d, "probes_fitted", path, c.probes_fitted, -1, 6)
    c.passive = schema.boolean(d, "passive", path, c.passive)
    c.passive_hold_ms = schema.integer(d, "passive_hold_ms", path, c.passive_hold_ms, 1000, 600000)
    c.command_timeout_ms = schema.integer(d, "command_timeout_ms", path, c.command_timeout_ms, 1000, 120000)
    c.command_attempts = schema.integer(d, "command_attempts", path, c.command_attempts, 1, 10)
    c.verify_frames = schema.integer(d, "verify_frames", path, c.verify_frames, 1, 20)
    return c


def compile_outputs(d):
    """Validate a rules config by compiling it: the Program, or
    schema.ConfigError(path, reason). The compiler (~10 KB of code) is
    unloaded again: it runs once per boot or config change."""
    import rules.compile as rules_compile  # noqa: E402

    try:
        return rules_compile.compile_program(d)
    except schema.ConfigError as e:
        raise schema.ConfigError(schema.join("outputs", e.path) if e.path else "outputs", e.reason)
    finally:
        del rules_compile
        sys.modules.pop("rules.compile", None)
        pkg = sys.modules.get("rules")
        if pkg is not None and "compile" in pkg.__dict__:
            delattr(pkg, "compile")
        gc.collect()


def _acc(d, s):
    import acc

    d = dict(schema.obj(d, "acc", ("wake", "keep_awake", "supply", "rule_output", "rule_flag")))
    s.acc_rule_output = schema.string(d, "rule_output", "acc", "", max_len=24)
    s.acc_rule_flag = schema.integer(d, "rule_flag", "acc", -1, -1, FLAGS - 1)
    d.pop("rule_output", None)
    d.pop("rule_flag", None)
    s.acc = acc.AccConfig(d, "acc")



def parse(d):
    """A Settings from a decoded settings.json; raises schema.ConfigError."""
    schema.obj(d, "", _TOP_KEYS)
    s = Settings()
    s.board = schema.string(d, "board", "", s.board, max_len=32)
    s.api_token = _token(d)
    s.http_port = schema.integer(d, "http_port", "", s.http_port, 1, 65535)
    s.wifi_ssid, s.wifi_password, s.wifi_hostname, s.wifi_ap_password, s.wifi_setup_after_ms, s.ntp_server = \
        wifi_section(d.get("wifi", {}))
    s.link = _link(d.get("link", {}), "link")
    s.link_poll_rx = schema.string(d.get("link", {}), "rx", "link", "wait", RX_MODES) == "poll"
    s.sense_check_s = schema.number(d, "sense_check_s", "", s.sense_check_s, 0.0, 600.0)
    ctl = schema.obj(d.get("control", {}), "control", ("allow_commands",))
    allow = schema.array(ctl, "allow_commands", "control", [], max_len=len(COMMAND_NAMES))
    for i in range(len(allow)):
        if allow[i] not in COMMAND_NAMES or allow[i] in SAFE_COMMANDS:
            raise schema.ConfigError("control.allow_commands[" + str(i) + "]",
                                     "not a command that needs an opt-in: " + str(allow[i])[:32])
    s.allow_commands = tuple(allow)
    t = schema.obj(d.get("time", {}), "time", ("tz_offset_min",))
    s.tz_offset_min = schema.integer(t, "tz_offset_min", "time", 0, -720, 840)
    w = schema.obj(d.get("watchdog", {}), "watchdog", ("enabled", "clean_run_s"))
    s.watchdog = schema.boolean(w, "enabled", "watchdog", True)
    s.clean_run_s = schema.integer(w, "clean_run_s", "watchdog", 300, 5, 86400)
    if "acc" in d:
        _acc(d["acc"], s)
    if "energy" in d:
        import energy

        s.energy = energy.EnergyConfig(d["energy"], "energy")
    if "outputs" in d:  # last: the biggest check
        s.program = compile_outputs(d["outputs"])
        s.outputs = d["outputs"]
    if s.acc_rule_output and s.acc_rule_output not in _names(s.outputs):
        raise schema.ConfigError("acc.rule_output", "no output named " + s.acc_rule_output)
    return s


def _token(d):
    token = schema.string(d, "api_token", "", "", max_len=128)
    if 0 < len(token) < _MIN_TOKEN:  # a guessable token is no authentication
        raise schema.ConfigError("api_token", "at least %d characters (or empty: control off)" % _MIN_TOKEN)
    return token


_WIFI_KEYS = ("ssid", "password", "hostname", "ap_password", "setup_after_min", "ntp_server")
_NAME_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789-"


def _passphrase(w, key, lo, hi):
    v = schema.string(w, key, "wifi", "", max_len=hi)
    if 0 < len(v) < lo:
        raise schema.ConfigError("wifi." + key, "%d to %d characters (or empty: an open network)" % (lo, hi))
    return v


def _host_name(v, path, dots):
    # A DNS name (hostname: one label; ntp_server: labels with dots).
    if not v or len(v) > 63 or v[0] == "-" or v[-1] == "-" or v[0] == "." or v[-1] == ".":
        raise schema.ConfigError(path, "letters, digits and '-' (not first or last), at most 63")
    for c in v.lower():
        if c not in _NAME_CHARS and not (dots and c == "."):
            raise schema.ConfigError(path, "letters, digits and '-' (not first or last), at most 63")


def wifi_section(w):
    """The "wifi" section checked: (ssid, password, hostname, ap_password,
    setup_after_ms, ntp_server); raises schema.ConfigError."""
    schema.obj(w, "wifi", _WIFI_KEYS)
    ssid = schema.string(w, "ssid", "wifi", "", max_len=32)
    if len(ssid.encode()) > 32:
        raise schema.ConfigError("wifi.ssid", "longer than 32 bytes")
    password = _passphrase(w, "password", 8, 64)  # WPA2: 8-63 characters, or 64 hex digits
    hostname = schema.string(w, "hostname", "wifi", "", max_len=32)
    if hostname:
        _host_name(hostname, "wifi.hostname", False)
    ap_password = _passphrase(w, "ap_password", 8, 63)
    after = schema.number(w, "setup_after_min", "wifi", 5.0, 0.0, 1440.0)
    ntp = schema.string(w, "ntp_server", "wifi", "pool.ntp.org", max_len=64)
    if ntp:
        host, _, port = ntp.partition(":")
        _host_name(host, "wifi.ntp_server", True)
        if port and not (port.isdigit() and 0 < int(port) < 65536):
            raise schema.ConfigError("wifi.ntp_server", "port must be 1..65535")
    return ssid, password, hostname, ap_password, int(after * 60000), ntp


def update(root, wifi=None, api_token=None):
    """Merge `wifi` (keys of the "wifi" section) and `api_token` into
    settings.json, check what changed, and write it atomically. The rest of
    the file is kept as it is (it was checked at boot, and a change of
    network must not wait on an unrelated section). A file that is not JSON
    is left alone: schema.ConfigError, as for an invalid value."""
    path = root + FILE
    try:
        d = read_json(path, MAX_FILE_BYTES, MAX_DEPTH, MAX_VALUES)
    except OSError:
        d = {}  # no file yet
    except ValueError as e:  # not JSON, or TooLarge
        raise schema.ConfigError(FILE, (str(e) if isinstance(e, TooLarge) else "not valid JSON") +
                                 ": fix or remove it first")
    schema.obj(d, "")
    if wifi:
        w = dict(schema.obj(d.get("wifi", {}), "wifi"))
        w.update(wifi)
        wifi_section(w)
        d["wifi"] = w
    if api_token is not None:
        d["api_token"] = api_token
        _token(d)
    write_json_atomic(path, d)
    return d


def _names(rules):
    names = []
    outs = rules.get("outputs", [])
    for i in range(len(outs)):
        names.append(outs[i].get("name", "do" + str(i + 1)))
    return names


def load(root):
    """Settings from root/settings.json; never raises."""
    path = root + FILE
    try:
        d = read_json(path, MAX_FILE_BYTES, MAX_DEPTH, MAX_VALUES)
    except OSError:
        return Settings()  # first boot: defaults
    except TooLarge as e:
        s = Settings()
        s.found = True
        s.rejected = ("all",)
        s.error = FILE + ": " + str(e) + "; using defaults"
        return s
    except (ValueError, MemoryError):
        s = Settings()
        s.found = True
        s.rejected = ("all",)
        s.error = FILE + ": not valid JSON; using defaults"
        return s
    s, error, rejected = _parse_sections(d)
    s.error = error
    s.rejected = rejected
    s.found = True
    return s


def _parse_sections(d):
    """(Settings, error or None). A bad outputs/acc/energy section falls
    back to that section's defaults alone (the rest of the file, the API
    token included, still applies); any other error means all defaults."""
    errors = []
    rejected = []
    if isinstance(d, dict):
        d = dict(d)
    for _ in range(len(_SECTIONS) + 1):
        try:
            s = parse(d)
            break
        except schema.ConfigError as e:
            section = e.path.split(".")[0].split("[")[0]
            if section in _SECTIONS and isinstance(d, dict) and section in d:
                errors.append(FILE + ": " + e.path + ": " + e.reason + "; section " + section + " uses its defaults")
                rejected.append(section)
                d.pop(section)
                continue
            errors.append(FILE + ": " + e.path + ": " + e.reason + "; using defaults")
            rejected.append("all")
            s = Settings()
            break
    else:
        s = Settings()
    return s, "; ".join(errors) if errors else None, tuple(rejected)


_SECTIONS = ("outputs", "acc", "energy")


def boot_load(root):
    """load() plus the outputs compiled (the compiler is the biggest
    transient allocation of a boot: main.py calls this first, before the
    firmware's other modules take the heap)."""
    s = load(root)
    if s.error:
        print("settings: ERROR", s.error)
    elif not s.found:
        print("settings: no", FILE, "- using defaults")
    if s.program is None:
        s.program = compile_outputs(s.outputs)
    s.outputs = None  # compiled: the Program holds what the firmware needs
    return s


def save(root, d):
    """Validate d and write it atomically; raises schema.ConfigError."""
    parse(d)
    write_json_atomic(root + FILE, d)
