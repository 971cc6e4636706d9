# Runs first at power-up: put every output (DO1-DO3, ACC, supply enable) at
# its boot level from the board file before anything slow happens, so a
# relay never floats while the firmware starts.
import hw  # boot_outputs(): lib/board.boot_levels() semantics (gpio outputs at level(boot))

try:
    hw.boot_outputs()
except Exception as e:  # no board file yet: app.py reports it; never block the REPL
    print("boot: outputs not set:", e)
