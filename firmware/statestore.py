# What the firmware keeps across a reboot besides the settings: the energy
# counters and the rules engine's persistent state (persisted overrides,
# latched trips, time-on counters), in one small JSON file in storage
# (state.json). Writes are atomic (temporary file + rename), so a power cut
# leaves the old file or the new one, never half of one. A corrupt or
# unreadable file is reported and the firmware starts from zero.
import json
import os

FILE = "state.json"


class StateStore:
    def __init__(self, root):
        self.path = root + FILE
        self.data = {}  # "energy": Energy.to_dict(), "outputs": Engine.persistent_state()
        self.error = None  # why the file was not used at boot (None = it was, or there was none)
        self.saves = 0
        self.save_errors = 0

    def load(self):
        try:
            with open(self.path) as f:
                text = f.read()
        except OSError:
            return self.data  # first boot
        try:
            d = json.loads(text)
        except ValueError:
            d = None
        if not isinstance(d, dict):
            self.error = FILE + ": corrupt; counters start from zero"
            print("state: ERROR", self.error)
            return self.data
        self.data = d
        return d

    def save(self, key, value):
        """Replace one part and write the whole file atomically; False (and
        counted) when storage failed."""
        self.data[key] = value
        tmp = self.path + ".tmp"
        try:
            with open(tmp, "w") as f:
                json.dump(self.data, f)
            os.rename(tmp, self.path)
        except OSError as e:
            self.save_errors += 1
            print("state: ERROR saving", FILE, ":", e)
            return False
        self.saves += 1
        return True
