# Minute-of-day windows: keep-awake schedules, quiet hours, time conditions.


def in_window(minute, start, end):
    """minute-of-day in [start, end), wrapping past midnight when end <= start
    (start == end: the whole day); False for an unknown clock (minute < 0)."""
    if minute < 0:
        return False
    if start < end:
        return start <= minute < end
    return minute >= start or minute < end
