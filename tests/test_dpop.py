"""``authmesh.dpop`` on its own: what its shortcuts must never let through.

The check of a proof remembers what repeats between requests (a client's parsed
header, a token's ``ath``), records ``jti``s and evicts them without a lock, and
reads the claims without the duplicate check when their commas rule duplicates
out; each test here is an attack or a race that such a shortcut could get wrong.
The HTTP faces (token endpoint, SDK adapters) are tested in ``tests/server`` and
``tests/acceptance``.
"""

from __future__ import annotations

import json
import sys
import threading
import time
import uuid
from typing import Any

import pytest

from authmesh import dpop as dpop_module
from authmesh.dpop import ReplayCache, make_proof, verify_proof
from authmesh.errors import InvalidDpopProof
from authmesh.jose import Key
from authmesh.jose.b64 import b64url_encode

URL = "https://orders.internal/orders/7"
TOKEN = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"


@pytest.fixture(scope="module")
def key() -> Key:
    return Key.generate("ES256")


def _signed(key: Key, header: dict[str, Any], payload: str) -> str:
    """A proof whose payload is ``payload`` verbatim (so duplicate members survive)."""
    signing_input = (
        b64url_encode(json.dumps(header).encode()) + b"." + b64url_encode(payload.encode())
    )
    return (signing_input + b"." + b64url_encode(key.sign(signing_input))).decode()


def _header(key: Key) -> dict[str, Any]:
    public = {k: v for k, v in key.public().to_jwk().items() if k not in ("kid", "alg", "use")}
    return {"typ": "dpop+jwt", "alg": key.alg, "jwk": public}


def _claims(**changes: Any) -> dict[str, Any]:
    claims = {"jti": str(uuid.uuid4()), "htm": "GET", "htu": URL, "iat": int(time.time())}
    claims.update(changes)
    return claims


def _verify(proof: str, **kwargs: Any) -> Any:
    options: dict[str, Any] = {"method": "GET", "url": URL, "now": time.time()}
    options.update(kwargs)
    return verify_proof(proof, **options)


def test_a_proof_names_its_key_and_is_accepted_once(key: Key) -> None:
    replay = ReplayCache()
    proof = make_proof(key, method="GET", url=URL, access_token=TOKEN)

    checked = _verify(proof, access_token=TOKEN, replay=replay)

    assert checked.jkt == key.thumbprint()
    with pytest.raises(InvalidDpopProof, match="used before"):
        _verify(proof, access_token=TOKEN, replay=replay)


def test_a_remembered_token_hash_names_only_its_own_token(key: Key) -> None:
    other = TOKEN + "x"
    for token in (TOKEN, other):  # both hashes remembered now
        _verify(make_proof(key, method="GET", url=URL, access_token=token), access_token=token)

    proof = make_proof(key, method="GET", url=URL, access_token=TOKEN)
    with pytest.raises(InvalidDpopProof, match="ath"):
        _verify(proof, access_token=other)


def test_a_remembered_header_still_obeys_the_allowed_algorithms(key: Key) -> None:
    _verify(make_proof(key, method="GET", url=URL))  # the header is remembered now

    with pytest.raises(InvalidDpopProof, match="alg"):
        _verify(make_proof(key, method="GET", url=URL), algorithms=("EdDSA",))


@pytest.mark.parametrize(
    "payload",
    [
        '{"jti":"a","htm":"GET","htu":"https://evil.example/x","htu":"%s","iat":%d}',
        '{"jti":"a","htm":"POST","htm":"GET","htu":"%s","iat":%d}',
    ],
    ids=["duplicate-htu", "duplicate-htm"],
)
def test_a_proof_with_duplicate_claims_is_refused(key: Key, payload: str) -> None:
    proof = _signed(key, _header(key), payload % (URL, int(time.time())))

    with pytest.raises(InvalidDpopProof, match="base64url JSON"):
        _verify(proof)


@pytest.mark.parametrize(
    ("htu", "url"),
    [
        ("https://orders.internal:xyz/orders/7", URL),
        ("https://[::1/orders/7", URL),
        (URL, "https://orders.internal:xyz/orders/7"),
        (["https://orders.internal/orders/7"], URL),
    ],
    ids=["htu-port-no-number", "htu-broken-ipv6", "request-port-no-number", "htu-not-a-string"],
)
def test_a_url_that_is_no_url_is_refused_not_raised(key: Key, htu: Any, url: str) -> None:
    proof = _signed(key, _header(key), json.dumps(_claims(htu=htu)))

    with pytest.raises(InvalidDpopProof, match="another URL"):
        _verify(proof, url=url)


