# The BMS link: a sans-IO engine (polling, autodetection, display coexistence,
# command transactions, diagnosis) and the status model the faces read.
