"""A real LiteLLM proxy (an OpenAI-compatible gateway we did not write) on loopback.

``LiteLLMProxy(models)`` writes a config whose models answer with LiteLLM's own
``mock_response`` (no upstream), starts ``litellm`` on a free port with a master key, waits
for ``/health/liveliness`` and stops it on exit. The proxy lives in its own virtualenv
(``scripts/install_litellm.sh``, run by ``make setup`` into ``.venv/litellm``);
``LITELLM_EXECUTABLE`` may point at another ``litellm`` executable.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

import httpx

from tests.support.server_process import free_port, stop_process

REPO_ROOT = Path(__file__).resolve().parents[2]
MASTER_KEY = "sk-narrate-test-0123456789abcdef"


def litellm_binary() -> str | None:
    """The ``litellm`` executable: ``LITELLM_EXECUTABLE``, ``.venv/litellm``, or PATH."""
    configured = os.environ.get("LITELLM_EXECUTABLE")
    if configured:
        return configured if Path(configured).exists() else None
    local = REPO_ROOT / ".venv" / "litellm" / "bin" / "litellm"
    if local.exists():
        return str(local)
    return shutil.which("litellm")


class LiteLLMProxy:
    """One ``litellm --config`` process on 127.0.0.1 with mock-response models."""

    def __init__(self, models: Mapping[str, str], *, startup_timeout_s: float = 240.0) -> None:
        self.models = dict(models)
        self.startup_timeout_s = startup_timeout_s
        self.port = free_port()
        self._dir = tempfile.TemporaryDirectory(prefix="narrate-litellm-")
        self._process: subprocess.Popen[bytes] | None = None
        self.startup_s = 0.0

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def log_path(self) -> Path:
        """The proxy's combined output."""
        return Path(self._dir.name) / "litellm.log"

    def _config(self) -> Path:
        entries = [
            {
                "model_name": name,
                "litellm_params": {"model": f"openai/{name}", "api_key": "none",
                                   "mock_response": reply},
            }
            for name, reply in self.models.items()
        ]  # fmt: skip
        path = Path(self._dir.name) / "config.yaml"
        path.write_text(json.dumps({"model_list": entries}), encoding="utf-8")  # JSON is YAML
        return path

    def __enter__(self) -> LiteLLMProxy:
        binary = litellm_binary()
        if binary is None:
            raise RuntimeError("litellm is not installed (bash scripts/install_litellm.sh DIR)")
        env = {
            **os.environ,
            "LITELLM_MASTER_KEY": MASTER_KEY,
            "LITELLM_TELEMETRY": "False",
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # no download of the price list
        }
        started = time.monotonic()
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(
                [binary, "--config", str(self._config()), "--host", "127.0.0.1",
                 "--port", str(self.port), "--num_workers", "1"],
                stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self._dir.name,
            )  # fmt: skip
        deadline = started + self.startup_timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                break
            try:
                health = httpx.get(f"http://127.0.0.1:{self.port}/health/liveliness", timeout=1)
                if health.status_code == 200:
                    self.startup_s = time.monotonic() - started
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        tail = self.log_path.read_text(errors="replace")[-2000:]
        self.__exit__(None, None, None)
        raise RuntimeError(f"litellm did not start on port {self.port}:\n{tail}")

    def __exit__(self, *exc_info: object) -> None:
        process, self._process = self._process, None
        stop_process(process, timeout_s=15)
        self._dir.cleanup()
