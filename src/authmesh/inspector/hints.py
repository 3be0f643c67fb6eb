"""What to check next when a verifier rejects a token: one hint per rejection reason."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from authmesh.inspector.findings import Inspection
from authmesh.inspector.humanize import date_phrase, duration, printable, show_value, utc
from authmesh.jose import FORBIDDEN_HEADERS, KeySet, VerifyPolicy

__all__ = ["hint_for"]


def hint_for(
    reason: str, seen: Inspection, keys: KeySet, policy: VerifyPolicy, now: float
) -> str | None:
    """A hint for a rejection with ``reason``, from what the token and the key set say."""
    return _HINTS.get(reason, _no_hint)(_Facts(seen, keys, policy, now))


@dataclass(frozen=True, slots=True)
class _Facts:
    seen: Inspection
    keys: KeySet
    policy: VerifyPolicy
    now: float

    def header(self, name: str) -> Any:
        return (self.seen.header or {}).get(name)

    def claim(self, name: str) -> Any:
        return (self.seen.payload or {}).get(name)

    def when(self, claim: str) -> str | None:
        value = self.claim(claim)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        return f"{utc(value)} ({date_phrase(claim, value, self.now)})"


def _json(value: Any) -> str:
    return printable(json.dumps(value, ensure_ascii=False))


def _no_hint(_facts: _Facts) -> str | None:
    return None


def _unknown_kid(f: _Facts) -> str:
    kids = ", ".join(key.kid for key in f.keys)
    kid = f.header("kid")
    named = "names no kid" if kid is None else f"names {show_value(kid)}"
    return f"the key set has kids {kids}; the token {named}"


def _alg(f: _Facts) -> str:
    alg, kid = f.header("alg"), f.header("kid")
    key = f.keys.get(kid) if kid is None or isinstance(kid, str) else None
    if isinstance(alg, str) and alg.lower() == "none":
        return "alg is 'none': an unsigned token is never accepted"
    if key is not None and alg != key.alg:
        return f"the token says alg {show_value(alg)}; key {key.kid} is bound to {key.alg}"
    accepted = ", ".join(sorted(f.policy.algorithms))
    return f"the token says alg {show_value(alg)}; accepted: {accepted}"


def _bad_signature(f: _Facts) -> str:
    kid = f.header("kid")
    key = f.keys.get(kid) if kid is None or isinstance(kid, str) else None
    which = f"key {key.kid} ({key.alg})" if key else "the named key"
    return (
        f"the signature does not match {which}: the token was changed after signing, "
        "or another key was used under the same kid"
    )


def _malformed(f: _Facts) -> str | None:
    return "; ".join(p.message for p in f.seen.problems[:3]) or None


def _wrong_type(f: _Facts) -> str:
    typ = f.header("typ")
    accepted = ", ".join(sorted(f.policy.types or ()))
    shown = "no typ" if typ is None else f"typ {show_value(typ)}"
    return f"the token has {shown}; accepted: {accepted} (use --type or --any-type)"


def _wrong_issuer(f: _Facts) -> str:
    return f"the token's iss is {_json(f.claim('iss'))}; expected {_json(f.policy.issuer)}"


def _wrong_audience(f: _Facts) -> str:
    expected = " or ".join(_json(aud) for aud in sorted(f.policy.audience or ()))
    return f"the token's aud is {_json(f.claim('aud'))}; expected {expected}"


def _expired(f: _Facts) -> str | None:
    when = f.when("exp")
    return when and f"it expired {when}; leeway {duration(f.policy.leeway)}"


def _not_yet_valid(f: _Facts) -> str | None:
    when = f.when("nbf")
    return when and f"it is valid from {when}; leeway {duration(f.policy.leeway)}"


def _issued_in_future(f: _Facts) -> str | None:
    when = f.when("iat")
    return when and (
        f"iat is {when}: is the issuer's clock ahead? leeway {duration(f.policy.leeway)}"
    )


def _missing_claim(f: _Facts) -> str:
    present = ", ".join(sorted(f.seen.payload or {})) or "none"
    return f"the token's claims: {present}"


def _forbidden_header(f: _Facts) -> str:
    names = sorted(FORBIDDEN_HEADERS.intersection(f.seen.header or {}))
    return f"the header carries {', '.join(names)}; keys come only from --jwks or --key"


def _unsupported_crit(f: _Facts) -> str:
    return f"the header's crit lists {show_value(f.header('crit'))}"


def _too_large(f: _Facts) -> str:
    return f"the token has {f.seen.size} characters; the limit is {f.policy.max_token_bytes}"


_HINTS: dict[str, Callable[[_Facts], str | None]] = {
    "unknown_kid": _unknown_kid,
    "alg_not_allowed": _alg,
    "bad_signature": _bad_signature,
    "malformed": _malformed,
    "wrong_type": _wrong_type,
    "wrong_issuer": _wrong_issuer,
    "wrong_audience": _wrong_audience,
    "expired": _expired,
    "not_yet_valid": _not_yet_valid,
    "issued_in_future": _issued_in_future,
    "missing_claim": _missing_claim,
    "forbidden_header": _forbidden_header,
    "unsupported_crit": _unsupported_crit,
    "too_large": _too_large,
}
