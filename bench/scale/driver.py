"""``python -m bench.scale.driver``: the client side of the scale test, in its own process.

Reads a JSON spec on stdin; starts the SDK service processes
(:mod:`bench.scale.services`); prints ``{"ready": ...}`` once they follow the
feed, then waits for a ``go`` line and drives, through the balancer only:

- *chains*: one client each, signed in once (password grant), then refreshing
  over and over, always with the last refresh token it was answered;
- *sign-ins*: password grants for random users;
- *client credentials*: a service client's own tokens;
- *blocks*: every ``block_interval`` seconds a fresh user signs in, every
  service accepts the user's token, the admin blocks the user, and each
  service reports when it first rejects the token.

A request answered 502/503/504 or failing to connect is retried after 100 ms
(the same request: the same refresh token), as a client library would; every
failed attempt is recorded with its instant. After ``duration`` seconds the
chains are checked (:func:`_final_checks`) and the whole record is printed as
``{"result": ...}``.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

__all__ = ["main"]

RETRYABLE_STATUSES = frozenset({502, 503, 504})
_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Failure:
    """One failed attempt: when, of what, and how."""

    at: float
    kind: str
    what: str  # "503", "ConnectError", "400 invalid_grant"
    retryable: bool


@dataclass
class Chain:
    """One client's refresh tokens, in the order it was answered them."""

    tokens: list[str] = field(default_factory=list)
    used_at: list[float] = field(default_factory=list)
    broken: str | None = None


@dataclass
class Block:
    """One block: when the admin sent it and read the answer; each service's rejection."""

    ident: str
    sent: float = 0.0
    answered: float = 0.0
    revoked: dict[int, float] = field(default_factory=dict)


@dataclass
class Record:
    """Everything the driver saw."""

    started: float = 0.0
    stopped: float = 0.0
    done: list[tuple[float, str]] = field(default_factory=list)  # (instant, grant) per success
    failures: list[Failure] = field(default_factory=list)
    chains: list[Chain] = field(default_factory=list)
    blocks: list[Block] = field(default_factory=list)
    checks: dict[str, int] = field(default_factory=dict)
    check_failures: list[str] = field(default_factory=list)


