# Crashed boots and safe mode. Every boot counts itself as crashed in
# boots.json before anything can fail; a clean run of some minutes (the
# supervisor) or a clean stop clears the count. So a firmware that dies at
# start, raises out of main or gets reset by the watchdog leaves the count
# up, and after CRASHED_LIMIT such boots in a row the bridge starts in SAFE
# MODE: the outputs at their fail-safe state, no link, ACC or rules, only the
# web face (and Wi-Fi set-up) with the reason on the page and in /api/health.
from statestore import TooLarge, read_json, write_json_atomic

FILE = "boots.json"
CRASHED_LIMIT = 3


class BootRecord:
    def __init__(self, root):
        self.path = root + FILE
        self.crashed = 0  # crashed boots before this one
        self.boots = 0  # boots in total (this one included)
        self.safe_mode = False
        self.error = None

    def begin(self):
        """Read the record, decide on safe mode, and count this boot as
        crashed until clean() says otherwise. Never raises."""
        try:
            d = read_json(self.path, 256, 2, 8)
            if isinstance(d, dict):
                c = d.get("crashed", 0)
                b = d.get("boots", 0)
                self.crashed = c if isinstance(c, int) and 0 <= c < 1000 else 0
                self.boots = b if isinstance(b, int) and 0 <= b < 0x3FFFFFFF else 0
        except (OSError, TooLarge, ValueError):
            pass  # none yet, or unreadable: a fresh count
        self.safe_mode = self.crashed >= CRASHED_LIMIT
        self.boots += 1
        self._write(self.crashed + 1)
        return self

    def clean(self):
        """This boot ran cleanly: the count starts over."""
        self._write(0)

    def _write(self, crashed):
        try:
            write_json_atomic(self.path, {"crashed": crashed, "boots": self.boots})
        except OSError as e:
            self.error = str(e)
