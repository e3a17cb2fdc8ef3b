"""The image -> speech pipeline without Prefect.

The step functions (``steps``), their order (``sequence``), the result types (``results``),
batches (``batch``, ``manifest``) and A/B comparison statistics (``compare``). Flows run the
same sequence with tasks as its steps.
"""
