"""Multi-factor sign-in: TOTP, passkeys (WebAuthn), recovery codes, policy and step-up.

The service functions (:mod:`.factors` for enrolment and removal, :mod:`.verify` for
the second step of a sign-in, :mod:`.admin` for operators) are free of HTTP: the
pages and the JSON APIs call them.
"""
