"""One real ``prefect server`` per test session, on a free loopback port, own PREFECT_HOME."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.prefect_server import prefect_server as start_prefect_server


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A real Prefect server on loopback; yields the environment that points at it.

    The environment has no ``PREFECT_*`` or ``NARRATE_*`` variable of the caller's, so runs
    see only what a test gives them.
    """
    with start_prefect_server(tmp_path_factory.mktemp("prefect-home")) as env:
        yield env
