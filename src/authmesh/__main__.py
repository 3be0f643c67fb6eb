"""``python -m authmesh``: the same as the ``authmesh`` command."""

from __future__ import annotations

from authmesh.cli.main import main

main()
