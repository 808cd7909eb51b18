"""The embedded Celery broker: kombu's file-system transport made safe for concurrent producers and consumers.

kombu's stock transport (5.7) creates a message file and then writes it, so a consumer listing the folder
can take a file that is still empty and crash the worker with ``JSONDecodeError``; it removes a message
from the queue the moment it is read, so a worker killed mid-task loses it despite ``acks_late``; and it
moves messages to the system temp folder, which may be another file system (a copy, not a rename, so two
consumers can both take one message). This subclass keeps kombu's folder layout and file names (queues
written by the stock transport stay readable) and changes three things:

- a producer writes ``.<name>.tmp`` (consumers skip dot-names) and renames it into the queue folder, so a
  message appears whole or not at all;
- a consumer claims a message by renaming it into ``inflight/`` (atomic: exactly one consumer wins) and
  holds an exclusive POSIX record lock (``lockf``) on it until the message is acknowledged (file
  deleted), rejected or restored (renamed back into the queue folder). Not ``flock``: a pool process
  forked while the worker holds a claim inherits ``flock`` locks (they belong to the open file), so
  after that process was killed and Celery handed the message back (``task_reject_on_worker_lost``),
  the worker blocked for good trying to lock the redelivered file; record locks belong to a process
  and are not inherited by its children;
- any consumer moves back the in-flight files whose lock is free (their consumer died: the kernel drops a
  dead process's locks) and a file that is not JSON goes to ``corrupt/`` with a warning instead of
  crashing the worker.

Why this and not kombu's SQLAlchemy transport on SQLite: see bench/broker_transports.py and README
("Embedded broker").
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
import uuid
from collections import deque
from typing import Any

from kombu.transport import filesystem, virtual
from kombu.utils.json import dumps, loads

log = logging.getLogger(__name__)

# A claimed file younger than this is never taken back: it closes the gap between a consumer's rename
# into inflight/ and its lock (microseconds; the margin is generous).
RECLAIM_GRACE_S = 30.0
RECLAIM_EVERY_S = 10.0

# In-flight files claimed by any channel of this process. A process never conflicts with its own record
# locks, so a reclaim probe run by another channel of the same worker (the remote-control one) must skip
# them by name or it would hand a running task's message back.
_HELD_HERE: set[str] = set()


def message_name(queue: str) -> str:
    """kombu's file name (``<ms>_<uuid>.<queue>.msg``) with wall-clock milliseconds, zero-padded so names
    sort in publish order across processes and restarts (kombu uses the per-boot monotonic clock)."""
    return f"{time.time_ns() // 1_000_000:015d}_{uuid.uuid4()}.{queue}.msg"


def queue_of(name: str) -> str | None:
    """The queue a message file belongs to, or None for anything that is not a finished message file."""
    if name.startswith(".") or not name.endswith(".msg"):
        return None
    return name.partition(".")[2][: -len(".msg")] or None


def _try_lock(fd: int) -> bool:
    """Take an exclusive record lock on the whole file without waiting; False if another process holds it."""
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:  # EACCES or EAGAIN: held by another process
        return False
    return True


class QoS(virtual.QoS):
    """Settles the in-flight file when Celery acknowledges or rejects a message."""

    def ack(self, delivery_tag: Any) -> None:
        super().ack(delivery_tag)
        self.channel._settle(delivery_tag)

    def reject(self, delivery_tag: Any, requeue: bool = False) -> None:
        # requeue=True goes through Channel._restore (the file is renamed back), requeue=False drops it
        super().reject(delivery_tag, requeue=requeue)
        self.channel._settle(delivery_tag)


class Channel(filesystem.Channel):
    QoS = QoS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        base = os.path.dirname(os.path.abspath(self.data_folder_in))
        opts = self.transport_options
        self.inflight_folder = opts.get("inflight_folder") or os.path.join(base, "inflight")
        self.corrupt_folder = opts.get("corrupt_folder") or os.path.join(base, "corrupt")
        for folder in (self.data_folder_out, self.data_folder_in, self.inflight_folder, self.corrupt_folder):
            os.makedirs(folder, exist_ok=True)
        self._claimed: dict[Any, tuple[str, int]] = {}  # delivery tag -> (in-flight path, locked fd)
        self._listing: dict[str, deque[str]] = {}
        self._next_reclaim = 0.0

    # ----------------------------------------------------------------- producing
    def _put(self, queue: str, payload: Any, **kwargs: Any) -> None:
        name = message_name(queue)
        tmp = os.path.join(self.data_folder_out, f".{name}.tmp")
        try:
            with open(tmp, "wb") as f:
                f.write(dumps(payload).encode())
            os.rename(tmp, os.path.join(self.data_folder_out, name))
        except OSError as exc:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise filesystem.ChannelError(f"Cannot add message to {self.data_folder_out!r}: {exc}") from exc

    # ----------------------------------------------------------------- consuming
    def _candidates(self, queue: str) -> deque[str]:
        """Message names of ``queue`` in publish order; one folder listing serves many gets (a claim that
        fails because another consumer won is simply skipped), listed again when used up."""
        pending = self._listing.get(queue)
        if not pending:
            names = sorted(n for n in os.listdir(self.data_folder_in) if queue_of(n) == queue)
            pending = self._listing[queue] = deque(names)
        return pending

    def _get(self, queue: str) -> Any:
        now = time.monotonic()
        if now >= self._next_reclaim:
            self._next_reclaim = now + RECLAIM_EVERY_S
            self.reclaim_orphans()
        pending = self._candidates(queue)
        while pending:
            name = pending.popleft()
            path = os.path.join(self.inflight_folder, name)
            try:
                os.rename(os.path.join(self.data_folder_in, name), path)
            except FileNotFoundError:
                continue  # another consumer claimed it first
            fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
            if not _try_lock(fd):
                # Only another consumer's reclaim probe can hold it here (it skips young files, so this
                # is near impossible); never block the worker on it: leave it for a later reclaim.
                os.close(fd)
                continue
            try:
                payload = loads(os.read(fd, os.fstat(fd).st_size).decode())
                tag = payload["properties"]["delivery_tag"]
            except (ValueError, KeyError, TypeError, UnicodeDecodeError):
                os.close(fd)
                os.replace(path, os.path.join(self.corrupt_folder, name))
                log.warning("broker: unreadable message file moved to %s", self.corrupt_folder)
                continue
            self._claimed[tag] = (path, fd)
            _HELD_HERE.add(path)
            return payload
        raise filesystem.Empty()

    def _settle(self, delivery_tag: Any) -> None:
        """The message is done with (acknowledged, dropped or already put back): forget its file."""
        claimed = self._claimed.pop(delivery_tag, None)
        if claimed is None:
            return
        path, fd = claimed
        _HELD_HERE.discard(path)
        try:
            if self.store_processed:
                os.replace(path, os.path.join(self.processed_folder, os.path.basename(path)))
            else:
                os.unlink(path)
        except FileNotFoundError:
            pass
        finally:
            os.close(fd)

    def _restore(self, message: Any) -> None:
        """Put a delivered message back (requeue, or unacked messages at worker shutdown): the claimed file
        goes back into the queue folder under its own name, so it keeps its place and is never doubled."""
        claimed = self._claimed.pop(message.delivery_tag, None)
        if claimed is None:
            return super()._restore(message)
        path, fd = claimed
        _HELD_HERE.discard(path)
        try:
            os.rename(path, os.path.join(self.data_folder_in, os.path.basename(path)))
        finally:
            os.close(fd)
        self._listing.clear()

    def reclaim_orphans(self) -> int:
        """Move back in-flight messages whose consumer is gone (its lock was released by the kernel);
        returns how many. A file is only taken once it is RECLAIM_GRACE_S old and its lock is free."""
        mine = set(_HELD_HERE)
        moved = 0
        try:
            names = os.listdir(self.inflight_folder)
        except FileNotFoundError:
            return 0
        for name in names:
            path = os.path.join(self.inflight_folder, name)
            if path in mine or queue_of(name) is None:
                continue
            try:
                if time.time() - os.stat(path).st_ctime < RECLAIM_GRACE_S:
                    continue
                fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
            except FileNotFoundError:
                continue
            if not _try_lock(fd):
                os.close(fd)
                continue  # its consumer is alive and working on it
            try:
                os.rename(path, os.path.join(self.data_folder_in, name))
                moved += 1
            except FileNotFoundError:
                pass
            finally:
                os.close(fd)
        if moved:
            log.warning("broker: %d message(s) of a stopped worker put back in the queue", moved)
            self._listing.clear()
        return moved

    def _size(self, queue: str) -> int:
        return sum(1 for n in os.listdir(self.data_folder_in) if queue_of(n) == queue)

    def _purge(self, queue: str) -> int:
        count = 0
        for name in os.listdir(self.data_folder_in):
            if queue_of(name) == queue:
                try:
                    os.unlink(os.path.join(self.data_folder_in, name))
                    count += 1
                except FileNotFoundError:
                    pass
        self._listing.pop(queue, None)
        return count


class Transport(filesystem.Transport):
    """``broker_transport = "portfolio.broker:Transport"`` with ``broker_url = "filesystem://"``."""

    Channel = Channel
