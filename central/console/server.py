"""The console's HTTPS server: bounded threads, TLS handshakes off the accept loop."""

from __future__ import annotations

import logging
import socket
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from central.console.context import Console
from central.console.handler import make_handler

log = logging.getLogger(__name__)
MAX_CONNECTIONS = 64  # concurrent connections; more are closed at once (bounded threads)


class ConsoleServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        tls: ssl.SSLContext | None,
    ) -> None:
        super().__init__(address, handler)
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        if tls is not None:
            # The handshake runs in the connection's own thread on its first read (with the
            # handler's timeout), not in accept(): a slow client cannot stall the others.
            self.socket = tls.wrap_socket(
                self.socket, server_side=True, do_handshake_on_connect=False
            )

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            log.warning("too many connections: closing one from %s", client_address[0])
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, (ssl.SSLError, OSError)):
            # TLS handshakes that fail, clients that vanish or time out: one line, no trace.
            log.info("connection from %s ended: %s", client_address[0], error)
        else:
            log.exception("error while serving %s", client_address[0])


def tls_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    return context


def serve(
    console: Console, host: str, port: int, tls: ssl.SSLContext | None
) -> ThreadingHTTPServer:
    if tls is None and host != "127.0.0.1":
        raise ValueError("plain HTTP is only served on 127.0.0.1")
    server = ConsoleServer((host, port), make_handler(console), tls)
    server.socket.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    return server
