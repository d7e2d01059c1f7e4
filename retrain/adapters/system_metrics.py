"""CPU and memory while a model trains, sampled in a background thread and logged with the training
run under MLflow's own system-metric names (``system/cpu_utilization_percentage``,
``system/system_memory_usage_megabytes``), so the MLflow UI's System metrics tab shows them.

Sampled here rather than by MLflow's monitor because the training run is logged once the model is
fitted (a crashed fit leaves no half-open run); the process's own resident memory is added
(``system/process_rss_megabytes``), which is what a training's cost is.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Final

from retrain.domain.fitting import ResourceSample

CPU: Final = "system/cpu_utilization_percentage"
MEMORY: Final = "system/system_memory_usage_megabytes"
PROCESS_RSS: Final = "system/process_rss_megabytes"
SERIES: Final = {CPU: "cpu_percent", MEMORY: "memory_mb", PROCESS_RSS: "process_rss_mb"}


def _sample(started: float) -> ResourceSample:
    import psutil

    return ResourceSample(
        seconds=time.perf_counter() - started,
        cpu_percent=float(psutil.cpu_percent(interval=None)),
        memory_mb=float(psutil.virtual_memory().used) / 2**20,
        process_rss_mb=float(psutil.Process().memory_info().rss) / 2**20,
    )


@contextmanager
def sampled_resources(interval_seconds: float = 1.0) -> Iterator[list[ResourceSample]]:
    """Yield a list that fills with samples every ``interval_seconds`` until the block ends (one more
    sample then, so even a short fit has its end). Sampling never fails the block it watches."""
    import psutil

    samples: list[ResourceSample] = []
    started = time.perf_counter()
    stop = threading.Event()
    psutil.cpu_percent(interval=None)  # primes the counter: the next call measures since now

    def run() -> None:
        while not stop.wait(interval_seconds):
            try:
                samples.append(_sample(started))
            except Exception:
                return

    thread = threading.Thread(target=run, name="retrain-resources", daemon=True)
    thread.start()
    try:
        yield samples
    finally:
        stop.set()
        thread.join(timeout=5)
        with suppress(Exception):
            samples.append(_sample(started))
