"""Where the local stack listens: 127.0.0.1 by default, every interface for containers
(`LOTABOTS_HOST=0.0.0.0`, `make dev-for-sam`) while its own clients keep using 127.0.0.1."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest

from devstack import parameters_extension
from lotabots.config import LocalSettings

EVERY_INTERFACE = "0.0.0.0"  # noqa: S104 - what these tests are about


def test_defaults_are_loopback_fixed_gateway_port_and_free_ports_elsewhere(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("LOTABOTS_HOST", "LOTABOTS_PORT", "LOTABOTS_MOTO_PORT", "LOTABOTS_EXTENSION_PORT"):
        monkeypatch.delenv(name, raising=False)
    local = LocalSettings()
    assert (local.host, local.port, local.moto_port, local.extension_port) == ("127.0.0.1", 3000, 0, 0)
    assert local.connect_host == "127.0.0.1"


def test_all_interfaces_are_reached_through_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOTABOTS_HOST", EVERY_INTERFACE)
    monkeypatch.setenv("LOTABOTS_EXTENSION_PORT", "2773")
    local = LocalSettings()
    assert local.connect_host == "127.0.0.1" and local.extension_port == 2773


def test_extension_listening_on_every_interface_answers_on_loopback() -> None:
    server, url = parameters_extension.start(EVERY_INTERFACE, 0, "127.0.0.1")
    try:
        assert server.server_address[0] == EVERY_INTERFACE
        assert url == f"http://127.0.0.1:{server.server_address[1]}"
        with pytest.raises(urllib.error.HTTPError) as refused:  # reachable; no token header
            urllib.request.urlopen(f"{url}/systemsmanager/parameters/get?name=x", timeout=5)
        assert refused.value.code == 401
    finally:
        server.shutdown()
        server.server_close()
