# Settings first, while the heap is nearly empty: validating the outputs
# compiles the rules (a large, short-lived allocation). The settings module
# itself is unloaded after: its parser is needed once per boot. Then the
# boot record (crashed boots, safe mode), then the firmware.
import gc
import sys

import hw
import settings

s = settings.boot_load(hw.storage_root())
del settings
sys.modules.pop("settings", None)
gc.collect()
import safemode  # noqa: E402

boot = safemode.BootRecord(hw.storage_root()).begin()
if boot.safe_mode:
    print("antbridge: SAFE MODE after", boot.crashed, "crashed boots")
import app  # noqa: E402

app.main(s, hw, boot)
