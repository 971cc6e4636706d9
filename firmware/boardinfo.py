# The board as the hardware layer needs it: plain numbers per role, taken
# from lib/board.py's validated Board. The validator (its per-chip rule
# tables are ~20 KB of RAM) is unloaded right after, since a board is loaded
# once per boot.
import gc
import json
import sys


class Pin:
    def __init__(self, pin, active, boot=0, pull="none"):
        self.pin = pin
        self.active = active  # the pin level that means on / asserted
        self.boot = boot  # outputs: logical state at boot
        self.pull = pull  # inputs: "none", "up", "down"

    def level(self, on):
        return self.active if on else 1 - self.active


class BoardInfo:
    def __init__(self, b):
        self.name = b.name
        self.chip = b.chip
        self.uart_id = b.uart_id
        self.uart_tx = b.uart_tx
        self.uart_rx = b.uart_rx
        self.outputs = {}  # role -> Pin ("do1".."do3", "acc", "supply_enable", "led")
        self.inputs = {}  # role -> Pin ("do1_sense".."do3_sense", "boot_button")
        for o in b.outputs():
            if o.kind == "gpio":  # an addressable LED is not a plain pin
                self.outputs[o.role] = Pin(o.pin, o.active, o.boot)
        for i in b.inputs():
            self.inputs[i.role] = Pin(i.pin, i.active, 0, i.pull)


def load(path):
    """Validate boards/<name>.json with lib/board.py (raises
    schema.ConfigError naming the bad pin) and keep only the numbers."""
    import board as board_lib

    try:
        info = BoardInfo(board_lib.load_file(path))
    finally:
        del board_lib
        sys.modules.pop("board", None)
        gc.collect()
    return info


_current = None


def current(boards_dir, settings_path, default):
    """The board settings.json names (or default): <boards_dir>/<name>.json,
    validated and loaded once per boot."""
    global _current
    if _current is None:
        _current = load(boards_dir + "/" + named_in_settings(settings_path, default) + ".json")
    return _current


def named_in_settings(settings_path, default):
    """The board named by settings.json's "board" key, read leniently
    (boot.py needs it before the settings are validated), or default."""
    try:
        with open(settings_path) as f:
            name = json.load(f).get("board")
        if isinstance(name, str) and name:
            return name
    except Exception:  # absent or corrupt: the settings loader reports it
        pass
    return default
