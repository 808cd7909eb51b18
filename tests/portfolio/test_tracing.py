"""OpenTelemetry tracing: off by default; on, a web request, a Celery task and each RPC request of a sync
are spans that carry the request id or the sync run id, joined into one trace."""

from __future__ import annotations

import pytest
from django.test import Client
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from chains import endpoints
from chains.base import redact_url
from portfolio import jobs, tracing
from portfolio.models import SyncRun
from portfolio.sync import run as sync_run
from tests.fixtures.celery import add_scenario_wallets, expected_state, seed_chain, stored_state

pytestmark = pytest.mark.django_db

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


@pytest.fixture
def spans():
    exporter = InMemorySpanExporter()
    tracing.enable(SimpleSpanProcessor(exporter), service_name="chainfolio-test")
    yield exporter
    tracing.disable()


@pytest.fixture
def sent(monkeypatch):
    out: list[tuple[str, tuple]] = []
    monkeypatch.setattr(jobs, "enqueue", lambda name, *args, queue="default": out.append((name, args)))
    return out


def test_tracing_is_off_without_an_exporter_endpoint(settings):
    from django.core.exceptions import MiddlewareNotUsed

    assert settings.OTEL_EXPORTER_OTLP_ENDPOINT == ""
    assert not tracing.setup_from_settings()
    assert not tracing.enabled() and endpoints._tracer is None
    assert tracing.span("anything") is tracing.span("else")  # one shared no-op, nothing created
    with pytest.raises(MiddlewareNotUsed):  # Django drops the middleware at start-up
        tracing.TracingMiddleware(lambda request: None)


def test_a_web_request_is_a_span_with_its_route_status_and_request_id(owner, spans):
    client = Client()  # a new client loads the middleware with tracing on
    client.force_login(owner)
    response = client.get("/api/v1/wallets", HTTP_X_REQUEST_ID="req-trace-0001", HTTP_TRACEPARENT=TRACEPARENT)
    assert response.status_code == 200
    (span,) = [s for s in spans.get_finished_spans() if s.kind.name == "SERVER"]
    assert span.name == "GET /api/v1/wallets"
    assert span.attributes["chainfolio.request_id"] == "req-trace-0001"
    assert span.attributes["http.response.status_code"] == 200
    assert format(span.context.trace_id, "032x") == TRACE_ID  # joined the caller's trace
    assert span.resource.attributes["service.name"] == "chainfolio-test"


@pytest.mark.devnet
def test_a_sync_task_and_its_rpc_requests_are_spans_of_one_trace_with_the_run_id(owner, evm_devnet, spans, sent):
    from portfolio.tasks import expand_run_task, sync_wallet_chains_task

    chain = seed_chain(evm_devnet.scenario)
    alice = add_scenario_wallets(owner, evm_devnet.scenario, chain)[0]
    run = sync_run.do_request_sync(owner, wallet=alice)
    expand_run_task.apply(args=(run.pk,))
    name, args = sent[-1]
    assert name == jobs.SYNC_WALLET_CHAINS
    headers: dict = {}
    with tracing.span("the refresh request"):  # what the web request that sent the task would be
        tracing.inject(headers)
    sync_wallet_chains_task.apply(args=args, headers=headers)

    run.refresh_from_db()
    assert run.status == SyncRun.OK and stored_state(alice) == expected_state(evm_devnet.scenario["wallets"][0])
    finished = spans.get_finished_spans()
    (parent,) = [s for s in finished if s.name == "the refresh request"]
    (task,) = [s for s in finished if s.name == "task portfolio.tasks.sync_wallet_chains_task"]
    rpc = [s for s in finished if s.name.startswith("rpc ")]
    assert task.attributes["chainfolio.sync_run_id"] == str(run.pk)
    assert task.attributes["celery.state"] == "SUCCESS"
    assert task.parent.span_id == parent.context.span_id and task.context.trace_id == parent.context.trace_id
    assert rpc, [s.name for s in finished]
    for span in rpc:
        assert span.attributes["chainfolio.sync_run_id"] == str(run.pk)
        assert span.attributes["rpc.system"] == "jsonrpc" and span.attributes["rpc.method"] == span.name[4:]
        assert span.context.trace_id == task.context.trace_id
        assert span.attributes["server.address"] == redact_url(chain.endpoints.get().url)
    (expand,) = [s for s in finished if s.name == "task portfolio.tasks.expand_run_task"]
    assert expand.attributes["chainfolio.sync_run_id"] == str(run.pk)


class _Collector:
    """An OTLP/HTTP trace receiver on loopback: decodes every export into (span name, trace id, attributes)."""

    def __init__(self):
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

        self.spans: list[tuple[str, str, dict]] = []
        self.posts: list[tuple[str, str]] = []
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                collector.posts.append((self.path, self.headers.get("Content-Type", "")))
                request = ExportTraceServiceRequest.FromString(body)
                for resource in request.resource_spans:
                    for scope in resource.scope_spans:
                        for s in scope.spans:
                            attrs = {a.key: a.value.string_value or a.value.int_value for a in s.attributes}
                            collector.spans.append((s.name, s.trace_id.hex(), attrs))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


def test_with_an_endpoint_set_spans_are_exported_over_otlp_http(settings, monkeypatch):
    collector = _Collector()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.url)
    settings.OTEL_EXPORTER_OTLP_ENDPOINT = collector.url
    try:
        assert tracing.setup_from_settings()
        with tracing.span("exported"):
            pass
        tracing.disable()  # flushes the batch
    finally:
        tracing.disable()
        collector.close()
    assert collector.posts == [("/v1/traces", "application/x-protobuf")]
    assert [name for name, _, _ in collector.spans] == ["exported"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(120)
def test_a_real_workers_task_span_reaches_the_collector_in_the_senders_trace(start_worker, spans):
    from celery import current_app

    from tests.fixtures.celery import wait_for

    collector = _Collector()
    try:
        worker = start_worker(concurrency=1, env={"OTEL_EXPORTER_OTLP_ENDPOINT": collector.url, "OTEL_BSP_SCHEDULE_DELAY": "200"})
        with tracing.span("the sender") as sender:
            current_app.send_task("portfolio.tasks.reap_stalled_task", queue="default")
        trace_id = format(sender.get_span_context().trace_id, "032x")
        found = wait_for(lambda: [s for s in collector.spans if s[0] == "task portfolio.tasks.reap_stalled_task"], 60,
                         "the task's span at the collector", worker)
    finally:
        collector.close()
    (name, task_trace, attrs), = found
    assert task_trace == trace_id  # the pool process joined the sender's trace through the message headers
    assert attrs["celery.state"] == "SUCCESS" and attrs["celery.queue"] == "default"
