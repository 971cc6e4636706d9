"""The simulated ANT BMS behind tools/bmssim.py.

One concept per module: `pack` (cells, charge, temperatures, balancing),
`profile` (the current the load/charger asks for), `protection` (limits,
MOSFET codes, flag bits, system log), `registers` (parameter tables of both
generations and presets), `power` (VCC, ACC, sleep, reboot), `faults`
(line faults), `wire` (paced transmission at the baud rate, wrong-baud
garbling), `display` (a second master polling the same port), `responder`
(answers requests with the library's frame builders), `device` (ties them
together: the BMS as seen from outside), `control` (the control-port line
commands) and `server` (TCP, pty and control-port I/O).

Everything except `server` is sans-IO: time is passed in as `now` (seconds,
time.monotonic() in the server), so the models are testable without sockets.
"""
