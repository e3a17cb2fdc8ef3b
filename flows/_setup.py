"""What every flow does first: settings, the API key, log redaction, the metrics endpoint."""

from __future__ import annotations

import functools
import logging

from pydantic import SecretStr

from flows._outcome import quiet_bad_input_tracebacks
from flows._prefect_clients import share_tls_context
from narrate.config.secrets import install_redaction, register_secret
from narrate.config.settings import Settings, load_settings

log = logging.getLogger("narrate")


def flow_settings() -> Settings:
    """Settings for a flow run, with the key from a Prefect Secret block when configured.

    ``NARRATE_LLM_API_KEY_BLOCK=name`` reads the key from the Secret block ``name`` when no
    key is in the environment, so a deployment's workers need no key in their environment.
    Every handler of the loggers that matter (Prefect's API log handler too) gets the
    redaction filter, and ``NARRATE_METRICS_PORT`` starts the metrics endpoint once.
    Prefect's API clients in this process share one TLS context from then on
    (``flows._prefect_clients``).
    """
    quiet_bad_input_tracebacks()  # first: a bad setting is bad input too
    share_tls_context()  # each task run's Prefect client: no CA bundle loaded per run
    settings = load_settings()
    llm = settings.llm
    if llm.api_key is None and llm.api_key_block:
        from prefect.blocks.system import Secret

        secret = Secret.load(llm.api_key_block).get()  # type: ignore[union-attr]
        llm.api_key = SecretStr(str(secret))
        register_secret(llm.api_key)
    install_redaction()
    if settings.metrics.port is not None:
        _serve_metrics(settings.metrics.port, settings.metrics.addr)
    return settings


@functools.cache
def _serve_metrics(port: int, addr: str) -> None:
    from narrate.ops.metrics import start_metrics_server

    server, _ = start_metrics_server(port, addr)
    log.info("narrate metrics on http://%s:%s/metrics", addr, server.server_port)
