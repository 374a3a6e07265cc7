"""Ingest end to end: frames/s committed to the store, against two baselines of the same run.

``python -m bench.ingest [--meters N] [--rounds R] [--workers N...]`` starts a private
Mosquitto (raised limits), a fresh database on METERFLOW_BENCH_ADMIN_URL's server, pre-encodes
R rounds of wM-Bus mode 5 frames, one frame of each of ``--meters`` meters per round (each
meter with its own key, rounds two minutes apart as meters transmit), then measures:

* broker baseline: a bare paho subscriber that only counts (QoS 1, auto-ack);
* store baseline: binary COPY of the pre-decoded rows these frames store (one ``raw_frames``
  row and one ``readings`` row a frame) into the same tables, one transaction: the store's
  limit in frames/s;
* ingest: N ``meterflow ingest`` processes. The first round warms them up (every meter's
  first frame: a new AES context, the meter's first-seen facts) and is reported on its own
  as "cold"; the sustained rate is the later rounds, publish start to the last frame committed.

Publishers are separate processes. Printed figures are frames/s and the ratio to the slower
baseline, the ingest workers' peak RSS and CPU microseconds per frame of each process
(which, unlike rates, do not follow the machine's other load).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import psycopg
from paho.mqtt.enums import CallbackAPIVersion

from ingest.store import FRAME_COLUMNS, FRAME_TYPES, READING_COLUMNS, READING_TYPES
from readers.codec import decode_frame
from readers.model import Header, Record
from readers.wmbus_encode import encode_wmbus
from schemas.envelope import RawFrame, build_envelope, parse_envelope, topic
from schemas.migrate import migrate

ADMIN_URL = os.environ.get(
    "METERFLOW_BENCH_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
METERS = 50_000
ROUNDS = 4
GATEWAYS = 8
T0 = datetime(2026, 11, 21, tzinfo=UTC)
ROUND_INTERVAL = timedelta(minutes=2)  # how often each meter transmits


def sent_at(i: int, meters: int) -> datetime:
    """When frame ``i`` is received: its round's start plus a step per meter."""
    return T0 + (i // meters) * ROUND_INTERVAL + timedelta(microseconds=20 * (i % meters))


def key_of(n: int) -> bytes:
    """The AES key of benchmark meter ``n``."""
    return n.to_bytes(4, "big") * 4


def encode_frames(count: int, meters: int) -> list[bytes]:
    """``count`` distinct mode 5 frames of ``meters`` meters (volume and meter clock)."""
    frames = []
    for i in range(count):
        n, access = i % meters, i // meters
        header = Header("KAM", f"{n:08d}", 0x1B, 0x07, access_no=access % 256, status=0)
        at = sent_at(i - n, meters)
        records = [Record("volume", "m3", Decimal(i) / 1000), Record("datetime", "", at)]
        frames.append(encode_wmbus(header, records, key=key_of(n), mode=5, access_no=access))
    return frames


def payloads(
    frames: list[tuple[int, bytes]], per_envelope: int, meters: int
) -> list[tuple[str, bytes]]:
    """Envelopes of ``per_envelope`` numbered frames, spread over GATEWAYS gateways."""
    out = []
    for k, i in enumerate(range(0, len(frames), per_envelope)):
        gateway = f"gw-{k % GATEWAYS:04d}"
        raw = [
            RawFrame(sent_at(number, meters), data, -70)
            for number, data in frames[i : i + per_envelope]
        ]
        out.append((topic(gateway, "wmbus"), build_envelope(gateway, "wmbus", raw)))
    return out


def in_process_costs(frames: list[bytes]) -> dict[str, float]:
    """CPU microseconds per frame, in this process, of parsing 20-frame envelopes and of
    decoding frames of meters not seen before (a new AES context each) and seen before."""
    envelopes = [payload for _, payload in payloads(list(enumerate(frames)), 20, METERS)]
    started = time.process_time()
    for payload in envelopes:
        parse_envelope(payload)
    costs = {"envelope JSON": (time.process_time() - started) / len(frames) * 1e6}
    for name in ("decode, new meters", "decode, known meters"):
        started = time.process_time()
        for data in frames:
            decode_frame("wmbus", data, lambda header: key_of(int(header.id)))
        costs[name] = (time.process_time() - started) / len(frames) * 1e6
    return costs


def start_broker() -> tuple[subprocess.Popen[bytes], int, Path]:
    """Start a private Mosquitto with unlimited queues on a free port."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    folder = Path(tempfile.mkdtemp(prefix="mf-bench-"))
    folder.chmod(0o755)
    conf = folder / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
        "max_inflight_messages 0\nmax_queued_messages 0\nmax_queued_bytes 0\n"
    )
    conf.chmod(0o644)
    process = subprocess.Popen(["mosquitto", "-c", str(conf)], stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return process, port, folder
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def publish(port: int, messages: list[tuple[str, bytes]]) -> None:
    """Publish at QoS 1 with at most 1000 messages in flight (run in a child process)."""
    client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port)
    client.loop_start()
    infos = [client.publish(t, p, qos=1) for t, p in messages]
    for info in infos:
        info.wait_for_publish(120)
    client.disconnect()
    client.loop_stop()


def run_publishers(port: int, messages: list[tuple[str, bytes]], count: int = 2) -> None:
    """Start ``count`` publisher processes, each with its share; return once started."""
    for k in range(count):
        multiprocessing.Process(target=publish, args=(port, messages[k::count])).start()


def count_subscriber(port: int, expected: int, ready: Any, result: Any) -> None:
    """Count messages (QoS 1) until ``expected`` arrived; report seconds first to last."""
    seen = [0, 0.0]

    def on_message(client: paho.Client, userdata: object, msg: paho.MQTTMessage) -> None:
        if seen[0] == 0:
            seen[1] = time.perf_counter()
        seen[0] += 1

    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-count", protocol=paho.MQTTv5)
    client.on_message = on_message
    client.connect("127.0.0.1", port)
    client.subscribe("mf/v1/+/+", qos=1)
    client.loop(1.0)
    ready.set()
    while seen[0] < expected:
        client.loop(0.1)
    result.put(time.perf_counter() - seen[1])


def broker_baseline(port: int, messages: list[tuple[str, bytes]], frames: int) -> float:
    """Frames/s a bare subscriber receives from the same broker."""
    ready = multiprocessing.Event()
    result: multiprocessing.Queue[float] = multiprocessing.Queue()
    counter = multiprocessing.Process(
        target=count_subscriber, args=(port, len(messages), ready, result)
    )
    counter.start()
    ready.wait(10)
    run_publishers(port, messages)
    seconds = float(result.get(timeout=300))
    counter.join()
    return frames / seconds


def store_baseline(url: str, frames: list[tuple[int, bytes]], meters: int) -> float:
    """Frames/s of a binary COPY of the rows the numbered ``frames`` store, decoded
    beforehand: a ``raw_frames`` row (reception) and a ``readings`` row (the volume) each, in
    one transaction. The caller empties both tables after.
    """
    receptions, readings = [], []
    for k, (i, data) in enumerate(frames):
        meter_id, received_at = f"KAM-{i % meters:08d}", sent_at(i, meters)
        read_at = sent_at(i - i % meters, meters)
        receptions.append(
            (
                received_at,
                f"gw-{k // 20 % GATEWAYS:04d}",
                "wmbus",
                hashlib.sha256(data).digest(),
                data,
                -70,
                meter_id,
                read_at,
            )
        )
        readings.append(
            (meter_id, read_at, 0, 0, 0, "volume", "instantaneous", "m3", Decimal(i) / 1000)
            + (received_at, f"gw-{k // 20 % GATEWAYS:04d}")
        )
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        started = time.perf_counter()
        for table, columns, types, rows in (
            ("raw_frames", FRAME_COLUMNS, FRAME_TYPES, receptions),
            ("readings", READING_COLUMNS, READING_TYPES, readings),
        ):
            with cur.copy(f"COPY {table} ({columns}) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(types)
                for row in rows:
                    copy.write_row(row)
        conn.commit()
        return len(frames) / (time.perf_counter() - started)


def peak_rss_mib(pid: int) -> float:
    """The process's peak resident set (VmHWM) in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    """CPU seconds (user and system) a process on this machine has used; 0 if it is gone."""
    return cpu_seconds_of(Path(f"/proc/{pid}/stat"))


def cpu_seconds_of(stat: Path) -> float:
    """CPU seconds (user and system) from a /proc stat file; 0 if it is gone."""
    try:
        fields = stat.read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# A worker's threads in the order it starts them (thread ids grow with creation order).
WORKER_THREADS = ("main (envelopes, decode, rows)", "metrics server", "paho network", "writer")


def thread_cpu(pids: list[int]) -> dict[str, float]:
    """CPU seconds so far of each worker thread, summed over workers, by WORKER_THREADS name."""
    totals: dict[str, float] = {}
    for pid in pids:
        try:
            tids = sorted(int(t.name) for t in Path(f"/proc/{pid}/task").iterdir())
        except FileNotFoundError:
            continue
        for k, tid in enumerate(tids):
            name = WORKER_THREADS[k] if k < len(WORKER_THREADS) else f"thread {k}"
            seconds = cpu_seconds_of(Path(f"/proc/{pid}/task/{tid}/stat"))
            totals[name] = totals.get(name, 0.0) + seconds
    return totals


def cpu_snapshot(
    conn: psycopg.Connection[Any], workers: list[int], broker: int
) -> dict[str, float]:
    """CPU seconds so far of the workers, their PostgreSQL backends and the broker."""
    backends = conn.execute(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
        " AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
    ).fetchall()
    return {
        "ingest workers": sum(cpu_seconds(pid) for pid in workers),
        "their PostgreSQL backends": sum(cpu_seconds(pid) for (pid,) in backends),
        "broker": cpu_seconds(broker),
    }


@dataclasses.dataclass(frozen=True)
class IngestRun:
    """One measured run: cold and sustained frames/s, highest peak RSS, and CPU microseconds
    per frame of the sustained part by process and by worker thread."""

    cold_rate: float
    rate: float
    rss_mib: float
    cpu_us: dict[str, float]
    thread_us: dict[str, float]


def committed(conn: psycopg.Connection[Any]) -> int:
    """Receptions stored so far."""
    return int(conn.execute("SELECT count(*) FROM raw_frames").fetchone()[0])  # type: ignore[index]


def publish_and_wait(
    conn: psycopg.Connection[Any], port: int, messages: list[tuple[str, bytes]], frames: int
) -> float:
    """Publish ``messages`` and wait until their ``frames`` are stored; return the seconds."""
    target = committed(conn) + frames
    started = time.perf_counter()
    run_publishers(port, messages)
    while committed(conn) < target:
        time.sleep(0.05)
    return time.perf_counter() - started


def ingest_run(
    url: str,
    broker: int,
    port: int,
    warm_up: tuple[list[tuple[str, bytes]], int],
    sustained: tuple[list[tuple[str, bytes]], int],
    workers: int,
) -> IngestRun:
    """Run ``workers`` ingest processes over a warm-up and then the sustained messages, each
    given with its frame count; return the rates, peak RSS and CPU use."""
    env = {
        **os.environ,
        "METERFLOW_DATABASE_URL": url,
        "METERFLOW_MQTT_URL": f"mqtt://127.0.0.1:{port}",
        "METERFLOW_METRICS_PORT": "0",
        "METERFLOW_INGEST_SHARED": "true",
        # A stopped member of a shared subscription keeps receiving its share into its
        # session until the session expires; benchmark sessions end with their process.
        "METERFLOW_INGEST_SESSION_EXPIRY_S": "0",
        "METERFLOW_LOG_LEVEL": "INFO",  # start-up lines only; nothing per batch
    }
    tag = uuid.uuid4().hex[:6]
    logs = [
        Path(tempfile.mkstemp(prefix="mf-bench-ingest-", suffix=".log")[1]) for _ in range(workers)
    ]
    procs = []
    for k, log in enumerate(logs):
        with log.open("wb") as out:
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "meterflow", "ingest"],
                    env={**env, "METERFLOW_INGEST_CLIENT_ID": f"bench-{tag}-{k}"},
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            )
    wait_subscribed(logs)
    pids = [p.pid for p in procs]
    with psycopg.connect(url, autocommit=True) as conn:
        cold_seconds = publish_and_wait(conn, port, *warm_up)
        cpu_before = cpu_snapshot(conn, pids, broker)
        threads_before = thread_cpu(pids)
        seconds = publish_and_wait(conn, port, *sustained)
        cpu_after = cpu_snapshot(conn, pids, broker)
        threads_after = thread_cpu(pids)
    rss = max(peak_rss_mib(p.pid) for p in procs)
    frames = sustained[1]
    cpu_us = {k: (cpu_after[k] - cpu_before[k]) / frames * 1e6 for k in cpu_after}
    thread_us = {
        k: (v - threads_before.get(k, 0.0)) / frames * 1e6 for k, v in threads_after.items()
    }
    for p in procs:
        p.terminate()
        p.wait(30)
    for log in logs:
        log.unlink()
    return IngestRun(warm_up[1] / cold_seconds, frames / seconds, rss, cpu_us, thread_us)


