"""``make scale``: auth-server replicas behind HAProxy under mixed load, with a kill.

:mod:`bench.scale.cluster` starts PostgreSQL schema, Redis-backed replicas and
HAProxy; :mod:`bench.scale.driver` (its own process) drives the load and the
blocks and talks to the SDK services of :mod:`bench.scale.services`;
:mod:`bench.scale.checks` turns what it saw into verdicts;
:mod:`bench.scale.fanout` measures one replica serving 1,000 feed followers.
"""
