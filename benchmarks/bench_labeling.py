"""Labeling queue under load: N simulated annotators doing next -> submit loops over HTTP against gunicorn.

    createdb -h 127.0.0.1 -U postgres mhp_bench
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/mhp_bench .venv/bin/python manage.py migrate
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/mhp_bench .venv/bin/python manage.py seed_pairs --pairs 1000000
    .venv/bin/python benchmarks/bench_labeling.py --database-url postgres://postgres@127.0.0.1:5432/mhp_bench

Starts gunicorn (`--workers` processes, `--threads` threads each) on 127.0.0.1, makes `--annotators` annotator
accounts, and runs one asyncio task per annotator for `--duration` seconds (after `--warmup` seconds not
counted), each with its own keep-alive connection (a small HTTP/1.1 client: the load generator shares the
2 cores with the server, so it is kept cheap). Prints the claim (`POST /api/label/next/`) and submit latencies
(p50/p99), judgements stored per second, and the CPU time the web workers, PostgreSQL (every `postgres`
process on the machine) and this client spent per judgement.

`--flow api` (default) makes each judgement two calls, next then submit; `--flow page` one call, a submit
that also claims the next pair, as the labeling page does (its latency is then the claim latency).

Without `--rate` every annotator loops with no pause (a saturation test: with N closed-loop
clients the mean loop time is N / throughput, so latency there measures queueing). With `--rate R` the
annotators are paced to R judgements per second in all (each starts a loop every annotators / R seconds),
which measures latency at a given load.

`--order guided` first orders the queue by a synthetic scoring (random probabilities for every fresh pair, one
pair scoring run kept between runs, ranks written by `annotation.labeling.queue_order.queue_order_from_run` with
`--random-share`); `--order id` resets it to id order; both then VACUUM ANALYZE the pair table, so that runs
back to back compare the orders and not the dead rows the ranks left. `--while-ordering` (with `--direct 0`)
times claims and submits for as long as the order is being applied instead: what annotators live through
while an admin applies one.

`--auth session` (default) logs each annotator in once through the login form and sends the session
cookie and CSRF token, as the labeling page does. `--auth basic` sends the password with every
request: Django then runs its password hasher (PBKDF2, about a million iterations) on every request,
so that mode measures the hasher, not the queue.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import http.client
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ANSWERS = {"aesthetics": "left", "detail": "right", "alignment": "tie", "overall": "left"}
PASSWORD = "bench-pw-123456"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/mhp_bench")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--workers", type=int, default=4, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=1, help="threads per gunicorn worker (gthread when > 1)")
    parser.add_argument("--annotators", type=int, default=32)
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of load")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of load before measuring")
    parser.add_argument("--rate", type=float, default=None, help="pace the annotators to this many judgements/s")
    parser.add_argument("--auth", choices=["session", "basic"], default="session")
    parser.add_argument(
        "--flow",
        choices=["api", "page"],
        default="api",
        help="api: next then submit per judgement; page: one submit that also claims the next pair",
    )
    parser.add_argument(
        "--order",
        choices=["keep", "id", "guided"],
        default="keep",
        help="before the load: keep the queue's order, reset it to id order, or order it by a synthetic scoring "
        "(random probabilities for every fresh pair, written through queue_order_from_run)",
    )
    parser.add_argument("--random-share", type=float, default=0.2, help="random share of --order guided")
    parser.add_argument(
        "--direct",
        type=int,
        default=0,
        help="instead of the HTTP load: this many claim + submit cycles through the queue's own functions in one "
        "process, the annotators in turn, each claim timed (no web server, no queueing behind other requests)",
    )
    parser.add_argument(
        "--while-ordering",
        action="store_true",
        help="with --order id|guided: time direct claims (about 100 a second) while the order is being applied",
    )
    return parser.parse_args(argv)


def server_env(args: argparse.Namespace) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": args.database_url,
        "SECRET_KEY": "bench-only-secret-key-not-for-production",
        "DEBUG": "0",
        "ALLOWED_HOSTS": "127.0.0.1",
        "LOG_LEVEL": "WARNING",
        # Connections last the whole run: PostgreSQL's CPU is read from its live server processes.
        "DATABASE_CONN_MAX_AGE": "3600",
    }


def make_annotators(args: argparse.Namespace) -> list[str]:
    """Annotator accounts made through the project's own code, in a child process on the bench database."""
    names = [f"bench-annotator-{index}" for index in range(args.annotators)]
    code = (
        "import sys\n"
        "from django.contrib.auth import get_user_model\n"
        "from annotation.models import AnnotatorProfile\n"
        "from annotation.roles import role_assign\n"
        "User = get_user_model()\n"
        "for name in sys.argv[1:]:\n"
        "    user, created = User.objects.get_or_create(username=name)\n"
        # Hashing a password takes a few hundred ms: only for accounts this script has not made before.
        f"    if created or not user.has_usable_password(): user.set_password({PASSWORD!r})\n"
        "    user.is_active = True; user.save()\n"
        "    role_assign(user=user, role='annotator')\n"
        "    AnnotatorProfile.objects.update_or_create(user=user, defaults={'labeling_enabled': True})\n"
    )
    command = [sys.executable, "-c", "import django, os; django.setup(); exec(os.environ['BENCH_CODE'])", *names]
    env = {**server_env(args), "DJANGO_SETTINGS_MODULE": "mhp.settings", "BENCH_CODE": code}
    subprocess.run(command, cwd=ROOT, env=env, check=True)
    return names


