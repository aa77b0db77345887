"""zerorpc-python's side of `cargo xtask bench`, with gevent.

The same workloads as zerorpc-load-server and zerorpc-load-client, so that
the figures compare what a Python user of zerorpc 0.6.3 gets:

    python_peer.py server --bind ENDPOINT
    python_peer.py client --connect ENDPOINT --calls N [--in-flight W] [--bytes B] [--warmup N]
    python_peer.py client --connect ENDPOINT --stream-items N [--item-bytes B]

The server prints `listening ENDPOINT` once bound and serves `echo(value)`
and the stream `blobs(n, size)`. The client makes its calls through one
zerorpc.Client, W greenlets at a time, checks every answer and prints one
JSON line as zerorpc-load-client does: ok, failed, wrong, errors,
elapsed_s and, for calls, latency_us (p50, p90, p99, max, mean). It exits 0
only if everything was right.
"""

import argparse
import json
import math
import sys
import time

import gevent.pool
import zerorpc


def stream_item(index, size):
    """Item `index` of a stream, as zerorpc_load::stream_item makes it."""
    head = index.to_bytes(8, "little")[:size]
    return head + b"x" * (size - len(head))


def is_stream_item(blob, index, size):
    """As zerorpc_load::is_stream_item: the length and the index only."""
    head = min(size, 8)
    return (
        isinstance(blob, bytes)
        and len(blob) == size
        and blob[:head] == index.to_bytes(8, "little")[:head]
    )


class Bench(object):
    def echo(self, value):
        return value

    @zerorpc.stream
    def blobs(self, n, size):
        return (stream_item(i, size) for i in range(n))


def serve(args):
    server = zerorpc.Server(Bench())
    server.bind(args.bind)
    print("listening " + args.bind, flush=True)
    server.run()


def percentile(ordered, percent):
    rank = math.ceil(percent / 100.0 * len(ordered))
    return ordered[min(max(rank, 1), len(ordered)) - 1]


class Tally(object):
    def __init__(self):
        self.ok = 0
        self.failed = 0
        self.wrong = 0
        self.errors = {}

    def add(self, outcome):
        if outcome is True:
            self.ok += 1
        elif outcome is False:
            self.wrong += 1
        else:
            self.failed += 1
            self.errors[outcome] = self.errors.get(outcome, 0) + 1


def call(client, index, payload):
    """Calls echo([index, payload]); True, False (wrong) or the error's text."""
    started = time.perf_counter()
    try:
        answer = client.echo([index, payload])
    except Exception as error:  # every failure is counted, by its text
        return "%s: %s" % (type(error).__name__, error), time.perf_counter() - started
    right = list(answer) == [index, payload]
    return right, time.perf_counter() - started


def run_calls(client, args):
    payload = b"x" * args.bytes
    pool = gevent.pool.Pool(args.in_flight)
    for outcome, _ in pool.imap_unordered(lambda i: call(client, i, payload), range(args.warmup)):
        if outcome is not True:
            sys.exit("python_peer.py: a warm-up call failed: %s" % (outcome,))
    tally = Tally()
    latencies = []
    started = time.perf_counter()
    calls = range(args.warmup, args.warmup + args.calls)
    for outcome, took in pool.imap_unordered(lambda i: call(client, i, payload), calls):
        tally.add(outcome)
        latencies.append(took)
    elapsed = time.perf_counter() - started
    report = {}
    if latencies:
        latencies.sort()
        micros = lambda seconds: seconds * 1e6
        report["latency_us"] = {
            "p50": micros(percentile(latencies, 50)),
            "p90": micros(percentile(latencies, 90)),
            "p99": micros(percentile(latencies, 99)),
            "max": micros(latencies[-1]),
            "mean": micros(sum(latencies) / len(latencies)),
        }
    return tally, elapsed, report


def run_stream(client, args):
    tally = Tally()
    started = time.perf_counter()
    expected = 0
    outcome = True
    try:
        for blob in client.blobs(args.stream_items, args.item_bytes):
            if expected >= args.stream_items or not is_stream_item(blob, expected, args.item_bytes):
                outcome = False
                break
            expected += 1
        if expected != args.stream_items:
            outcome = False
    except Exception as error:
        outcome = "%s: %s" % (type(error).__name__, error)
    tally.add(outcome)
    return tally, time.perf_counter() - started, {}


def client_main(args):
    client = zerorpc.Client(timeout=args.timeout)
    client.connect(args.connect)
    if args.stream_items is None:
        tally, elapsed, report = run_calls(client, args)
    else:
        tally, elapsed, report = run_stream(client, args)
    report.update(
        ok=tally.ok,
        failed=tally.failed,
        wrong=tally.wrong,
        errors=tally.errors,
        elapsed_s=elapsed,
    )
    print(json.dumps(report), flush=True)
    client.close()
    return 0 if tally.failed == 0 and tally.wrong == 0 else 1


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    server = commands.add_parser("server", help="serve echo and blobs")
    server.add_argument("--bind", required=True)
    client = commands.add_parser("client", help="make calls or read a stream")
    client.add_argument("--connect", required=True)
    client.add_argument("--calls", type=int, default=1000)
    client.add_argument("--in-flight", type=int, default=1)
    client.add_argument("--bytes", type=int, default=64)
    client.add_argument("--warmup", type=int, default=0)
    client.add_argument("--stream-items", type=int)
    client.add_argument("--item-bytes", type=int, default=64)
    client.add_argument("--timeout", type=float, default=60)
    args = parser.parse_args()
    if args.command == "server":
        serve(args)
        return 0
    for name in ("calls", "warmup", "bytes", "item_bytes"):
        if getattr(args, name) < 0:
            parser.error("--%s must not be negative" % name.replace("_", "-"))
    if args.in_flight < 1:
        parser.error("--in-flight must be at least 1")
    if args.stream_items is not None and args.stream_items < 0:
        parser.error("--stream-items must not be negative")
    return client_main(args)


if __name__ == "__main__":
    sys.exit(main())
