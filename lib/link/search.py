# The link's protocol search: ant.detect's order (NEW then OLD; 19200 then
# 9600), but once something has worked, every other attempt goes back to it.
#
# A BMS that merely slept or lost its supply comes back with the protocol and
# baud it had, so after a loss the attempt that worked is asked again at
# least every second attempt: the link recovers within two reply timeouts of
# the BMS answering again, instead of a whole round of six attempts later,
# while a swapped BMS of another generation is still found.
from ant.detect import Detector


class Search(Detector):
    def __init__(self, protocols, bauds):
        Detector.__init__(self, protocols, bauds)
        self._cursor = 0  # the last attempt tried other than the remembered one
        self._others_tried = 0

    def lost(self):
        Detector.lost(self)
        self._cursor = self.index
        self._others_tried = 0

    def remember(self, protocol, baud, variant=0):
        found = Detector.remember(self, protocol, baud, variant)
        if found:
            self._cursor = self.index
            self._others_tried = 0
        return found

    def on_timeout(self):
        """The current attempt went unanswered: choose the next one. Returns
        True when every attempt has been tried once more without an answer."""
        home = self.remembered
        n = len(self.attempts)
        if home < 0 or n == 1:
            return Detector.on_timeout(self)
        if self.locked:
            self.locked = False
            return False  # first retry after a loss uses the same attempt
        if self.index != home:
            self.index = home
            return False
        cursor = (self._cursor + 1) % n
        if cursor == home:
            cursor = (cursor + 1) % n
        self._cursor = cursor
        self.index = cursor
        self._others_tried += 1
        if self._others_tried >= n - 1:
            self._others_tried = 0
            self.rounds += 1
            return True
        return False

    def attempt(self):
        """(protocol, baud, request variant) that last worked, or None."""
        if self.remembered < 0:
            return None
        return self.attempts[self.remembered]
