"""`python -m devstack.traffic` (`make traffic`): mixed traffic for the local stack, so the AIOps
functions have something to find: logins (and failed ones), documents (some uploaded), alerts,
list reads, and a share of bad requests (unknown routes, invalid bodies, forbidden calls, a
bad cursor) that end as 4xx lines in the functions' logs.

    python -m devstack.traffic [--url http://127.0.0.1:3000] [--requests 300] [--burst 4]

`--burst N` makes every N-th round a burst of errors (what the anomaly detector should see).
Logs in as the bootstrap admin (`LOTABOTS_BOOTSTRAP_ADMIN_EMAIL` / `_PASSWORD`, the local
defaults otherwise). Prints a count per status code.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import uuid
from collections import Counter
from typing import Any

import httpx

from devstack.environment import DEFAULT_ADMIN_EMAIL, DEFAULT_ADMIN_PASSWORD


class Traffic:
    def __init__(self, url: str, seed: int) -> None:
        self.http = httpx.Client(base_url=url, timeout=30, trust_env=False)
        self.random = random.Random(seed)
        self.statuses: Counter[int] = Counter()
        self.admin: dict[str, str] = {}
        self.member: dict[str, str] = {}

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = self.http.request(method, path, **kwargs)
        self.statuses[response.status_code] += 1
        return response

    def login(self, email: str, password: str) -> dict[str, str]:
        response = self.call("POST", "/auth/login", json={"email": email, "password": password})
        if response.status_code != 200:
            raise SystemExit(f"login as {email} failed: {response.status_code} {response.text[:200]}")
        return {"Authorization": f"Bearer {response.json()['access_token']}"}

    def setup(self) -> None:
        email = os.environ.get("LOTABOTS_BOOTSTRAP_ADMIN_EMAIL", DEFAULT_ADMIN_EMAIL)
        password = os.environ.get("LOTABOTS_BOOTSTRAP_ADMIN_PASSWORD", DEFAULT_ADMIN_PASSWORD)
        self.admin = self.login(email, password)
        member_email = f"traffic-{uuid.uuid4().hex[:8]}@lotabots.local"
        self.call(
            "POST",
            "/auth/register",
            json={"email": member_email, "password": "traffic-password-long", "display_name": "traffic"},
        )
        self.member = self.login(member_email, "traffic-password-long")

    def good(self, i: int) -> None:
        choice = self.random.random()
        if choice < 0.3:
            self.document(upload=i % 5 == 0)
        elif choice < 0.45:
            self.call(
                "POST",
                "/alerts",
                headers=self.admin,
                json={
                    "labels": {"alertname": f"Traffic{i % 3}", "severity": "warning", "service": "traffic"},
                    "annotations": {"summary": f"traffic alert {i}"},
                },
            )
        elif choice < 0.7:
            self.call("GET", "/documents", headers=self.member, params={"limit": 10})
        elif choice < 0.85:
            self.call("GET", "/alerts", headers=self.admin)
        else:
            self.call("GET", "/jobs", headers=self.admin)

    def document(self, *, upload: bool) -> None:
        data = f"traffic document {uuid.uuid4().hex}\n".encode() * 4
        response = self.call(
            "POST",
            "/documents",
            headers=self.member,
            json={"title": "traffic", "content_type": "text/plain", "size_bytes": len(data)},
        )
        if upload and response.status_code == 201:
            form = response.json()["upload"]
            httpx.post(
                form["url"], data=form["fields"], files={"file": ("t.txt", data, "text/plain")}, timeout=30
            )

    def bad(self, i: int) -> None:
        kind = i % 6
        if kind == 0:
            self.call(
                "POST", "/auth/login", json={"email": "nobody@lotabots.local", "password": "wrong-password"}
            )
        elif kind == 1:
            self.call("GET", f"/documents/{uuid.uuid4().hex}", headers=self.member)
        elif kind == 2:
            self.call("POST", "/documents", headers=self.member, json={"title": "", "size_bytes": -1})
        elif kind == 3:
            self.call("GET", "/audit", headers=self.member)
        elif kind == 4:
            self.call("GET", "/alerts", headers=self.admin, params={"cursor": "not-a-cursor"})
        else:
            self.call(
                "POST",
                "/jobs",
                headers=self.admin,
                json={"type": "embed", "input": {"document_id": "missing"}},
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.traffic", description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("LOTABOTS_URL", "http://127.0.0.1:3000"))
    parser.add_argument("--requests", type=int, default=300, help="rounds of traffic (default 300)")
    parser.add_argument("--burst", type=int, default=10, help="every N-th round is a burst of bad requests")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    traffic = Traffic(args.url, args.seed)
    try:
        traffic.setup()
        for i in range(args.requests):
            if args.burst and i % args.burst == args.burst - 1:
                for j in range(6):
                    traffic.bad(i + j)
            else:
                traffic.good(i)
                if traffic.random.random() < 0.15:
                    traffic.bad(i)
    except httpx.TransportError as exc:
        print(f"cannot reach {args.url}: {exc} (is the local stack running? `make dev`)", file=sys.stderr)
        return 2
    print("requests by status: " + ", ".join(f"{k}: {v}" for k, v in sorted(traffic.statuses.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
