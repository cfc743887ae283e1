"""A worker's stop request: SIGTERM or Ctrl-C sets it, and the training loop checks it after every batch.

Its own small module so that ``python -m eipviz train --run-id`` installs it before importing Keras (seconds):
a Stop pressed right after the scheduler started the worker then still ends the run ``cancelled``,
where Python's default SIGTERM handler would kill it and the run would be reaped as ``failed``.
"""

import signal


class StopFlag:
    """Set by SIGTERM/SIGINT; checked after every batch."""

    def __init__(self):
        self.requested = False

    def install(self) -> "StopFlag":
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        self.requested = True
