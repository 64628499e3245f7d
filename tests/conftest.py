"""Shared fixtures: tiny plate tracks written by hand (independent of the synthesiser) and CLI runners."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parents[1]

# TensorFlow imported before Triton (which torchvision and torch._dynamo load) segfaults the process: their
# bundled LLVMs clash. Triton first is safe, and this suite mixes both halves in one process, so load it here.
try:
    import triton  # noqa: F401
except ImportError:  # a CPU-only torch build has no Triton, and no clash
    pass


def write_track(
    root: Path,
    track_id: str,
    text: str = "ABC1234",
    layout: str = "Brazilian",
    frames: int = 5,
    lr_size: tuple[int, int] = (16, 48),
    scale: int = 2,
    ext: str = "png",
    seed: int = 0,
) -> Path:
    """Write one track in the dataset layout with random-noise frames; returns its folder."""
    folder = root / track_id
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for number in range(1, frames + 1):
        for side, (h, w) in (("lr", lr_size), ("hr", (lr_size[0] * scale, lr_size[1] * scale))):
            pixels = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / f"{side}-{number:03d}.{ext}")
    annotation = {"plate_text": text, "plate_layout": layout, "corners": {}}
    (folder / "annotations.json").write_text(json.dumps(annotation), encoding="utf-8")
    return folder


@pytest.fixture
def plate_root(tmp_path: Path) -> Path:
    """Six valid tracks over two scenarios and both layouts."""
    root = tmp_path / "plates"
    specs = [
        ("Scenario-A/Brazilian/track_00001", "ABC1234", "Brazilian"),
        ("Scenario-A/Brazilian/track_00002", "XYZ9876", "Brazilian"),
        ("Scenario-A/Mercosur/track_00003", "BRA2E19", "Mercosur"),
        ("Scenario-B/Mercosur/track_00004", "QWE1R23", "Mercosur"),
        ("Scenario-B/Brazilian/track_00005", "JKL0001", "Brazilian"),
        ("Scenario-B/Mercosur/track_00006", "MNO5P67", "Mercosur"),
    ]
    for index, (track_id, text, layout) in enumerate(specs):
        write_track(root, track_id, text, layout, seed=index)
    return root


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run `python -m <args>` as a new user would, capturing text output."""
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=cwd or REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def ray_head(s3_server):
    """One local Ray head per test session, started as the README tells users to (token authentication on).

    It starts after the local S3 server, with its settings in the environment, as a cluster's nodes have their
    credentials: so Tune trials on it reach the bucket (`digits tune --storage-path s3://...`).

    Nothing is taken from this machine's `~/.ray`: `ray get-auth-token --generate` writes a fresh token into a
    temporary HOME, and every process the tests start reads it through `RAY_AUTH_TOKEN_PATH` with
    `RAY_AUTH_MODE=token`, as a user's shell with `export RAY_AUTH_MODE=token` reads `~/.ray/auth_token`. Inherited
    `RAY_*` settings are dropped. The head runs in its own process group (`--block`) so teardown stops this head
    only, not other Ray instances on the machine.
    """
    import shutil
    import signal
    import time

    bin_dir = Path(sys.executable).parent
    port, dashboard_port = _free_port(), _free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("RAY_")}
    env.update(
        PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        PYTHONPATH=str(REPO_ROOT),
        RAY_USAGE_STATS_ENABLED="0",
    )
    ray = shutil.which("ray", path=env["PATH"])
    token_home = Path(tempfile.mkdtemp(prefix="ray-token-"))
    subprocess.run(
        [ray, "get-auth-token", "--generate"], env=dict(env, HOME=str(token_home)), check=True, capture_output=True
    )
    env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(token_home / ".ray" / "auth_token"))
    address = f"127.0.0.1:{port}"
    head = subprocess.Popen(
        [
            ray,
            "start",
            "--head",
            "--block",
            f"--port={port}",
            "--num-cpus=2",
            "--num-gpus=0",
            "--include-dashboard=true",
            f"--dashboard-port={dashboard_port}",
            # Fixed defaults (the job agent's 52365) would clash with any other Ray on the machine.
            f"--dashboard-agent-listen-port={_free_port()}",
            f"--dashboard-agent-grpc-port={_free_port()}",
            f"--metrics-export-port={_free_port()}",
            f"--runtime-env-agent-port={_free_port()}",
            "--disable-usage-stats",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 180
        while subprocess.run([ray, "status", "--address", address], env=env, capture_output=True).returncode:
            if head.poll() is not None or time.monotonic() > deadline:
                pytest.fail("ray start --head did not come up")
            time.sleep(1)
        yield {"address": address, "dashboard": f"http://127.0.0.1:{dashboard_port}", "env": env}
    finally:
        os.killpg(head.pid, signal.SIGTERM)
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
        record = Path("/tmp/ray/ray_current_cluster")  # `ray stop` would remove it; do the same for our head
        if record.is_file() and record.read_text().strip().endswith(f":{port}"):
            record.unlink()
        shutil.rmtree(token_home, ignore_errors=True)


def submit_job(
    ray_head: dict, *entrypoint: str, working_dir: Path = REPO_ROOT, timeout: float = 600
) -> subprocess.CompletedProcess:
    """`ray job submit --working-dir . -- ...` from `working_dir`, as the README writes it, against the test head.

    A head that has just started may answer "No available agent to submit job, please try again later" until its
    dashboard agent registers (seconds, or a minute on a loaded machine): Ray asks for a retry, so it is retried.
    """
    import time

    deadline = time.monotonic() + 120
    while True:
        done = subprocess.run(
            ["ray", "job", "submit", "--address", ray_head["dashboard"], "--working-dir", ".", "--", *entrypoint],
            cwd=working_dir,
            env=ray_head["env"],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if "No available agent to submit job" not in done.stderr or time.monotonic() > deadline:
            return done
        time.sleep(3)


def tiny_overrides(root: Path, storage: Path, name: str, epochs=(1, 1, 1, 1, 2)) -> list[str]:
    """The tiny preset, smaller still, on `root`: seconds per stage on two CPU cores."""
    return [
        f"data.root={root}",
        f"data.split_file={root / 'split.txt'}",
        "data.batch_size=8",
        "model.swinir_embed_dim=16",
        "model.swinir_num_rstb=1",
        "model.swinir_num_heads=2",
        "ocr.model_type=parseq_micro",
        f"run.storage_path={storage}",
        f"run.name={name}",
        "run.cpus_per_worker=1",
        "train.image_log_every=1",
    ] + [f"stages.{i}.epochs={e}" for i, e in enumerate(epochs)]


@pytest.fixture(scope="session")
def synth_plates(tmp_path_factory) -> Path:
    """Eight synthetic tracks (4 train, 2 val, 2 test), shared by the training tests."""
    from lpasrn.data.synth import SynthConfig, render_dataset

    root = tmp_path_factory.mktemp("data") / "plates"
    render_dataset(root, SynthConfig(tracks=8, seed=5, split_ratios=(0.5, 0.25, 0.25)))
    return root


@pytest.fixture(scope="session")
def s3_server():
    """An S3 API on localhost (moto), reached the way users reach S3-compatible stores: AWS_ENDPOINT_URL.

    The variables are set for the whole test session so subprocesses and Ray workers they start see them too.
    """
    from moto.server import ThreadedMotoServer

    port = _free_port()
    import logging

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    settings = {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    saved = {key: os.environ.get(key) for key in settings}
    os.environ.update(settings)
    try:
        yield settings["AWS_ENDPOINT_URL"]
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        server.stop()


@pytest.fixture
def s3_bucket(s3_server) -> str:
    """A new empty bucket; returns its `s3://` URI."""
    import uuid

    from pyarrow import fs

    name = f"glyphray-{uuid.uuid4().hex[:12]}"
    filesystem = fs.S3FileSystem(endpoint_override=s3_server, allow_bucket_creation=True)
    filesystem.create_dir(name)
    return f"s3://{name}"


def pytest_collection_modifyitems(config, items):
    """Integration and end-to-end tests are slow by definition, so `-m "not slow"` (`make test-fast`) is the
    edit-run tier; anything that uses the shared Ray head is marked `ray`."""
    for item in items:
        if item.path.parent.name in ("integration", "e2e"):
            item.add_marker(pytest.mark.slow)
        if "ray_head" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.ray)
