"""A network camera for fault injection: MJPEG over HTTP that can play, stall or go away.

IP cameras on station concourses are reached over RTSP or HTTP; the agent reads them through
OpenCV/FFmpeg. This server serves real JPEG frames of a clip as multipart/x-mixed-replace and
lets a test switch it to ``stall`` (connection kept open, no bytes: a hung camera) or
``down`` (connections closed, new ones refused with 503: a camera rebooting).
"""

from __future__ import annotations

import io
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from PIL import Image, ImageSequence

BOUNDARY = b"lfrframe"


def jpeg_frames(clip: Path) -> list[bytes]:
    frames = []
    with Image.open(clip) as image:
        for frame in ImageSequence.Iterator(image):
            out = io.BytesIO()
            frame.convert("RGB").save(out, "JPEG", quality=90)
            frames.append(out.getvalue())
    return frames


class CameraServer:
    def __init__(self, clip: Path, fps: float = 25.0) -> None:
        self.frames = jpeg_frames(clip)
        self.fps = fps
        self.mode = "play"  # play | stall | down
        self.frames_sent = 0
        self.connections = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass  # quiet: the test reads counters, not access logs

            def do_GET(self) -> None:  # http.server's naming
                if server.mode == "down":
                    self.send_error(503, "camera rebooting")
                    return
                server.connections += 1
                self.send_response(200)
                self.send_header(
                    "Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY.decode()}"
                )
                self.end_headers()
                index = 0
                try:
                    while server.mode != "down":
                        if server.mode == "stall":
                            time.sleep(0.05)
                            continue
                        data = server.frames[index % len(server.frames)]
                        self.wfile.write(
                            b"--" + BOUNDARY + b"\r\nContent-Type: image/jpeg\r\n"
                            b"Content-Length: "
                            + str(len(data)).encode()
                            + b"\r\n\r\n"
                            + data
                            + b"\r\n"
                        )
                        self.wfile.flush()
                        server.frames_sent += 1
                        index += 1
                        time.sleep(1.0 / server.fps)
                except (BrokenPipeError, ConnectionResetError):
                    return

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}/stream.mjpg"

    def __enter__(self) -> CameraServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.mode = "down"
        self._httpd.shutdown()
        self._httpd.server_close()


def port_free(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0
