"""OpenTelemetry tracing of web requests, Celery tasks and RPC calls, on when an exporter endpoint is set.

With ``OTEL_EXPORTER_OTLP_ENDPOINT`` set, each process exports spans over OTLP/HTTP (the exporter reads
the standard ``OTEL_EXPORTER_*`` variables): one per web request (``TracingMiddleware``), one per Celery
task (the signal handlers in ``portfolio.celery_signals``, joined to the trace of whoever sent it) and one
per RPC request (``chains.endpoints``, handed a tracer by ``enable``). Every span started while a request
id or a sync run id is set carries it (``chainfolio.request_id``, ``chainfolio.sync_run_id``), as log
lines do. Unset (the default), nothing is imported or created: each hook checks one module global.

The provider is this module's own, not OpenTelemetry's global one, so tests can switch it on and off.
"""

from __future__ import annotations

import contextlib
from contextlib import contextmanager
from typing import Any, Iterator

from django.conf import settings

from chains import endpoints
from portfolio import context

_provider: Any = None  # an opentelemetry.sdk.trace.TracerProvider while tracing is on
_tracer: Any = None
_NO_SPAN = contextlib.nullcontext()

REQUEST_ID = "chainfolio.request_id"
SYNC_RUN_ID = "chainfolio.sync_run_id"


def enabled() -> bool:
    return _tracer is not None


def setup_from_settings() -> bool:
    """Switch tracing on when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set (spans batched, exported over
    OTLP/HTTP); returns whether it is on."""
    if not settings.OTEL_EXPORTER_OTLP_ENDPOINT or enabled():
        return enabled()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    enable(BatchSpanProcessor(OTLPSpanExporter()), service_name=settings.OTEL_SERVICE_NAME)
    return True


def enable(processor: Any, *, service_name: str = "chainfolio") -> None:
    """Start tracing into ``processor`` (an ``opentelemetry.sdk.trace.SpanProcessor``; tests pass a
    ``SimpleSpanProcessor`` over an ``InMemorySpanExporter``)."""
    global _provider, _tracer
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    provider.add_span_processor(_context_stamp())
    provider.add_span_processor(processor)
    _provider, _tracer = provider, provider.get_tracer("portfolio")
    endpoints.set_tracer(provider.get_tracer("chains.endpoints"))


def disable() -> None:
    """Stop tracing (flushes and shuts the processors down)."""
    global _provider, _tracer
    provider, _provider, _tracer = _provider, None, None
    endpoints.set_tracer(None)
    if provider is not None:
        provider.shutdown()


def _context_stamp() -> Any:
    from opentelemetry.sdk.trace import SpanProcessor

    class ContextStamp(SpanProcessor):
        """Stamps each new span with the request id and sync run id of the code that starts it."""

        def on_start(self, span: Any, parent_context: Any = None) -> None:
            if rid := context.request_id.get():
                span.set_attribute(REQUEST_ID, rid)
            if run := context.sync_run_id.get():
                span.set_attribute(SYNC_RUN_ID, run)

    return ContextStamp()


def span(name: str, attributes: dict[str, Any] | None = None, *, parent: Any = None, kind: str = "INTERNAL"):
    """A context manager: a current span named ``name`` while tracing is on, else a shared no-op."""
    if _tracer is None:
        return _NO_SPAN
    from opentelemetry.trace import SpanKind

    return _tracer.start_as_current_span(name, context=parent, kind=SpanKind[kind], attributes=attributes)


@contextmanager
def sync_run(run_id: object) -> Iterator[None]:
    """``context.sync_run`` (log lines inside carry the run id), and the current span (a task's) and every
    span started inside carry it too."""
    with context.sync_run(run_id):
        if _tracer is not None and run_id is not None:
            from opentelemetry import trace

            trace.get_current_span().set_attribute(SYNC_RUN_ID, str(run_id))
        yield


# --------------------------------------------------------------------------- propagation to tasks


def inject(headers: dict[str, Any]) -> None:
    """Put the current trace context into a task message's headers (``traceparent``)."""
    if _tracer is not None:
        from opentelemetry import propagate

        propagate.inject(headers)


_task_spans: dict[str, tuple[Any, Any]] = {}  # task id -> (span, context token)


def task_started(task: Any, task_id: str) -> None:
    """Open the task's span (child of the sender's trace when the message carries one) and make it current."""
    if _tracer is None or not task_id or task is None:
        return
    from opentelemetry import propagate, trace
    from opentelemetry import context as otel_context
    from opentelemetry.trace import SpanKind

    request = getattr(task, "request", None)
    carrier = {"traceparent": getattr(request, "traceparent", None) or ((getattr(request, "headers", None) or {}).get("traceparent"))}
    parent = propagate.extract({k: v for k, v in carrier.items() if v})
    current = _tracer.start_span(f"task {task.name}", context=parent, kind=SpanKind.CONSUMER, attributes={
        "celery.task_name": task.name, "celery.task_id": task_id,
        "celery.queue": (getattr(request, "delivery_info", None) or {}).get("routing_key") or "",
        "celery.retries": getattr(request, "retries", 0) or 0,
    })
    token = otel_context.attach(trace.set_span_in_context(current))
    _task_spans[task_id] = (current, token)


def task_finished(task_id: str, state: str | None) -> None:
    if _tracer is None or task_id not in _task_spans:
        return
    from opentelemetry import context as otel_context
    from opentelemetry.trace import Status, StatusCode

    current, token = _task_spans.pop(task_id)
    current.set_attribute("celery.state", state or "")
    if state == "FAILURE":
        current.set_status(Status(StatusCode.ERROR))
    current.end()
    with contextlib.suppress(ValueError):  # detached in another context already (never in practice)
        otel_context.detach(token)


# --------------------------------------------------------------------------- web requests


class TracingMiddleware:
    """A span per web request, child of the caller's ``traceparent`` if any; named by the URL pattern
    (never the raw path with ids in it). Not loaded at all while tracing is off."""

    def __init__(self, get_response):
        from django.core.exceptions import MiddlewareNotUsed

        if not enabled():
            raise MiddlewareNotUsed
        self.get_response = get_response

    def __call__(self, request):
        if not enabled():  # switched off after this middleware was loaded (tests)
            return self.get_response(request)
        from opentelemetry import propagate
        from opentelemetry.trace import Status, StatusCode

        attributes = {"http.request.method": request.method, "url.path": request.path}
        with span(f"{request.method}", attributes, parent=propagate.extract(request.headers), kind="SERVER") as current:
            response = self.get_response(request)
            match = getattr(request, "resolver_match", None)
            route = (match.route if match else "") or ""
            if route:
                current.set_attribute("http.route", "/" + route.lstrip("/"))
                current.update_name(f"{request.method} /{route.lstrip('/')}")
            current.set_attribute("http.response.status_code", response.status_code)
            if response.status_code >= 500:
                current.set_status(Status(StatusCode.ERROR))
            return response
