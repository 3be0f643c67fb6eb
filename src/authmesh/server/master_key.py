"""Where the master key that seals private signing keys comes from.

In order: ``AUTHMESH_MASTER_KEY`` (``settings.master_key``); else the file
``master.key`` in the data folder, created (mode 0600) the first time a key
must be sealed. Only ``insecure_plaintext_keys`` lets a private key be stored
without one, and even then an existing ``master.key`` is used.

The file is created only when a key is written, never just to read: a command
pointed at a database whose keys were sealed elsewhere fails with a clear error
instead of leaving a new, useless key behind.
"""

from __future__ import annotations

from pathlib import Path

from authmesh.errors import ConfigError
from authmesh.server.config import ServerSettings
from authmesh.server.secrets import KeyEncryptor, new_secret
from authmesh.store.private_files import private_dir, write_private_file

__all__ = ["MASTER_KEY_FILE", "MasterKey"]

MASTER_KEY_FILE = "master.key"


class MasterKey:
    """The master key of one server: from the settings, from a file, or none.

    Args:
        secret: the operator's key (``AUTHMESH_MASTER_KEY``), if given.
        path: the file that holds the generated key otherwise.
        plaintext_allowed: without either, store private keys unencrypted.
    """

    def __init__(self, *, secret: str | None, path: Path, plaintext_allowed: bool) -> None:
        self.path = path
        self.plaintext_allowed = plaintext_allowed
        # Built now, so a too-short key fails at start, not at the first rotation.
        self._explicit = KeyEncryptor(secret) if secret is not None else None
        self._from_file: KeyEncryptor | None = None

    @classmethod
    def from_settings(cls, settings: ServerSettings) -> MasterKey:
        """The master key these settings give."""
        secret = settings.master_key.get_secret_value() if settings.master_key else None
        return cls(
            secret=secret,
            path=settings.data_dir / MASTER_KEY_FILE,
            plaintext_allowed=settings.insecure_plaintext_keys,
        )

    @property
    def source(self) -> str:
        """Where the key comes from, for people: a setting, the file, or nowhere."""
        if self._explicit is not None:
            return "AUTHMESH_MASTER_KEY"
        if self.path.is_file():
            return str(self.path)
        return "none (private keys stored in plaintext)" if self.plaintext_allowed else "none yet"

    def for_reading(self) -> KeyEncryptor | None:
        """The key that opens sealed private keys, if there is one."""
        if self._explicit is not None:
            return self._explicit
        if self._from_file is None and self.path.is_file():
            self._from_file = KeyEncryptor(self._read(), name=f"the master key in {self.path}")
        return self._from_file

    def for_writing(self) -> KeyEncryptor | None:
        """The key to seal a new private key with: created when missing, unless
        plaintext was chosen (then ``None``)."""
        found = self.for_reading()
        if found is not None or self.plaintext_allowed:
            return found
        private_dir(self.path.parent)
        write_private_file(self.path, new_secret() + "\n")
        return self.for_reading()

    def _read(self) -> str:
        try:
            value = self.path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"cannot read the master key {self.path}: {exc.strerror}") from None
        return value