def wait_subscribed(logs: list[Path], timeout: float = 60.0) -> None:
    """Wait until every worker logged its subscription (messages before it would be lost).

    Raises TimeoutError if one has not subscribed within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while not all("subscribed to" in log.read_text() for log in logs):
        if time.monotonic() > deadline:
            raise TimeoutError("an ingest worker did not subscribe: " + logs[0].read_text())
        time.sleep(0.05)


def main() -> int:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(prog="python -m bench.ingest")
    parser.add_argument("--meters", type=int, default=METERS, help="distinct meters and keys")
    parser.add_argument(
        "--rounds", type=int, default=ROUNDS, help="frames per meter; the first warms up"
    )
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--envelopes", type=int, nargs="+", default=[20, 1], choices=[20, 1])
    args = parser.parse_args()
    if args.rounds < 2:
        parser.error("--rounds must be at least 2: one to warm up, one or more to measure")
    name = f"mf_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"'.encode())
    url = f"{ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    broker, port, folder = start_broker()
    try:
        migrate(url)
        with (
            psycopg.connect(url) as conn,
            conn.cursor().copy(
                "COPY meters (meter_id, manufacturer, serial, aes_key) FROM STDIN"
            ) as copy,
        ):
            for n in range(args.meters):
                copy.write_row((f"KAM-{n:08d}", "KAM", f"{n:08d}", key_of(n)))
        meters, total = args.meters, args.meters * args.rounds
        print(f"encoding {args.rounds} rounds of wM-Bus mode 5 frames of {meters} meters...")
        frames = encode_frames(total, meters)
        costs = in_process_costs(frames[:2000])
        print("in process, us per frame: " + ", ".join(f"{k} {v:.1f}" for k, v in costs.items()))
        for per_envelope in args.envelopes:
            # Envelopes of 1 are four times the messages: a quarter of the meters suffices.
            shown = meters if per_envelope > 1 else meters // 4
            picked = [i for i in range(total) if i % meters < shown]
            warm = [(i, frames[i]) for i in picked[:shown]]
            rest = [(i, frames[i]) for i in picked[shown:]]
            warm_messages = payloads(warm, per_envelope, meters)
            messages = payloads(rest, per_envelope, meters)
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("TRUNCATE raw_frames, readings")
            store = store_baseline(url, rest, meters)
            broker_rate = broker_baseline(port, messages, len(rest))
            slower = min(broker_rate, store)
            print(
                f"\nenvelopes of {per_envelope}: {shown} meters, {len(warm)} frames to warm up,"
                f" then {len(rest)} frames in {len(messages)} messages"
            )
            print(f"  broker baseline (bare subscriber): {broker_rate:,.0f} frames/s")
            print(f"  store baseline (binary COPY of the frames' rows): {store:,.0f} frames/s")
            for workers in args.workers:
                with psycopg.connect(url, autocommit=True) as conn:
                    conn.execute("TRUNCATE raw_frames, readings")
                    conn.execute("UPDATE meters SET first_seen_at = NULL, last_seen_at = NULL")
                warm_up, sustained = (warm_messages, len(warm)), (messages, len(rest))
                run = ingest_run(url, broker.pid, port, warm_up, sustained, workers)
                print(
                    f"  ingest, {workers} worker(s): sustained {run.rate:,.0f} frames/s = "
                    f"{run.rate / slower:.2f} x slower baseline (cold first round"
                    f" {run.cold_rate:,.0f}); peak RSS {run.rss_mib:.0f} MiB/worker"
                )
                cpu = ", ".join(f"{name} {us:.0f}" for name, us in run.cpu_us.items())
                print(f"    CPU us per frame: {cpu}")
                by_thread = ", ".join(f"{name} {us:.0f}" for name, us in run.thread_us.items())
                print(f"    worker CPU us per frame by thread: {by_thread}")
    finally:
        broker.terminate()
        broker.wait(10)
        shutil.rmtree(folder, ignore_errors=True)
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
