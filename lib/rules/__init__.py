# The DO1..DO3 relay rule engine: a config dict compiled into flat int
# arrays (compile.py), evaluated without allocating (engine.py) over signals
# pulled from the status model (signals.py). Import the submodules directly:
#   from rules import compile as rules_compile; engine = rules_compile.build(cfg, log)
