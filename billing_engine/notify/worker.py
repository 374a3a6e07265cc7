"""The outbox sender: routes notices to deliveries, claims due ones, renders, sends, marks.

Nothing is sent twice across crashes: before each network call the delivery is marked
'sending' in a committed transaction (together with the previous delivery's result, so one
commit per message: ``store.Marks``); after the call it is marked sent, retried later or
dead. A worker killed between the call and the mark leaves a 'sending' row that recovery
resolves (``store.recover``): SMS is sent again under the same idempotency key, which the
gateway refuses as a duplicate; e-mail becomes 'uncertain' for staff instead of being resent.
"""

from __future__ import annotations

import logging
import os
import random
import secrets
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from billing_engine.db import connect
from billing_engine.notify import store
from billing_engine.notify.channels import Attachment, Channel, DeliveryError, Outgoing
from billing_engine.notify.preferences import unsubscribe_token
from billing_engine.notify.rate import RetryPolicy, TokenBucket
from billing_engine.notify.render import Renderer
from billing_engine.notify.store import Claimed, Outcome
from meterflow.errors import BillingError, StoreError

log = logging.getLogger(__name__)
RECOVER_EVERY_S = 30.0


@dataclass
class Counts:
    """What a worker did: routed notices and attempt results."""

    routed: int = 0
    sent: int = 0
    duplicate: int = 0
    failed: int = 0
    dead: int = 0
    recovered: int = 0
    uncertain: int = 0

    def add(self, outcome: Outcome) -> None:
        """Count one attempt's result."""
        setattr(self, outcome.status, getattr(self, outcome.status) + 1)


@dataclass
class WorkerConfig:
    """How a worker behaves; ``links`` are (signing secret, portal base URL)."""

    policy: RetryPolicy = field(default_factory=RetryPolicy)
    limits: Mapping[str, TokenBucket] = field(default_factory=dict)
    links: tuple[str, str] | None = None
    batch_size: int = 200
    # Parallel sending streams, each with its own database session and channel connections:
    # a real SMTP relay answers in tens of milliseconds, so one stream would mostly wait.
    lanes: int = 1
    poll_s: float = 1.0
    # Test hook: SIGKILL this process right after a send on this channel returns.
    crash_after_send: str | None = None
    rng: random.Random = field(default_factory=random.Random)


@dataclass
class _Lane:
    """One sending stream: a database session and a connection per channel."""

    conn: store.Conn
    channels: dict[str, Channel]


