"""What a timing needs to know about the machine it ran on: the CPU model and whether anything else was running.

A ratio measured while other jobs share the cores says little (docs/SCALING.md once reported 12x from an
oversubscribed machine, 1.14x on a quiet one), so every timing benchmark records the 1-minute load average
before it starts (once: later its own work is in that average) and warns when the machine is not quiet.
"""

from __future__ import annotations

import os
import sys

QUIET = 0.5  # 1-minute load average below which nothing else is taken to be running


def cpu_model() -> str:
    with open("/proc/cpuinfo") as f:
        return next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "?")


def load_at_start() -> float:
    """The 1-minute load average now; a warning on stderr when it is above QUIET."""
    load = os.getloadavg()[0]
    if load > QUIET:
        print(f"warning: load average {load:.2f} > {QUIET}: other work is running; these timings are not a "
              "measurement for the docs", file=sys.stderr)
    return load
