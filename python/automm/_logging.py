"""The C++ library's messages go to the `automm` logger; its training progress to a
tqdm bar when tqdm is installed (tqdm.auto: a widget in notebooks), else to a
one-line bar on stderr (terminals, and notebooks, which honour carriage returns)."""
import atexit
import contextlib
import logging
import sys
import threading
import time

from . import _automm

logger = logging.getLogger("automm")

try:
    from tqdm.auto import tqdm as _tqdm
except ImportError:  # tqdm is optional
    _tqdm = None

_local = threading.local()  # per thread: is the fit running there showing progress?


def configure(verbosity):
    """AutoMM's verbosity: 0 silent, 1 warnings, 2 (default) information and progress, 3+ debug."""
    level = {0: logging.CRITICAL + 1, 1: logging.WARNING, 2: logging.INFO}.get(verbosity, logging.DEBUG)
    logger.setLevel(level)
    if not logger.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)


@contextlib.contextmanager
def progress_shown(shown):
    previous = getattr(_local, "shown", False)
    _local.shown = shown
    try:
        yield
    finally:
        _local.shown = previous


class _TextBar:
    def __init__(self):
        self.stream = sys.stderr
        interactive = getattr(self.stream, "isatty", lambda: False)() or "ipykernel" in sys.modules
        self.enabled = interactive
        self.last = 0.0
        self.open = False

    def update(self, epoch, max_epochs, batch, batches, loss):
        now = time.monotonic()
        if not self.enabled or (now - self.last < 0.1 and batch + 1 < batches):
            return
        self.last = now
        width = 24
        filled = width * (batch + 1) // max(batches, 1)
        self.stream.write(f"\rEpoch {epoch + 1}/{max_epochs} [{'#' * filled}{'.' * (width - filled)}] "
                          f"{batch + 1}/{batches} loss {loss:.4f}   ")
        self.stream.flush()
        self.open = True

    def close(self):
        if self.open:
            self.stream.write("\r\033[K")
            self.stream.flush()
        self.open = False


class _TqdmBar:
    def __init__(self):
        self.bar = None
        self.epoch = None

    def update(self, epoch, max_epochs, batch, batches, loss):
        if self.bar is None or self.epoch != epoch:
            self.close()
            self.bar = _tqdm(total=batches, desc=f"Epoch {epoch + 1}/{max_epochs}", leave=False)
            self.epoch = epoch
        self.bar.n = batch + 1
        self.bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
        self.bar.refresh()

    def close(self):
        if self.bar is not None:
            self.bar.close()
        self.bar = None


class PythonSink:
    """What the C++ library calls (through automm._automm.set_log_sink)."""

    def message(self, level, text):
        self.progress_end()
        for line in text.split("\n"):
            logger.log(level, line)

    def progress(self, epoch, max_epochs, batch, batches, step, loss):
        if not getattr(_local, "shown", False):
            return
        bar = getattr(_local, "bar", None)
        if bar is None:
            bar = _local.bar = _TqdmBar() if _tqdm is not None else _TextBar()
        bar.update(epoch, max_epochs, batch, batches, loss)

    def progress_end(self):
        bar = getattr(_local, "bar", None)
        if bar is not None:
            bar.close()
            _local.bar = None


_automm.set_log_sink(PythonSink())
# Before the interpreter goes, the library goes back to stderr.
atexit.register(_automm.set_log_sink, None)
