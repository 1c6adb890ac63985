"""Run a command and measure its wall time and the peak anonymous memory of its process tree.

Anonymous memory (RssAnon in /proc/<pid>/status) is what a process allocated itself: heap,
numpy arrays, decompressed chunks. Pages of a memory-mapped file are RssFile, which the
kernel can drop at any time, so they do not count (the reference and segaudit both map the
npy file; counting its pages would measure the page cache, not the program).
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

SAMPLE_SECONDS = 0.02


@dataclass(frozen=True)
class Measured:
    """Wall time (s), peak anonymous memory of the process tree (bytes), stdout, and the
    tree's median CPU use over half-second windows (100 = one core busy)."""

    seconds: float
    peak_bytes: int
    stdout: str
    steady_cpu_percent: float = 0.0


def _children(pid: int) -> list[int]:
    found = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            text = Path(f"/proc/{pid}/task/{task}/children").read_text()
            found.extend(int(child) for child in text.split())
    except OSError:
        pass
    return found


def _anon_bytes(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime
    except (OSError, IndexError, ValueError):
        return 0.0


TICKS = os.sysconf("SC_CLK_TCK")
CPU_WINDOW_SECONDS = 0.5


def tree_sample(root: int) -> tuple[int, float]:
    """Sum of RssAnon (bytes) and of CPU seconds over ``root`` and all its descendants."""
    total, cpu, stack = 0, 0.0, [root]
    while stack:
        pid = stack.pop()
        total += _anon_bytes(pid)
        cpu += _cpu_seconds(pid)
        stack.extend(_children(pid))
    return total, cpu


def _steady_cpu(samples: list[tuple[float, float]]) -> float:
    """Median CPU % over consecutive half-second windows (start-up and exit included)."""
    rates: list[float] = []
    start_time, start_cpu = samples[0] if samples else (0.0, 0.0)
    for when, cpu in samples[1:]:
        if when - start_time >= CPU_WINDOW_SECONDS:
            rates.append(100 * (cpu - start_cpu) / (when - start_time))
            start_time, start_cpu = when, cpu
    rates.sort()
    return rates[len(rates) // 2] if rates else 0.0


def run(command: list[str], env: dict[str, str] | None = None) -> Measured:
    """Run ``command``, sampling its tree's anonymous memory every 20 ms."""
    started = time.perf_counter()
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    peak = 0
    cpu_samples: list[tuple[float, float]] = []
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            anon, cpu = tree_sample(process.pid)
            peak = max(peak, anon)
            cpu_samples.append((time.perf_counter(), cpu))
            done.wait(SAMPLE_SECONDS)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, stderr = process.communicate()
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({process.returncode}):\n{stderr}")
    return Measured(seconds, peak, stdout, _steady_cpu(cpu_samples))