# The synthetic scoring: one succeeded run, kept between runs, with random probabilities for the fresh pairs.
_ORDER_CODE = """
import sys, time
from django.db import connection
from annotation.labeling.queue_order import queue_order_from_run, queue_order_reset
from mhp.jobs import JobStatus
from training.models import PairScoringRun
started = time.monotonic()
if sys.argv[1] == "id":
    queue_order_reset()
else:
    run, created = PairScoringRun.objects.get_or_create(
        checkpoint_path="bench:synthetic", defaults={"status": JobStatus.SUCCEEDED}
    )
    if created:
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO training_pairscore (run_id, pair_id, aesthetics, detail, alignment, overall)"
                " SELECT %s, id, random(), random(), random(), random() FROM annotation_pair"
                " WHERE judgements_done = 0 AND NOT is_gold",
                [run.pk],
            )
            cursor.execute("ANALYZE training_pairscore")
        print(f"synthetic scores written in {time.monotonic() - started:.1f} s", flush=True)
        started = time.monotonic()
    order = queue_order_from_run(run, random_share=float(sys.argv[2]), seed=0)
    print(f"{order.pairs_ranked} fresh pairs ranked", flush=True)
print(f"queue order {sys.argv[1]} applied in {time.monotonic() - started:.1f} s", flush=True)
started = time.monotonic()
with connection.cursor() as cursor:
    cursor.execute("VACUUM ANALYZE annotation_pair")
print(f"VACUUM ANALYZE annotation_pair: {time.monotonic() - started:.1f} s", flush=True)
"""


_DIRECT_CODE = """
import itertools, os, statistics, sys, time, uuid
from django.contrib.auth import get_user_model
from annotation.labeling import queue
users = list(get_user_model().objects.filter(username__in=sys.argv[2:]))
answers = {"aesthetics": "left", "detail": "right", "alignment": "tie", "overall": "left"}
claims, submits, empty = [], [], 0
# 0 cycles: until the order running beside this process is done, paced to about 100 claims a second.
until = os.environ.get("BENCH_UNTIL_FILE")
for cycle in itertools.count() if until else range(int(sys.argv[1])):
    if until:
        if os.path.exists(until):
            break
        time.sleep(0.01)
    user = users[cycle % len(users)]
    started = time.perf_counter()
    lease = queue.pair_claim(annotator=user)
    claims.append((time.perf_counter() - started) * 1000)
    if lease is None:
        empty += 1
        continue
    started = time.perf_counter()
    queue.judgement_submit(annotator=user, pair_id=lease.pair_id, answers=answers, client_token=uuid.uuid4())
    submits.append((time.perf_counter() - started) * 1000)
def figures(times):
    times = sorted(times)
    pick = lambda share: times[min(len(times) - 1, int(share * len(times)))]
    return (
        f"mean {statistics.fmean(times):.2f} ms, p50 {pick(0.5):.2f} ms, p95 {pick(0.95):.2f} ms, "
        f"p99 {pick(0.99):.2f} ms, max {times[-1]:.1f} ms"
    )
print(f"direct claims: {len(claims)} ({empty} empty), {figures(claims)}")
print(f"direct submits: {len(submits)}, {figures(submits)}")
"""


def run_direct(args: argparse.Namespace, names: list[str], until_file: str | None = None) -> subprocess.Popen:
    """Claim + submit cycles through the project's queue functions, each claim timed (see --direct); with
    `until_file`, until that file exists."""
    command = [sys.executable, "-c", "import django, os; django.setup(); exec(os.environ['BENCH_CODE'])"]
    env = {**server_env(args), "DJANGO_SETTINGS_MODULE": "mhp.settings", "BENCH_CODE": _DIRECT_CODE}
    if until_file:
        env["BENCH_UNTIL_FILE"] = until_file
    return subprocess.Popen([*command, str(args.direct), *names], cwd=ROOT, env=env)


