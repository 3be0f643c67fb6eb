"""Login limits: the auth server's defence against password guessing and request floods.

:class:`LoginGuard` applies them to logins and endpoints; a :class:`RateLimiter`
keeps the counts, in memory (:class:`MemoryRateLimiter`, one process) or in
Redis (:class:`RedisRateLimiter`, shared by every process and replica).
"""

from __future__ import annotations

from authmesh.server.login_limits.errors import RateLimiterUnavailable, TemporarilyUnavailable
from authmesh.server.login_limits.guard import LoginGuard
from authmesh.server.login_limits.limiter import Clock, Decision, RateLimitConfig, RateLimiter
from authmesh.server.login_limits.memory_limiter import MemoryRateLimiter
from authmesh.server.login_limits.redis_limiter import RedisRateLimiter

__all__ = [
    "Clock",
    "Decision",
    "LoginGuard",
    "MemoryRateLimiter",
    "RateLimitConfig",
    "RateLimiter",
    "RateLimiterUnavailable",
    "RedisRateLimiter",
    "TemporarilyUnavailable",
]
