"""A run that stops mid-epoch exits with status 0, not SIGABRT.

fairseq prefetches batches in a daemon thread (`fairseq.data.iterators.BackgroundConsumer`, for any
`--data-buffer-size` > 0, the default 10). When training ends before the epoch does (`--max-update`,
`--stop-time-hours`), that thread is still collating batches as the interpreter exits; on CPython 3.11-3.12 a
daemon thread that wakes from a torch call during finalization is ended with `pthread_exit`, whose
unwinding through torch's C++ frames calls `std::terminate`: "terminate called without an active
exception", exit status 134, after the checkpoint was written. Recipes then see a failed step (seen in
about one run in ten of the GPU profile's student time guard). Imported with the user dir, this stops
those threads at exit, before finalization: each finishes the batch in hand and ends.
"""

import atexit
import queue
import threading
import time

from fairseq.data.iterators import BackgroundConsumer

_GRACE_SECONDS = 60  # longest wait for one batch in hand; a thread still busy after that is left as it was


def stop_background_consumers(grace=_GRACE_SECONDS):
    """End every live prefetch thread: it stops after its current batch, and its queue is drained so it never blocks."""
    deadline = time.monotonic() + grace
    for thread in threading.enumerate():
        if not isinstance(thread, BackgroundConsumer):
            continue
        thread._max_len = 0  # its loop breaks after the next put (fairseq checks count >= max_len there)
        while thread.is_alive() and time.monotonic() < deadline:
            try:
                thread._queue.get(timeout=0.05)
            except queue.Empty:
                pass
            thread.join(timeout=0.01)


atexit.register(stop_background_consumers)
