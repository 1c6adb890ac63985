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
    """Wall time (s), peak anonymous memory of the process tree (bytes), stdout."""

    seconds: float
    peak_bytes: int
    stdout: str


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


def tree_anon_bytes(root: int) -> int:
    """Sum of RssAnon over ``root`` and all its descendants."""
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += _anon_bytes(pid)
        stack.extend(_children(pid))
    return total


def run(command: list[str], env: dict[str, str] | None = None) -> Measured:
    """Run ``command``, sampling its tree's anonymous memory every 20 ms."""
    started = time.perf_counter()
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, tree_anon_bytes(process.pid))
            done.wait(SAMPLE_SECONDS)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, stderr = process.communicate()
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({process.returncode}):\n{stderr}")
    return Measured(seconds, peak, stdout)