def order_queue(args: argparse.Namespace) -> subprocess.Popen | None:
    """Reset the queue to id order or order it by a synthetic scoring, through the project's own code."""
    if args.order == "keep":
        return None
    command = [sys.executable, "-c", "import django, os; django.setup(); exec(os.environ['BENCH_CODE'])"]
    env = {**server_env(args), "DJANGO_SETTINGS_MODULE": "mhp.settings", "BENCH_CODE": _ORDER_CODE}
    return subprocess.Popen([*command, args.order, str(args.random_share)], cwd=ROOT, env=env)


def claims_while_ordering(args: argparse.Namespace, names: list[str]) -> None:
    """Time direct claims for as long as the order is being applied (--while-ordering)."""
    with tempfile.TemporaryDirectory() as folder:
        done = f"{folder}/ordered"
        claims = run_direct(args, names, until_file=done)
        order = order_queue(args)
        order_status = order.wait() if order is not None else 0
        Path(done).touch()
        if claims.wait() or order_status:
            raise SystemExit("the order or the claims failed")


def start_server(args: argparse.Namespace) -> subprocess.Popen:
    gunicorn = ROOT / ".venv" / "bin" / "gunicorn"
    bind = f"127.0.0.1:{args.port}"
    command = [str(gunicorn), "mhp.wsgi", "-w", str(args.workers), "-b", bind, "--log-level", "warning"]
    if args.threads > 1:
        command += ["--threads", str(args.threads)]
    server = subprocess.Popen(command, cwd=ROOT, env=server_env(args))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", args.port, timeout=2)
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                return server
        except OSError:
            time.sleep(0.2)
    server.terminate()
    raise SystemExit("gunicorn did not answer /healthz within 60 s")


@dataclass
class Results:
    claim_ms: list[float] = field(default_factory=list)
    submit_ms: list[float] = field(default_factory=list)
    stored: int = 0
    empty: int = 0
    errors: list[str] = field(default_factory=list)
    reconnects: int = 0


def login(port: int, username: str, auth: str) -> dict[str, str]:
    """The headers one annotator sends: a session cookie + CSRF token from the login form, or basic auth."""
    headers = {"Content-Type": "application/json", "Host": "127.0.0.1"}
    if auth == "basic":
        token = base64.b64encode(f"{username}:{PASSWORD}".encode()).decode()
        return {**headers, "Authorization": f"Basic {token}"}
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("GET", "/accounts/login/", headers={"Host": "127.0.0.1"})
    response = connection.getresponse()
    response.read()
    csrf = SimpleCookie(response.getheader("Set-Cookie"))["csrftoken"].value
    form = f"username={username}&password={PASSWORD}&csrfmiddlewaretoken={csrf}"
    form_headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "Cookie": f"csrftoken={csrf}",
        "Referer": "http://127.0.0.1/accounts/login/",
        "Host": "127.0.0.1",
    }
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("POST", "/accounts/login/", body=form, headers=form_headers)
    response = connection.getresponse()
    response.read()
    session = re.search(r"sessionid=([^;]+)", response.getheader("Set-Cookie") or "")
    if response.status != 302 or session is None:
        raise RuntimeError(f"login of {username} failed: HTTP {response.status}")
    new_csrf = re.search(r"csrftoken=([^;]+)", response.getheader("Set-Cookie") or "")
    csrf = new_csrf.group(1) if new_csrf else csrf
    cookie = f"csrftoken={csrf}; sessionid={session.group(1)}"
    return {**headers, "Cookie": cookie, "X-CSRFToken": csrf, "Referer": "http://127.0.0.1/label/"}


class Annotator:
    """One simulated annotator: a keep-alive HTTP/1.1 connection driven by the event loop.

    A small hand-written client, so that the load generator (which shares the 2 cores with the server)
    spends little CPU per request: one write, one read of the head, one read of the body.
    """

    def __init__(self, port: int, headers: dict[str, str]) -> None:
        self.port = port
        self.head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.reconnects = 0

    async def call(self, path: str, body: dict) -> tuple[int, float, bytes]:
        payload = json.dumps(body).encode()
        request = f"POST {path} HTTP/1.1\r\n{self.head}Content-Length: {len(payload)}\r\n\r\n".encode() + payload
        started = time.perf_counter()
        try:
            status, data = await self._exchange(request)
        except (ConnectionError, asyncio.IncompleteReadError):
            # The server closed an idle keep-alive connection (gthread workers do after --keep-alive
            # seconds): reconnect and send again, as a browser does. Both calls are safe to repeat:
            # next returns the lease already held, submit is idempotent by its client token.
            self.reconnects += 1
            await self.close()
            status, data = await self._exchange(request)
        return status, (time.perf_counter() - started) * 1000, data

    async def _exchange(self, request: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        fields = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:] if line)}
        data = await self.reader.readexactly(int(fields.get("content-length", "0")))
        if fields.get("connection", "").lower() == "close":
            await self.close()
        return status, data

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.reader = self.writer = None


