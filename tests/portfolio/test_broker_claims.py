"""The embedded broker's claims: a message handed back after its pool process died is delivered again at
once, and a worker's own claims are never taken back by its other channels."""

from __future__ import annotations

import os
import signal
import time
import uuid

import pytest
from kombu import Connection, Exchange, Queue

from portfolio import broker


@pytest.fixture
def connection(tmp_path):
    folders = {name: tmp_path / name for name in ("queue", "processed", "control")}
    for folder in folders.values():
        folder.mkdir()
    options = {"data_folder_in": str(folders["queue"]), "data_folder_out": str(folders["queue"]),
               "processed_folder": str(folders["processed"]), "control_folder": str(folders["control"]),
               "store_processed": False}
    with Connection("filesystem://", transport=broker.Transport, transport_options=options) as conn:
        yield conn


def _publish(conn, body):
    # A name of its own: kombu keeps declared exchanges per process, so a reused name would skip the
    # declaration in this test's folders.
    name = f"q{uuid.uuid4().hex[:8]}"
    queue = Queue(name, Exchange(name), routing_key=name)
    with conn.Producer() as producer:
        producer.publish(body, exchange=queue.exchange, routing_key=name, declare=[queue], serializer="json")
    return queue


def _get(conn, queue, timeout_s=3.0):
    """The next message, polled from a fresh SimpleQueue's channel; fails if none arrives in time."""
    deadline = time.monotonic() + timeout_s
    channel = conn.default_channel
    while time.monotonic() < deadline:
        message = queue(channel).get(no_ack=False)
        if message is not None:
            return message
        time.sleep(0.05)
    raise AssertionError("no message delivered")


def test_a_message_rejected_after_a_forked_child_died_is_redelivered_at_once(connection):
    queue = _publish(connection, {"n": 1})
    first = _get(connection, queue)
    # A pool process is forked while the worker holds the claim, then SIGKILLed (as billiard replaces a
    # process, or as the OOM killer does); Celery then rejects the message with requeue=True.
    child = os.fork()
    if child == 0:  # pragma: no cover - the child only waits to be killed
        time.sleep(60)
        os._exit(0)
    try:
        first.reject(requeue=True)
        started = time.monotonic()
        again = _get(connection, queue)  # with flock this blocked for good: the child inherited the lock
        assert again.payload == {"n": 1}
        assert time.monotonic() - started < 2
        again.ack()
        assert os.listdir(connection.default_channel.inflight_folder) == []
    finally:
        os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)


def test_another_channel_of_the_same_worker_never_reclaims_a_running_tasks_message(connection, monkeypatch):
    queue = _publish(connection, {"n": 2})
    held = _get(connection, queue)
    monkeypatch.setattr(broker, "RECLAIM_GRACE_S", 0.0)  # the task has run "long enough" to be reclaimable
    other = connection.channel()  # e.g. the worker's remote-control channel, in the same process
    try:
        assert other.reclaim_orphans() == 0
        assert len(os.listdir(other.inflight_folder)) == 1
    finally:
        other.close()
    held.ack()


def test_a_dead_consumers_claim_is_handed_back(connection, monkeypatch):
    queue = _publish(connection, {"n": 3})
    channel = connection.default_channel
    child = os.fork()
    if child == 0:  # pragma: no cover - a consumer that claims the message and dies without a word
        with Connection("filesystem://", transport=broker.Transport, transport_options=channel.transport_options) as conn:
            _get(conn, queue)
            os.kill(os.getpid(), signal.SIGKILL)
    os.waitpid(child, 0)
    assert len(os.listdir(channel.inflight_folder)) == 1
    monkeypatch.setattr(broker, "RECLAIM_GRACE_S", 0.0)
    assert channel.reclaim_orphans() == 1
    assert _get(connection, queue).payload == {"n": 3}
