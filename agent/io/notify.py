"""systemd readiness and watchdog (sd_notify): READY=1, WATCHDOG=1, STATUS=..., STOPPING=1.

Uses systemd-python when it is installed; otherwise speaks the protocol itself (one datagram
to ``$NOTIFY_SOCKET``, ``@`` meaning the abstract namespace), which is also how tests listen.
Without ``$NOTIFY_SOCKET`` (not under systemd) every call does nothing.
"""

from __future__ import annotations

import importlib
import logging
import os
import socket
from collections.abc import Callable

log = logging.getLogger(__name__)


class Notifier:
    def __init__(self, environ: dict[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self._address = env.get("NOTIFY_SOCKET")
        self._send: Callable[[str], object] | None = None
        if not self._address:
            return
        try:
            # Through importlib: the repository's own systemd/ folder (unit files) would
            # otherwise shadow the name for type checkers.
            daemon = importlib.import_module("systemd.daemon")
            self._send = daemon.notify
        except ImportError:
            self._send = self._datagram

    @property
    def enabled(self) -> bool:
        return self._send is not None

    def _datagram(self, text: str) -> None:
        assert self._address is not None
        address = self._address
        if address.startswith("@"):
            address = "\0" + address[1:]
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(text.encode())

    def notify(self, **fields: str) -> None:
        if self._send is None:
            return
        text = "\n".join(f"{key.upper()}={value}" for key, value in fields.items())
        try:
            self._send(text)
        except OSError as exc:
            log.warning("sd_notify failed: %s", exc)

    def ready(self, status: str) -> None:
        self.notify(ready="1", status=status)

    def watchdog(self) -> None:
        self.notify(watchdog="1")

    def status(self, line: str) -> None:
        self.notify(status=line)

    def stopping(self) -> None:
        self.notify(stopping="1")
