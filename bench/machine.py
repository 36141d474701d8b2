"""The machine a benchmark ran on, printed first by every benchmark: these machines are shared and differ."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def machine() -> str:
    """Host, CPU model, the cores this process may use and the load average now."""
    try:
        model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                      if line.startswith("model name")), "")
    except OSError:
        model = ""
    return (f"machine: {platform.node()}, {model or platform.processor() or platform.machine()}, "
            f"{len(os.sched_getaffinity(0))} cores, load average {os.getloadavg()[0]:.1f}")
