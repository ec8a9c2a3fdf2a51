"""Helpers of the Ray tests: a real ``ray start --head`` cluster on 127.0.0.1 (free ports, its own temp folder,
stopped by its process group) and an estimator that leaves a file per attempt (its PID, its Ray node) so a test can
kill the worker process running a trial or remove its node.

Ray's processes need this checkout's ``src`` and ``tests`` on their path (``ray_env``): workers import the
estimator's module by name, as on a real cluster where every node has the package installed.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from nasforge.estimators import Result
from nasforge.spaces import Architecture
from runner_toy import toy_reward

HERE = Path(__file__).resolve().parent
RAY = str(Path(sys.executable).with_name("ray"))


def ray_env() -> dict[str, str]:
    """The environment for Ray's processes: this checkout first on the path, no usage stats."""
    path = os.pathsep.join([str(HERE.parent / "src"), str(HERE), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path.rstrip(os.pathsep), "RAY_USAGE_STATS_ENABLED": "0"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RayStartCluster:
    """``ray start --head --port P --node-ip-address 127.0.0.1`` as a user starts one; ``stop()`` ends every
    process it started (its process group), nothing else."""

    def __init__(self, num_cpus: int = 2) -> None:
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.temp = tempfile.mkdtemp(prefix="nfray")  # short: Ray's socket paths live under it
        cmd = [RAY, "start", "--head", "--port", str(self.port), "--node-ip-address", "127.0.0.1",
               "--num-cpus", str(num_cpus), "--include-dashboard", "false", "--disable-usage-stats",
               "--dashboard-agent-listen-port", str(free_port()), "--ray-client-server-port", str(free_port()),
               "--temp-dir", self.temp]
        self.proc = subprocess.Popen(cmd, env=ray_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        out, _ = self.proc.communicate(timeout=180)
        if self.proc.returncode != 0:
            self.stop()
            raise RuntimeError(f"ray start failed: {out.decode()[-2000:]}")

    def stop(self) -> None:
        try:
            for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 0.0)):
                try:
                    os.killpg(self.proc.pid, sig)
                except ProcessLookupError:
                    return
                deadline = time.monotonic() + wait
                while time.monotonic() < deadline:
                    try:
                        os.killpg(self.proc.pid, 0)
                    except ProcessLookupError:
                        return
                    time.sleep(0.2)
        finally:
            shutil.rmtree(self.temp, ignore_errors=True)


class MarkingEstimator:
    """``toy_reward`` after ``delay`` seconds; each attempt first writes ``<dir>/<arch>.<pid>`` holding its Ray
    node id, so a test sees which process and node run which trial, and how often a trial was attempted."""

    def __init__(self, folder: str | Path, delay: float) -> None:
        self.folder, self.delay = str(folder), delay

    def evaluate(self, arch: Architecture) -> Result:
        import ray

        node = ray.get_runtime_context().get_node_id() if ray.is_initialized() else ""
        mark = Path(self.folder) / f"{arch}.{os.getpid()}"
        mark.write_text(node)
        time.sleep(self.delay)
        r = toy_reward(arch.choices)
        return Result(r, {"acc": r}, {}, self.delay)


def attempts(folder: Path) -> dict[str, list[tuple[int, str]]]:
    """arch -> [(pid, node id)] of the attempts marked so far."""
    out: dict[str, list[tuple[int, str]]] = {}
    for p in folder.iterdir():
        arch, _, pid = p.name.rpartition(".")
        out.setdefault(arch, []).append((int(pid), p.read_text()))
    return out
