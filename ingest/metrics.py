"""Prometheus metrics of one ingest worker, served on 127.0.0.1:<metrics_port>/metrics."""

from __future__ import annotations

import logging
import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

log = logging.getLogger(__name__)


class IngestMetrics:
    """The worker's counters and histograms, in a registry of their own."""

    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry()
        self.frames_received = Counter(
            "meterflow_ingest_frames_received", "Frames taken from MQTT messages", registry=registry
        )
        self.frames_stored = Counter(
            "meterflow_ingest_frames_stored", "Frames of committed batches", registry=registry
        )
        self.readings_stored = Counter(
            "meterflow_ingest_readings_stored",
            "Reading rows of committed batches (before dedup in the database)",
            registry=registry,
        )
        self.dead_letters = Counter(
            "meterflow_ingest_dead_letters",
            "Dead letters by reason class",
            ["reason"],
            registry=registry,
        )
        self.batch_frames = Histogram(
            "meterflow_ingest_batch_frames",
            "Frames per committed batch",
            buckets=(1, 10, 50, 100, 500, 1000, 2500, 5000, 10000, 20000),
            registry=registry,
        )
        self.commit_seconds = Histogram(
            "meterflow_ingest_commit_seconds",
            "Time to write and commit one batch",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=registry,
        )
        self.last_commit = Gauge(
            "meterflow_ingest_last_commit_timestamp_seconds",
            "Unix time of the last committed batch",
            registry=registry,
        )
        self.store_errors = Counter(
            "meterflow_ingest_store_errors", "Failed batch writes (retried)", registry=registry
        )

    def serve(self, port: int) -> int:
        """Serve /metrics on 127.0.0.1:``port`` (0 picks a free port); return the port."""
        server, _thread = start_http_server(port, addr="127.0.0.1", registry=self.registry)
        bound = int(server.server_port)
        log.info("metrics on http://127.0.0.1:%d/metrics", bound)
        return bound

    def committed(self, frames: int, readings: int, seconds: float) -> None:
        """Record one committed batch."""
        self.frames_stored.inc(frames)
        self.readings_stored.inc(readings)
        self.batch_frames.observe(frames)
        self.commit_seconds.observe(seconds)
        self.last_commit.set(time.time())
