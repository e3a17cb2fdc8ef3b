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
from typing import Any

import httpx
import yaml

from tests.support.server_process import ServerProcess

PROMETHEUS = "prometheus"
PUSHGATEWAY = "prometheus-pushgateway"


def binary(name: str) -> str | None:
    """The path of ``name`` (prometheus, prometheus-pushgateway), or None."""
    return shutil.which(name)


class _Service(ServerProcess):
    """A Prometheus-family server: ready once ``/-/ready`` answers 200."""

    install_hint = "scripts/install_system.sh"

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    def ready(self) -> bool:
        """``GET /-/ready`` answers 200."""
        try:
            return httpx.get(f"{self.url}/-/ready", timeout=2).status_code == 200
        except httpx.TransportError:
            return False


class Pushgateway(_Service):
    """``prometheus-pushgateway`` on 127.0.0.1, persisting only into its temporary folder."""

    name = PUSHGATEWAY

    def command(self, binary: str) -> list[str]:
        """Listen on loopback only. Debian's default persistence file is shared
        (/var/lib/prometheus/pushgateway.data): every test gateway gets its own."""
        return [
            binary,
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

    def command(self, binary: str) -> list[str]:
        """Write the configuration into the temporary directory and point prometheus at it."""
        config_path = self.dir / "prometheus.yml"
        config_path.write_text(yaml.safe_dump(self.config))
        return [
            binary,
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
