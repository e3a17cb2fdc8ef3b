"""narrate as a service: an upload API and a web page over the same pipeline (``narrate serve``).

Modules, outermost first::

    command   the ``narrate serve`` sub-command (argparse), registered by the CLI
    server    uvicorn set-up: TLS minimum version, no proxy-header rewriting, the bind policy
    app       the FastAPI application: routes, error handlers, the page, /metrics, /docs
    gate      ASGI middleware: IP allowlist, body-size limit, bearer token, audit record
    access    the allowlist (CIDR, trusted proxies) and the JWT verifier (PyJWT)
    uploads   content sniffing and validation of uploaded images and audio
    jobs      the bounded queue: admission (503 + Retry-After), workers, retention
    engine    runs a job on the direct engine or as a Prefect flow run
    errors    ApiError: an HTTP status and a one-line detail
    telemetry the service's Prometheus series (requests, durations, queue depth)

Importing this package imports nothing heavy; FastAPI and uvicorn load with ``app``/``server``.
"""
