"""Fixtures shared by the integration tests that talk to a real Secret Service."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import require
from tests.integration import secret_service


@pytest.fixture
def ss(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[secret_service.SecretService]:
    """A private D-Bus session with an unlocked gnome-keyring, for this test only."""
    require(secret_service.available(), "dbus-daemon/gnome-keyring-daemon not installed")
    with secret_service.running(tmp_path / "home") as service:
        # keyring's SecretService backend finds the bus through this variable only.
        monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", service.bus_address)
        yield service


@pytest.fixture
def backend(ss: secret_service.SecretService) -> object:
    """keyring's real SecretService backend on that bus."""
    from keyring.backends.SecretService import Keyring

    return Keyring()