class Driver:
    """The load, through one HTTP client pool on the balancer's URL."""

    def __init__(self, spec: dict[str, Any], http: httpx.AsyncClient) -> None:
        self.spec = spec
        self.http = http
        self.record = Record()
        self.stop_at = 0.0
        self.services: list[asyncio.subprocess.Process] = []
        self.blocks: dict[str, Block] = {}
        self.acks: dict[str, asyncio.Queue[str]] = {}

    # -- requests ----------------------------------------------------------------

    async def call(
        self, kind: str, method: str, path: str, *, give_up: float = 30.0, **kwargs: Any
    ) -> httpx.Response:
        """One request, retried on 502/503/504 and connection failures for ``give_up`` s."""
        deadline = time.monotonic() + give_up
        while True:
            what: str
            try:
                response = await self.http.request(method, path, **kwargs)
            except httpx.TransportError as exc:
                what = type(exc).__name__
            else:
                if response.status_code not in RETRYABLE_STATUSES:
                    if response.status_code != 200:
                        detail = _error_code(response)
                        self.record.failures.append(
                            Failure(time.time(), kind, f"{response.status_code} {detail}", False)
                        )
                    return response
                # HAProxy's own 503 (no replica left) is HTML; a replica's is JSON.
                what = f"{response.status_code} {_error_code(response) or 'from the balancer'}"
            self.record.failures.append(Failure(time.time(), kind, what, True))
            if time.monotonic() > deadline:
                raise RuntimeError(f"{kind}: still failing after {give_up} s ({what})")
            await asyncio.sleep(0.1)

    async def token(self, kind: str, data: dict[str, str], **kwargs: Any) -> dict[str, Any] | None:
        response = await self.call(kind, "POST", "/oauth/token", data=data, **kwargs)
        if response.status_code != 200:
            return None
        self.record.done.append((time.time(), kind))
        return dict(response.json())

    def _password(self, username: str, password: str) -> dict[str, str]:
        return {
            "grant_type": "password",
            "client_id": self.spec["public_client"],
            "username": username,
            "password": password,
            "audience": self.spec["audience"],
        }

    def _refresh(self, token: str) -> dict[str, str]:
        return {
            "grant_type": "refresh_token",
            "client_id": self.spec["public_client"],
            "refresh_token": token,
        }

    # -- workloads ---------------------------------------------------------------

    async def chain(self, index: int) -> None:
        chain = Chain()
        self.record.chains.append(chain)
        user = f"user{index % self.spec['users']}"
        answer = await self.token("password", self._password(user, f"{user}-password"))
        if answer is None:
            chain.broken = "sign-in failed"
            return
        chain.tokens.append(answer["refresh_token"])
        while time.monotonic() < self.stop_at:
            await asyncio.sleep(self.spec["think"])
            used = time.time()
            answer = await self.token("refresh_token", self._refresh(chain.tokens[-1]))
            if answer is None:
                chain.broken = "refresh refused"
                return
            chain.used_at.append(used)
            chain.tokens.append(answer["refresh_token"])

    async def sign_ins(self) -> None:
        rng = random.Random()
        while time.monotonic() < self.stop_at:
            await asyncio.sleep(self.spec["think"])
            user = f"user{rng.randrange(self.spec['users'])}"
            await self.token("password", self._password(user, f"{user}-password"))

    async def client_credentials(self) -> None:
        data = {"grant_type": "client_credentials", "audience": self.spec["audience"]}
        auth = (self.spec["load_client"], self.spec["load_secret"])
        while time.monotonic() < self.stop_at:
            await asyncio.sleep(self.spec["think"])
            await self.token("client_credentials", data, auth=auth)

    async def block_loop(self, admin: str) -> None:
        i = 0
        while time.monotonic() < self.stop_at and i < self.spec["victims"]:
            next_at = time.monotonic() + self.spec["block_interval"]
            await self.block(admin, i)
            i += 1
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))

    async def block(self, admin: str, i: int) -> None:
        user = f"victim{i}"
        answer = await self.token("password", self._password(user, f"{user}-password"))
        if answer is None:
            raise RuntimeError(f"{user} could not sign in")
        ident = f"b{i}"
        block = Block(ident)
        self.blocks[ident] = block
        queue: asyncio.Queue[str] = asyncio.Queue()
        self.acks[ident] = queue
        for proc in self.services:
            assert proc.stdin is not None
            proc.stdin.write(f"watch {ident} {answer['access_token']}\n".encode())
            await proc.stdin.drain()
        for _ in self.services:
            ack = await asyncio.wait_for(queue.get(), 30)
            if not ack.startswith("ok"):
                raise RuntimeError(f"a service refused {user}'s fresh token: {ack}")
        block.sent = time.time()
        response = await self.call(
            "block",
            "POST",
            f"/admin/users/{user}/block",
            headers={"Authorization": f"Bearer {admin}"},
        )
        block.answered = time.time()
        if response.status_code != 200:
            raise RuntimeError(f"block of {user}: {response.status_code} {response.text}")
        self.record.blocks.append(block)
        self.record.done.append((block.answered, "block"))

    # -- services ----------------------------------------------------------------

    async def start_services(self) -> None:
        env = {
            **os.environ,
            "SCALE_ISSUER": self.spec["url"],
            "SCALE_AUDIENCE": self.spec["audience"],
            "SCALE_CLIENTS": json.dumps(self.spec["feed_clients"]),
        }
        total, per = self.spec["services"], self.spec["services_per_process"]
        for first in range(0, total, per):
            count = min(per, total - first)
            self.services.append(
                await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "bench.scale.services", str(count), str(first),
                    cwd=_ROOT, env=env, stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                )
            )  # fmt: skip
        for proc in self.services:
            assert proc.stdout is not None
            line = await asyncio.wait_for(proc.stdout.readline(), 120)
            if line.strip() != b"ready":
                raise RuntimeError(f"a service process did not start: {line!r}")
        self.readers = [asyncio.create_task(self._read(p)) for p in self.services]

    async def _read(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        async for raw in proc.stdout:
            parts = raw.decode().split()
            if parts[0] == "revoked":
                self.blocks[parts[1]].revoked[int(parts[2])] = float(parts[3])
            elif parts[0] in ("ok", "bad"):
                self.acks[parts[1]].put_nowait(" ".join(parts))

    async def stop_services(self) -> None:
        for proc in self.services:
            assert proc.stdin is not None
            proc.stdin.close()
        for proc in self.services:
            try:
                await asyncio.wait_for(proc.wait(), 15)
            except TimeoutError:
                proc.kill()
                await proc.wait()

    async def wait_for_revocations(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        total = self.spec["services"]
        while time.monotonic() < deadline:
            if all(len(b.revoked) == total for b in self.record.blocks):
                return
            await asyncio.sleep(0.1)

    # -- after the load ----------------------------------------------------------

    async def final_checks(self) -> None:
        """Each chain's last token works exactly once; an older one is refused.

        For every chain: the last refresh token must rotate (it was not lost);
        presenting it again within the grace window must answer that same new
        token or be refused, never a different one (it is not usable twice);
        a token used more than the grace window ago must be refused, and that
        reuse must end the session, so the token just obtained is refused too.
        """
        grace = self.spec["refresh_reuse_grace"]
        checks = self.record.checks
        fails = self.record.check_failures
        for n, chain in enumerate(self.record.chains):
            if chain.broken or not chain.tokens:
                fails.append(f"chain {n}: {chain.broken or 'no token'}")
                continue
            first = await self.token("check", self._refresh(chain.tokens[-1]))
            if first is None:
                fails.append(f"chain {n}: its last refresh token was lost")
                continue
            checks["last token rotates"] = checks.get("last token rotates", 0) + 1
            again = await self.token("check", self._refresh(chain.tokens[-1]))
            if again is not None and again["refresh_token"] != first["refresh_token"]:
                fails.append(f"chain {n}: its last refresh token rotated twice")
                continue
            checks["last token not usable twice"] = checks.get("last token not usable twice", 0) + 1
            used = zip(chain.tokens, chain.used_at, strict=False)  # the last is unused
            old = [t for t, at in used if time.time() - at > grace]
            if not old:
                continue
            if await self.token("check", self._refresh(old[-1])) is not None:
                fails.append(f"chain {n}: an already used refresh token was accepted")
                continue
            if await self.token("check", self._refresh(first["refresh_token"])) is not None:
                fails.append(f"chain {n}: reuse of an old token did not end the session")
                continue
            checks["old token refused, session ended"] = (
                checks.get("old token refused, session ended", 0) + 1
            )
        tokens = [t for c in self.record.chains for t in c.tokens]
        if len(set(tokens)) != len(tokens):
            fails.append("the same refresh token was answered twice")

    async def run(self) -> Record:
        await self.start_services()
        admin_answer = await self.token("password", self._password(*self.spec["admin"]))
        assert admin_answer is not None, "the admin cannot sign in"
        admin = admin_answer["access_token"]
        self.record.done.clear()
        print(json.dumps({"ready": time.time()}), flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        self.record.started = time.time()
        self.stop_at = time.monotonic() + self.spec["duration"]
        tasks = [self.chain(i) for i in range(self.spec["chains"])]
        tasks += [self.sign_ins() for _ in range(self.spec["sign_in_workers"])]
        tasks += [self.client_credentials() for _ in range(self.spec["cc_workers"])]
        await asyncio.gather(*tasks, self.block_loop(admin))
        self.record.stopped = time.time()
        await self.wait_for_revocations(30)
        # Every chain's last use was at least this long ago: an older token is outside the grace.
        await asyncio.sleep(self.spec["refresh_reuse_grace"] + 0.5)
        await self.final_checks()
        await self.stop_services()
        return self.record


def _error_code(response: httpx.Response) -> str:
    try:
        return str(response.json().get("error", ""))
    except ValueError:
        return ""


async def _main(spec: dict[str, Any]) -> Record:
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with httpx.AsyncClient(base_url=spec["url"], timeout=10, limits=limits) as http:
        return await Driver(spec, http).run()


def main() -> None:
    """Spec on stdin's first line; ``go`` on the next; the record on stdout."""
    spec = json.loads(sys.stdin.readline())
    record = asyncio.run(_main(spec))
    print(json.dumps({"result": asdict(record)}), flush=True)


if __name__ == "__main__":
    main()
