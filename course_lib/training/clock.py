"""The training loop's clock: wall seconds of training, less the time the process was stopped.

A long CPU training is paused now and then to free the cores (``kill -STOP``, Ctrl-Z) and continued later
(``kill -CONT``, ``fg``). Wall time would count the pause as training; the recorded training time (the
registry's ``train_seconds``, the "hours on 2 cores" a page prints) must not. The process cannot see the
stop, but it receives SIGCONT when continued: the clock then takes the pause to lie in the longer of the
last two steps (the signal reaches Python within the step it interrupted, or the next one) and counts that
step as long as the shorter. Other slowdowns (a second job on the same cores) are real and stay counted.
Outside the main thread no handler can be installed; the clock is then plain wall time.
"""

from __future__ import annotations

import signal
import threading
import time
from contextlib import contextmanager


class ActiveClock:
    """``elapsed()``: seconds since the start, less the stopped time; call ``step_done()`` after each step."""

    def __init__(self):
        self.start = self.last = time.perf_counter()
        self.excluded = 0.0  # stopped seconds taken out
        self.previous: float | None = None  # the last step's duration as counted
        self.continued = False  # set by SIGCONT

    def step_done(self) -> None:
        now = time.perf_counter()
        duration, self.last = now - self.last, now
        if self.continued and self.previous is not None:
            self.continued = False
            # the longer of the two steps held the pause; count it as long as the shorter
            self.excluded += abs(duration - self.previous)
            duration = min(duration, self.previous)
        self.previous = duration

    def elapsed(self) -> float:
        return time.perf_counter() - self.start - self.excluded

    @contextmanager
    def watching(self):
        """Within this block, a SIGCONT (the process continued after a stop) marks the step."""
        if not hasattr(signal, "SIGCONT") or threading.current_thread() is not threading.main_thread():
            yield self
            return

        def on_continue(signum, frame):
            self.continued = True

        previous = signal.signal(signal.SIGCONT, on_continue)
        try:
            yield self
        finally:
            signal.signal(signal.SIGCONT, previous)
