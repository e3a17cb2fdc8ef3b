"""A real, throw-away Prometheus and Pushgateway on 127.0.0.1 for tests.

Debian's ``prometheus`` and ``prometheus-pushgateway`` (scripts/install_system.sh), started
like ``tests.support.redis_server`` starts redis-server: a free port, a temporary directory,
a wait until ``/-/ready`` answers, a stop that terminates the process::

    with Pushgateway() as gateway:
        push_to_gateway(gateway.url, job="narrate-batch")
    with Prometheus(config) as prom:
        httpx.get(f"{prom.url}/api/v1/query", params={"query": "up"})
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import yaml

from tests.support.redis_server import free_port

PROMETHEUS = "prometheus"
PUSHGATEWAY = "prometheus-pushgateway"


def binary(name: str) -> str | None:
    """The path of ``name`` (prometheus, prometheus-pushgateway), or None."""
    return shutil.which(name)


class _Service:
    """One server process on a free loopback port, ready once ``/-/ready`` answers 200."""

    name = ""

    def __init__(self, *, startup_timeout: float = 60.0) -> None:
        self.startup_timeout = startup_timeout
        self.port = 0
        self.dir = Path()
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log: Any = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        """Where the server's stdout and stderr go."""
        return self.dir / f"{self.name}.log"

    def command(self) -> list[str]:
        """The command line for ``self.port`` in ``self.dir``."""
        raise NotImplementedError

    def start(self) -> _Service:
        """Start the server and wait until it is ready; RuntimeError if it never is."""
        path = binary(self.name)
        if path is None:
            raise RuntimeError(f"{self.name} is not installed (apt-get install {self.name})")
        self._tmp = tempfile.TemporaryDirectory(prefix=f"narrate-{self.name}-")
        self.dir = Path(self._tmp.name)
        for _ in range(5):  # another process may take the port between pick and bind
            self.port = free_port()
            self._log = self.log_path.open("ab")
            self._process = subprocess.Popen(
                [path, *self.command()], stdout=self._log, stderr=subprocess.STDOUT
            )
            deadline = time.monotonic() + self.startup_timeout
            while time.monotonic() < deadline and self._process.poll() is None:
                try:
                    if httpx.get(f"{self.url}/-/ready", timeout=2).status_code == 200:
                        return self
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
            self._kill()
        raise RuntimeError(f"{self.name} did not get ready; see {self.log_path}")

    def _kill(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        if self._log is not None:
            self._log.close()
            self._log = None

    def stop(self) -> None:
        """Stop the server and delete its directory."""
        self._kill()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class Pushgateway(_Service):
    """``prometheus-pushgateway`` on 127.0.0.1, persisting only into its temporary folder."""

    name = PUSHGATEWAY

    def command(self) -> list[str]:
        """Listen on loopback only. Debian's default persistence file is shared
        (/var/lib/prometheus/pushgateway.data): every test gateway gets its own."""
        return [
            f"--web.listen-address=127.0.0.1:{self.port}",
            f"--persistence.file={self.dir / 'pushgateway.data'}",
        ]

    def series(self, name: str) -> list[dict[str, Any]]:
        """The samples of metric ``name`` (e.g. ``narrate_items_total``) the gateway holds,
        from its own /api/v1/metrics.

        Each item is ``{"labels": {...}, "value": float}`` (the gateway adds ``job``).
        """
        groups = httpx.get(f"{self.url}/api/v1/metrics", timeout=10).json()["data"]
        found = []
        for group in groups:
            family = group.get(name)
            if not family:
                continue
            for metric in family["metrics"]:
                value = metric.get("value")
                if value is not None:
                    found.append({"labels": metric["labels"], "value": float(value)})
        return found


class Prometheus(_Service):
    """``prometheus`` on 127.0.0.1 with a given configuration (a dict, written as YAML;
    give ``rule_files`` as absolute paths)."""

    name = PROMETHEUS

    def __init__(self, config: dict[str, Any], *, startup_timeout: float = 60.0) -> None:
        super().__init__(startup_timeout=startup_timeout)
        self.config = config

    def command(self) -> list[str]:
        """Write the configuration into the temporary directory and point prometheus at it."""
        config_path = self.dir / "prometheus.yml"
        config_path.write_text(yaml.safe_dump(self.config))
        return [
            f"--config.file={config_path}",
            f"--storage.tsdb.path={self.dir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
        ]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """The result vector of an instant query (raises AssertionError on an API error)."""
        answer = httpx.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=10).json()
        assert answer["status"] == "success", (expr, answer)
        return list(answer["data"]["result"])

    def rules(self) -> list[dict[str, Any]]:
        """Every loaded rule (``/api/v1/rules``), each with its group's name under ``group``."""
        groups = httpx.get(f"{self.url}/api/v1/rules", timeout=10).json()["data"]["groups"]
        return [{**rule, "group": g["name"]} for g in groups for rule in g["rules"]]

    def targets(self) -> list[dict[str, Any]]:
        """The active scrape targets (``/api/v1/targets``)."""
        data = httpx.get(f"{self.url}/api/v1/targets", timeout=10).json()["data"]
        return list(data["activeTargets"])
