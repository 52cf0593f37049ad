"""LiteLLM's proxy as an optional peer of the proxy benchmark (`LITELLM=1`).

It is installed into its own virtual environment outside the repository (never the project's),
configured with the benchmark's model on the same fake upstream, no database and a master key
only, and started with one worker, pinned like the data plane.
"""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench.processes import free_port, stop_child, taskset, wait_http

VENV = Path.home() / ".cache" / "hydite-bench" / "litellm-venv"
MASTER_KEY = "sk-litellm-bench"
INSTALL_TIMEOUT_SECONDS = 1200.0
START_TIMEOUT_SECONDS = 120.0


@dataclass
class LiteLLMProxy:
    """A running LiteLLM proxy."""

    process: subprocess.Popen[bytes]
    url: str
    version: str
    log_path: Path


def executable() -> Path:
    """The `litellm` command of the benchmark's venv, installing it there first when missing."""
    command = VENV / "bin" / "litellm"
    if command.exists():
        return command
    print(f"  installing litellm[proxy] into {VENV} (once)…", flush=True)
    VENV.parent.mkdir(parents=True, exist_ok=True)
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", str(VENV)], check=True, timeout=INSTALL_TIMEOUT_SECONDS)
    pip = [str(VENV / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    completed = subprocess.run(
        [*pip, "litellm[proxy]"],
        capture_output=True,
        text=True,
        check=False,
        timeout=INSTALL_TIMEOUT_SECONDS,
    )
    if completed.returncode != 0 or not command.exists():
        raise RuntimeError(f"pip install 'litellm[proxy]' failed: {completed.stderr.strip()[-800:]}")
    return command


def installed_version() -> str:
    """LiteLLM's version in the benchmark's venv."""
    site = next((VENV / "lib").glob("python*/site-packages"), None)
    if site is None:
        return "unknown"
    found = list(importlib.metadata.distributions(name="litellm", path=[str(site)]))
    return found[0].version if found else "unknown"


def config_yaml(upstream: str) -> str:
    """model_list (`bench` on the fake upstream) and the master key; no database."""
    return (
        "model_list:\n"
        "  - model_name: bench\n"
        "    litellm_params:\n"
        "      model: openai/gpt-4o-mini\n"
        f"      api_base: {upstream}/v1\n"
        "      api_key: sk-x\n"
        "general_settings:\n"
        f"  master_key: {MASTER_KEY}\n"
    )


def start(upstream: str, cpus: set[int] | None, work_dir: Path) -> LiteLLMProxy:
    """Install if needed, write the config, start one worker on a free port; ready at /health/liveliness."""
    command = executable()
    config = work_dir / "litellm-config.yaml"
    config.write_text(config_yaml(upstream))
    port = free_port()
    log_path = work_dir / "litellm.log"
    env = {
        **os.environ,
        # No network look-up of the model price map, no telemetry, quiet logs.
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "LITELLM_TELEMETRY": "False",
        "LITELLM_LOG": "ERROR",
    }
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            taskset([str(command), "--config", str(config), "--port", str(port), "--num_workers", "1"], cpus),
            cwd=work_dir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    proxy = LiteLLMProxy(process, f"http://127.0.0.1:{port}", installed_version(), log_path)
    started = time.monotonic()
    try:
        wait_http(proxy.url + "/health/liveliness", process, timeout=START_TIMEOUT_SECONDS)
    except BaseException as exc:
        stop_child(process, group=True)
        if not isinstance(exc, Exception):
            raise
        tail = log_path.read_text(errors="replace")[-1500:]
        raise RuntimeError(f"{exc}\n{tail}") from exc
    print(f"  LiteLLM {proxy.version} up after {time.monotonic() - started:.0f} s", flush=True)
    return proxy
