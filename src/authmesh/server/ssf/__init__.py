"""The OpenID Shared Signals Framework transmitter (docs/ssf.md).

``events`` turns revocations into Security Event Tokens, ``outbox`` writes them
for every stream in the revoking transaction, ``streams`` manages the streams,
``poll`` and ``push`` deliver them (RFC 8936, RFC 8935).
"""
