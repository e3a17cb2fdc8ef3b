"""Reading the Prefect artifacts a flow run published (under the test's Prefect harness)."""

from __future__ import annotations


def artifact_data(key: str, flow_run_id: object = None) -> str:
    """The artifact ``key`` (of one flow run, when given; else any run's)."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        from prefect.client.schemas.filters import (
            ArtifactFilter,
            ArtifactFilterFlowRunId,
            ArtifactFilterKey,
        )

        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=[key]),
                flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]) if flow_run_id else None,
            )
        )
    assert found, f"no artifact {key}"
    return str(found[0].data)