async def annotate(
    annotator: Annotator,
    window: tuple[float, float],
    interval: float | None,
    phase: float,
    results: Results,
    flow: str,
) -> None:
    """One judgement per loop until the window ends; only loops that start inside the window are counted.

    `flow` "api": next, then submit (two calls a judgement). "page": what the labeling page does, a
    submit that also claims the next pair (one call a judgement; its latency is the claim's too).
    Paced annotators start `phase` (a share of the interval) apart, so that they do not all arrive at once.
    """
    measure_from, stop_at = window
    next_start = time.monotonic() + (interval or 0.0) * phase
    pair = None
    try:
        while (now := time.monotonic()) < stop_at:
            if interval is not None:
                if next_start > now:
                    await asyncio.sleep(next_start - now)
                # Paced: a late loop starts at once but does not make up for the time lost.
                next_start = max(next_start + interval, time.monotonic())
            counted = time.monotonic() >= measure_from
            if pair is None:
                status, elapsed, data = await annotator.call("/api/label/next/", {"exclude": []})
                if counted and flow == "api":
                    results.claim_ms.append(elapsed)
                if status == 204:
                    results.empty += counted
                    await asyncio.sleep(0.05)
                    continue
                if status != 200:
                    raise RuntimeError(f"next: HTTP {status} {data[:200]!r}")
                pair = json.loads(data)
            body = {
                "pair_id": pair["pair_id"],
                "answers": ANSWERS,
                "client_token": str(uuid.uuid4()),
                "duration_ms": 1500,
            }
            if flow == "page":
                body["next"] = {"exclude": []}
            status, elapsed, data = await annotator.call("/api/label/submit/", body)
            if status != 201:
                raise RuntimeError(f"submit: HTTP {status} {data[:200]!r}")
            pair = json.loads(data).get("next")
            if counted:
                results.submit_ms.append(elapsed)
                results.stored += 1
                if flow == "page":
                    results.claim_ms.append(elapsed)
    except (OSError, RuntimeError, asyncio.IncompleteReadError) as error:
        # A failing annotator is reported with the figures, not swallowed.
        results.errors.append(repr(error))
    finally:
        await annotator.close()


def _cpu_seconds(pids: list[int]) -> float:
    """utime + stime of these processes (from /proc; a process that is gone counts 0)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / ticks


def _pids(parent: int | None = None, comm: str | None = None) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            head, rest = (entry / "stat").read_text().rsplit(")", 1)
        except OSError:
            continue
        if (parent is not None and int(rest.split()[1]) == parent) or (comm and head.split("(", 1)[1] == comm):
            found.append(int(entry.name))
    return found


def _machine_busy_seconds() -> float:
    """CPU time every core spent outside idle and iowait since boot (the `cpu` line of /proc/stat)."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle, iowait = fields[3], fields[4]
    return (sum(fields[:8]) - idle - iowait) / os.sysconf("SC_CLK_TCK")


@dataclass
class CpuSample:
    web: float
    database: float
    client: float
    machine: float

    @classmethod
    def take(cls, server_pid: int) -> CpuSample:
        web = _cpu_seconds([server_pid, *_pids(parent=server_pid)])
        database = _cpu_seconds(_pids(comm="postgres"))
        return cls(web=web, database=database, client=time.process_time(), machine=_machine_busy_seconds())


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def run_load(args: argparse.Namespace, names: list[str], server_pid: int) -> tuple[Results, float, dict]:
    # Each login runs the password hasher on the server: several at once, as many as it has workers.
    with ThreadPoolExecutor(max_workers=args.workers * args.threads) as pool:
        headers = list(pool.map(lambda name: login(args.port, name, args.auth), names))
    return asyncio.run(_load(args, headers, server_pid))