@pytest.mark.parametrize(
    "htu",
    ["HTTPS://Orders.Internal:443/orders/7", "https://orders.internal/orders/7?page=2#top"],
    ids=["case-and-default-port", "query-and-fragment"],
)
def test_the_same_url_spelt_otherwise_is_accepted(key: Key, htu: str) -> None:
    proof = _signed(key, _header(key), json.dumps(_claims(htu=htu)))

    assert _verify(proof).jkt == key.thumbprint()


def test_the_replay_cache_forgets_expired_proofs_and_holds_its_bound() -> None:
    now = [1000.0]
    cache = ReplayCache(max_entries=3, clock=lambda: now[0])
    assert cache.first_use("old", 1005.0)
    now[0] = 1010.0
    for i in range(300):  # a prune runs every 256 records, and whenever over the bound
        assert cache.first_use(f"k{i}", 2000.0)

    assert len(cache) == 3
    assert cache.first_use("old", 2000.0)  # forgotten once expired
    assert not cache.first_use("k299", 2000.0)  # the newest are kept


def test_of_threads_recording_one_proof_exactly_one_wins() -> None:
    cache = ReplayCache()
    keys = [f"jkt:{i}" for i in range(5000)]
    wins: list[int] = []
    start = threading.Barrier(4)

    def record() -> None:
        start.wait(timeout=10)
        wins.append(sum(cache.first_use(k, time.time() + 60) for k in keys))

    threads = [threading.Thread(target=record) for _ in range(4)]
    # Threads switch as often as the interpreter allows, so that a race between
    # "not seen yet" and "recorded" would show.
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=10)
    finally:
        sys.setswitchinterval(interval)

    assert len(wins) == 4
    assert sum(wins) == len(keys)


def test_a_duplicate_claim_behind_a_comma_in_a_value_is_refused(key: Key) -> None:
    payload = '{"jti":"a,b","htm":"GET","htu":"https://evil.example/x","htu":"%s","iat":%d}'
    proof = _signed(key, _header(key), payload % (URL, int(time.time())))

    with pytest.raises(InvalidDpopProof, match="base64url JSON"):
        _verify(proof)


def test_a_claim_with_a_comma_is_read_all_the_same(key: Key) -> None:
    proof = _signed(key, _header(key), json.dumps(_claims(jti="a,b", nonce="x,y")))

    assert _verify(proof).jti == "a,b"


def test_a_remembered_header_key_never_checks_a_proof_naming_another_key(key: Key) -> None:
    other = Key.generate("ES256")
    _verify(make_proof(key, method="GET", url=URL))  # key's header is remembered now

    # other's header, signed by key: the remembered key must not be the one used.
    forged = _signed(key, _header(other), json.dumps(_claims()))
    with pytest.raises(InvalidDpopProof, match="signature"):
        _verify(forged)
    assert _verify(make_proof(other, method="GET", url=URL)).jkt == other.thumbprint()
    assert _verify(make_proof(key, method="GET", url=URL)).jkt == key.thumbprint()


def test_the_header_memo_holds_its_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    memo = dpop_module._HeaderMemo(size=2)
    monkeypatch.setattr(dpop_module, "_HEADERS", memo)
    keys = [Key.generate("EdDSA") for _ in range(4)]

    for client in keys * 2:  # every header pushed out before it comes round again
        proof = make_proof(client, method="GET", url=URL)
        assert _verify(proof).jkt == client.thumbprint()
        assert len(memo.parsed) <= 2


def test_a_full_replay_cache_under_racing_threads_keeps_its_bound() -> None:
    cache = ReplayCache(max_entries=50)
    start = threading.Barrier(4)

    def record(thread: int) -> None:
        start.wait(timeout=10)
        for i in range(2000):
            cache.first_use(f"t{thread}:{i}", time.time() + 60)

    threads = [threading.Thread(target=record, args=(n,)) for n in range(4)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=10)
    finally:
        sys.setswitchinterval(interval)
    # Each key the racers recorded was evicted through its own entry: none was
    # left behind to hold a place for ever, so fresh keys fill the bound exactly.
    fresh = [f"fresh:{i}" for i in range(50)]
    for k in fresh:
        assert cache.first_use(k, time.time() + 60)

    assert len(cache) == 50
    assert not any(cache.first_use(k, time.time() + 60) for k in fresh)


def test_a_url_spelt_otherwise_is_compared_anew_for_every_request_url(key: Key) -> None:
    spelt = "HTTPS://Orders.Internal:443/orders/7"
    for _ in range(2):  # the second time both spellings are remembered
        proof = _signed(key, _header(key), json.dumps(_claims(htu=spelt)))
        assert _verify(proof).jkt == key.thumbprint()

    proof = _signed(key, _header(key), json.dumps(_claims(htu=spelt)))
    with pytest.raises(InvalidDpopProof, match="another URL"):
        _verify(proof, url="https://orders.internal/orders/8")