class Worker:
    """One sender process: ``with Worker(...) as w: w.run()`` (or ``w.step()`` in tests).

    ``channels`` makes one set of channel adapters; it is called once per lane.
    """

    def __init__(
        self,
        conninfo: str,
        channels: Callable[[], Sequence[Channel]],
        config: WorkerConfig | None = None,
        renderer: Renderer | None = None,
    ) -> None:
        self.conninfo = conninfo
        self.make_channels = channels
        self.config = config or WorkerConfig()
        self.renderer = renderer or Renderer()
        self.counts = Counts()
        self.worker_id = 0
        self._conn: store.Conn | None = None
        self._lanes: list[_Lane] = []
        self._pool: ThreadPoolExecutor | None = None
        self._count_lock = threading.Lock()

    def __enter__(self) -> Worker:
        try:
            self._conn = connect(self.conninfo, autocommit=True)
            while True:
                self.worker_id = secrets.randbelow(2**31 - 1) + 1
                if store.lock_worker(self._conn, self.worker_id):
                    break
            for _ in range(max(1, self.config.lanes)):
                channels = {c.name: c for c in self.make_channels()}
                lane_conn = connect(self.conninfo, autocommit=True)
                # Safe without a disk flush per message: see store's docstring.
                lane_conn.execute("SET synchronous_commit = off")
                self._lanes.append(_Lane(lane_conn, channels))
            if len(self._lanes) > 1:
                self._pool = ThreadPoolExecutor(len(self._lanes), thread_name_prefix="notify")
            self.recover()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None
        for lane in self._lanes:
            for channel in lane.channels.values():
                channel.close()
            lane.conn.close()
        self._lanes = []
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                store.release(conn, self.worker_id)
            finally:
                conn.close()

    @property
    def conn(self) -> store.Conn:
        """The worker's database session (it holds the worker's liveness lock)."""
        if self._conn is None:
            raise StoreError("the worker is not started: use it as a context manager")
        return self._conn

    @property
    def channels(self) -> dict[str, Channel]:
        """The channels this worker sends on (those of its first lane)."""
        if not self._lanes:
            raise StoreError("the worker is not started: use it as a context manager")
        return self._lanes[0].channels

    def recover(self) -> None:
        """Resolve deliveries that dead workers left claimed or in the middle of a send."""
        resendable = [c.name for c in self.channels.values() if c.resend_after_crash]
        released, uncertain = store.recover(self.conn, self.worker_id, resendable)
        self.counts.recovered += released
        self.counts.uncertain += uncertain
        if released or uncertain:
            log.warning("recovered %d deliveries, %d e-mails uncertain", released, uncertain)

    def run(self, once: bool = False, stop: threading.Event | None = None) -> Counts:
        """Deliver until stopped; with ``once``, until nothing is due right now."""
        stop = stop or threading.Event()
        last_recovery = time.monotonic()
        while not stop.is_set():
            progressed, wait_s = self.step()
            if time.monotonic() - last_recovery > RECOVER_EVERY_S:
                self.recover()
                last_recovery = time.monotonic()
            if progressed:
                continue
            if once and wait_s == 0:
                break
            stop.wait(wait_s or self.config.poll_s)
        return self.counts

    def step(self) -> tuple[bool, float]:
        """Route new notices and send one batch per channel.

        Returns whether anything happened and, when a rate limit held work back, how long
        to wait for the next token (else 0).
        """
        routed = store.route(self.conn, self.config.batch_size)
        self.counts.routed += routed
        progressed, wait_s = routed > 0, 0.0
        for name in self.channels:
            bucket = self.config.limits.get(name)
            allowed = self.config.batch_size if bucket is None else bucket.available()
            allowed = min(allowed, self.config.batch_size)
            if allowed == 0:
                assert bucket is not None
                if self._has_due(name):
                    wait_s = max(wait_s, bucket.wait_s())
                continue
            claimed = store.claim(self.conn, name, self.worker_id, allowed)
            if bucket is not None:
                bucket.take(len(claimed))
            if claimed:
                self._dispatch(name, claimed)
                progressed = True
        return progressed, wait_s

    def _has_due(self, channel: str) -> bool:
        row = self.conn.execute(
            "SELECT EXISTS (SELECT 1 FROM notify_deliveries WHERE status = 'pending'"
            " AND channel = %s AND next_attempt_at <= now())",
            (channel,),
        ).fetchone()
        return bool(row and row[0])

    def _dispatch(self, channel: str, claimed: list[Claimed]) -> None:
        """Send the claimed deliveries; each lane takes the next one as soon as it is free."""
        queue = deque(claimed)
        if self._pool is None:
            self._send_all(self._lanes[0], channel, queue)
            return
        futures = [self._pool.submit(self._send_all, lane, channel, queue) for lane in self._lanes]
        for future in futures:
            future.result()

    def _send_all(self, lane: _Lane, name: str, queue: deque[Claimed]) -> None:
        marks = store.Marks(lane.conn, name)
        while queue:
            try:
                item = queue.popleft()
            except IndexError:  # another lane took the last one
                break
            try:
                message = self._message(item)
            except DeliveryError as exc:
                self._record(marks, self._failure(item, item.attempts + 1, exc))
                continue
            marks.start(item)
            self._record(marks, self._attempt(lane.channels[name], item, message))
        marks.close()

    def _record(self, marks: store.Marks, outcome: Outcome) -> None:
        marks.record(outcome)
        with self._count_lock:
            self.counts.add(outcome)

    def _attempt(self, channel: Channel, item: Claimed, message: Outgoing) -> Outcome:
        attempt = item.attempts + 1
        try:
            result = channel.send(message)
        except DeliveryError as exc:
            return self._failure(item, attempt, exc)
        if self.config.crash_after_send == channel.name:
            os.kill(os.getpid(), signal.SIGKILL)
        status = "duplicate" if result.duplicate else "sent"
        return Outcome(item.outbox_id, item.channel, attempt, status, None, result.provider_id)

    def _failure(self, item: Claimed, attempt: int, exc: DeliveryError) -> Outcome:
        policy = self.config.policy
        if exc.permanent or policy.gives_up(attempt):
            return Outcome(item.outbox_id, item.channel, attempt, "dead", str(exc))
        delay = policy.delay(attempt, self.config.rng).total_seconds()
        return Outcome(item.outbox_id, item.channel, attempt, "failed", str(exc), None, delay)

    def _message(self, item: Claimed) -> Outgoing:
        """Render a claimed delivery. Raises DeliveryError if it cannot be rendered."""
        customer = {"name": item.customer_name or "", "customer_no": item.customer_no or ""}
        if item.channel == "sms":
            subject, text = self.renderer.render_sms(
                item.kind, item.language, item.payload, customer
            )
            return Outgoing(item.key, item.address, subject, text)
        url = self._unsubscribe_url(item)
        attachments = self._attachments(item)
        rendered = self.renderer.render(
            item.kind, item.language, item.payload, customer, url, bool(attachments)
        )
        headers: tuple[tuple[str, str], ...] = ()
        if url is not None:
            headers = (
                ("List-Unsubscribe", f"<{url}>"),
                ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
            )
        return Outgoing(
            item.key,
            item.address,
            rendered.subject,
            rendered.text,
            rendered.html,
            attachments,
            headers,
        )

    def _unsubscribe_url(self, item: Claimed) -> str | None:
        links = self.config.links
        if links is None or item.legally_required or item.customer_id is None:
            return None
        secret, base = links
        token = unsubscribe_token(secret, item.customer_id, item.kind, item.channel)
        return f"{base.rstrip('/')}/unsubscribe/{token}"

    def _attachments(self, item: Claimed) -> tuple[Attachment, ...]:
        if item.channel != "email" or item.kind != "invoice_issued" or not item.e_invoice:
            return ()
        from billing_engine import pdf

        invoice_id = int(item.payload["invoice_id"])
        try:
            document = pdf.load_document(self.conninfo, invoice_id)
        except BillingError as exc:
            raise DeliveryError(f"invoice PDF: {exc}") from exc
        name = document.invoice_no.replace("/", "-") + ".pdf"
        return (Attachment(name, pdf.render(document)),)