async def _load(args: argparse.Namespace, headers: list[dict], server_pid: int) -> tuple[Results, float, dict]:
    annotators = [Annotator(args.port, each) for each in headers]
    results = Results()
    started = time.monotonic()
    window = (started + args.warmup, started + args.warmup + args.duration)
    interval = args.annotators / args.rate if args.rate else None
    tasks = [
        asyncio.create_task(annotate(annotator, window, interval, index / len(annotators), results, args.flow))
        for index, annotator in enumerate(annotators)
    ]
    await asyncio.sleep(max(0.0, window[0] - time.monotonic()))
    before = CpuSample.take(server_pid)
    await asyncio.sleep(max(0.0, window[1] - time.monotonic()))
    after = CpuSample.take(server_pid)
    await asyncio.gather(*tasks)
    results.reconnects = sum(annotator.reconnects for annotator in annotators)
    cpu = {name: getattr(after, name) - getattr(before, name) for name in ("web", "database", "client", "machine")}
    return results, args.duration, cpu


def report(args: argparse.Namespace, results: Results, elapsed: float, cpu: dict) -> None:
    pacing = f", paced to {args.rate:g} judgements/s" if args.rate else ", closed loop"
    pacing += ", next + submit" if args.flow == "api" else ", submit claiming the next pair (as the page does)"
    order = {"keep": "as found", "id": "id order", "guided": f"guided, random share {args.random_share:g}"}
    print(f"queue order: {order[args.order]}")
    print(
        f"{args.annotators} annotators, {args.workers} gunicorn workers x {args.threads} threads, "
        f"{args.auth} auth{pacing}, {elapsed:.1f} s measured after {args.warmup:g} s warm-up"
    )
    print(
        f"claims: {len(results.claim_ms)}, p50 {percentile(results.claim_ms, 0.5):.1f} ms, "
        f"p95 {percentile(results.claim_ms, 0.95):.1f} ms, p99 {percentile(results.claim_ms, 0.99):.1f} ms, "
        f"mean {statistics.fmean(results.claim_ms or [0]):.1f} ms"
    )
    print(
        f"submits: {len(results.submit_ms)}, p50 {percentile(results.submit_ms, 0.5):.1f} ms, "
        f"p99 {percentile(results.submit_ms, 0.99):.1f} ms"
    )
    rate = results.stored / elapsed
    print(
        f"judgements stored: {results.stored}, {rate:.1f} per second; empty claims {results.empty}; "
        f"reconnects after an idle keep-alive was closed {results.reconnects}"
    )
    if results.stored:
        per = {name: seconds * 1000 / results.stored for name, seconds in cpu.items()}
        print(
            f"CPU per judgement: web {per['web']:.2f} ms, PostgreSQL {per['database']:.2f} ms, "
            f"client {per['client']:.2f} ms; the whole machine {per['machine']:.2f} ms "
            f"({cpu['machine'] / elapsed:.2f} of {os.cpu_count()} cores busy)"
        )
    for error in results.errors[:5]:
        print(f"error: {error}")


def start_worker(args: argparse.Namespace) -> subprocess.Popen | None:
    """With REDIS_URL set, a Celery worker with beat, as a deployment runs one: its periodic upkeep of the
    lease table (`annotation.lease_table_upkeep`) is part of what the queue costs."""
    if not os.environ.get("REDIS_URL"):
        return None
    celery = ROOT / ".venv" / "bin" / "celery"
    command = [str(celery), "-A", "mhp", "worker", "-B", "-Q", "default", "--concurrency", "1"]
    command += ["--loglevel", "WARNING", "--schedule", f"/tmp/bench-celerybeat-{args.port}"]
    return subprocess.Popen(command, cwd=ROOT, env=server_env(args))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Other work on the machine skews every figure: the 1-minute load average before the run says how much.
    print(f"load average before the run: {os.getloadavg()[0]:.2f}", flush=True)
    if not os.environ.get("REDIS_URL"):
        print("REDIS_URL is not set: sessions from PostgreSQL, no Celery beat (no lease-table upkeep)", flush=True)
    names = make_annotators(args)
    if args.while_ordering:
        claims_while_ordering(args, names)
        return 0
    order = order_queue(args)
    if order is not None and order.wait():
        raise SystemExit("the order failed")
    if args.direct:
        return run_direct(args, names).wait()
    worker = start_worker(args)
    server = start_server(args)
    try:
        results, elapsed, cpu = run_load(args, names, server.pid)
    finally:
        for process in (server, worker):
            if process is not None:
                process.terminate()
                process.wait(timeout=30)
    report(args, results, elapsed, cpu)
    return 1 if results.errors else 0


if __name__ == "__main__":
    sys.exit(main())
