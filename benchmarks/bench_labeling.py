"""Labeling queue under load: N simulated annotators doing next -> submit loops over HTTP against gunicorn.

    createdb -h 127.0.0.1 -U postgres mhp_bench
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/mhp_bench .venv/bin/python manage.py migrate
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/mhp_bench .venv/bin/python manage.py seed_pairs --pairs 1000000
    .venv/bin/python benchmarks/bench_labeling.py --database-url postgres://postgres@127.0.0.1:5432/mhp_bench

Starts gunicorn (`--workers` processes) on 127.0.0.1, makes `--annotators` annotator accounts, and runs one
thread per annotator for `--duration` seconds, each with its own keep-alive connection. Prints the claim
(`POST /api/label/next/`) and submit latencies (p50/p99) and judgements stored per second.

`--auth session` (default) logs each annotator in once through the login form and sends the session
cookie and CSRF token, as the labeling page does. `--auth basic` sends the password with every
request: Django then runs its password hasher (PBKDF2, about a million iterations) on every request,
so that mode measures the hasher, not the queue.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time
import uuid
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
    parser.add_argument("--annotators", type=int, default=32)
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of load")
    parser.add_argument("--auth", choices=["session", "basic"], default="session")
    return parser.parse_args(argv)


def server_env(args: argparse.Namespace) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": args.database_url,
        "SECRET_KEY": "bench-only-secret-key-not-for-production",
        "DEBUG": "0",
        "ALLOWED_HOSTS": "127.0.0.1",
        "LOG_LEVEL": "WARNING",
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
        "    user, _ = User.objects.get_or_create(username=name)\n"
        f"    user.set_password({PASSWORD!r}); user.is_active = True; user.save()\n"
        "    role_assign(user=user, role='annotator')\n"
        "    AnnotatorProfile.objects.update_or_create(user=user, defaults={'labeling_enabled': True})\n"
    )
    command = [sys.executable, "-c", "import django, os; django.setup(); exec(os.environ['BENCH_CODE'])", *names]
    env = {**server_env(args), "DJANGO_SETTINGS_MODULE": "mhp.settings", "BENCH_CODE": code}
    subprocess.run(command, cwd=ROOT, env=env, check=True)
    return names


def start_server(args: argparse.Namespace) -> subprocess.Popen:
    gunicorn = ROOT / ".venv" / "bin" / "gunicorn"
    bind = f"127.0.0.1:{args.port}"
    command = [str(gunicorn), "mhp.wsgi", "-w", str(args.workers), "-b", bind, "--log-level", "warning"]
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
    lock: threading.Lock = field(default_factory=threading.Lock)


class Client:
    """One annotator: a keep-alive connection and the headers its authentication needs."""

    def __init__(self, port: int, username: str, auth: str) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.headers = {"Content-Type": "application/json", "Host": "127.0.0.1"}
        if auth == "basic":
            token = base64.b64encode(f"{username}:{PASSWORD}".encode()).decode()
            self.headers["Authorization"] = f"Basic {token}"
        else:
            self._login(username)

    def _login(self, username: str) -> None:
        status, _, response = self.call("GET", "/accounts/login/")
        cookies = SimpleCookie(response.getheader("Set-Cookie"))
        csrf = cookies["csrftoken"].value
        form = f"username={username}&password={PASSWORD}&csrfmiddlewaretoken={csrf}"
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "Cookie": f"csrftoken={csrf}",
            "Referer": "http://127.0.0.1/accounts/login/",
            "Host": "127.0.0.1",
        }
        self.connection.request("POST", "/accounts/login/", body=form, headers=headers)
        response = self.connection.getresponse()
        response.read()
        session = re.search(r"sessionid=([^;]+)", response.getheader("Set-Cookie") or "")
        if response.status != 302 or session is None:
            raise RuntimeError(f"login of {username} failed: HTTP {response.status}")
        new_csrf = re.search(r"csrftoken=([^;]+)", response.getheader("Set-Cookie") or "")
        csrf = new_csrf.group(1) if new_csrf else csrf
        self.headers.update({"Cookie": f"csrftoken={csrf}; sessionid={session.group(1)}", "X-CSRFToken": csrf})
        self.headers["Referer"] = "http://127.0.0.1/label/"

    def call(self, method: str, path: str, body: dict | None = None):
        started = time.perf_counter()
        self.connection.request(method, path, body=json.dumps(body) if body is not None else None, headers=self.headers)
        response = self.connection.getresponse()
        data = response.read()
        return response.status, (time.perf_counter() - started) * 1000, _Response(response, data)


class _Response:
    def __init__(self, response: http.client.HTTPResponse, data: bytes) -> None:
        self.response, self.data = response, data

    def getheader(self, name: str) -> str | None:
        return self.response.getheader(name)

    def json(self) -> dict:
        return json.loads(self.data)


def annotate(client: Client, stop_at: float, results: Results) -> None:
    claims, submits, stored, empty = [], [], 0, 0
    try:
        while time.monotonic() < stop_at:
            status, elapsed, response = client.call("POST", "/api/label/next/", {"exclude": []})
            claims.append(elapsed)
            if status == 204:
                empty += 1
                time.sleep(0.05)
                continue
            if status != 200:
                raise RuntimeError(f"next: HTTP {status} {response.data[:200]!r}")
            body = {
                "pair_id": response.json()["pair_id"],
                "answers": ANSWERS,
                "client_token": str(uuid.uuid4()),
                "duration_ms": 1500,
            }
            status, elapsed, response = client.call("POST", "/api/label/submit/", body)
            submits.append(elapsed)
            if status != 201:
                raise RuntimeError(f"submit: HTTP {status} {response.data[:200]!r}")
            stored += 1
    except (OSError, RuntimeError, http.client.HTTPException) as error:
        # A failing annotator is reported with the figures, not swallowed.
        with results.lock:
            results.errors.append(repr(error))
    with results.lock:
        results.claim_ms += claims
        results.submit_ms += submits
        results.stored += stored
        results.empty += empty


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def run_load(args: argparse.Namespace, names: list[str]) -> tuple[Results, float]:
    clients = [Client(args.port, name, args.auth) for name in names]
    results = Results()
    started = time.monotonic()
    stop_at = started + args.duration
    threads = [threading.Thread(target=annotate, args=(client, stop_at, results)) for client in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results, time.monotonic() - started


def report(args: argparse.Namespace, results: Results, elapsed: float) -> None:
    print(f"{args.annotators} annotators, {args.workers} gunicorn workers, {args.auth} auth, {elapsed:.1f} s")
    print(
        f"claims: {len(results.claim_ms)}, p50 {percentile(results.claim_ms, 0.5):.1f} ms, "
        f"p99 {percentile(results.claim_ms, 0.99):.1f} ms, mean {statistics.fmean(results.claim_ms or [0]):.1f} ms"
    )
    print(
        f"submits: {len(results.submit_ms)}, p50 {percentile(results.submit_ms, 0.5):.1f} ms, "
        f"p99 {percentile(results.submit_ms, 0.99):.1f} ms"
    )
    rate = results.stored / elapsed
    print(f"judgements stored: {results.stored}, {rate:.1f} per second; empty claims {results.empty}")
    for error in results.errors[:5]:
        print(f"error: {error}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    names = make_annotators(args)
    server = start_server(args)
    try:
        results, elapsed = run_load(args, names)
    finally:
        server.terminate()
        server.wait(timeout=30)
    report(args, results, elapsed)
    return 1 if results.errors else 0


if __name__ == "__main__":
    sys.exit(main())
