"""A local HTTP server on 127.0.0.1 serving real files, for the download tests.

Not part of the product: :class:`FilesHandler` serves ``root`` under ``/files/`` and any
``routes`` (path → bytes) a test adds; :func:`serve` starts it in a thread and returns the base
URL, the routes and the server (stopped by the caller, or by the test's end).
"""

from __future__ import annotations

import http.server
import threading
from pathlib import Path


class FilesHandler(http.server.BaseHTTPRequestHandler):
    """``/files/<path>``: the file under ``root``; other paths: ``routes``; else 404."""

    root: Path
    routes: dict[str, bytes]

    def do_GET(self):  # noqa: N802 - http.server API
        data = self.routes.get(self.path)
        if data is None and self.path.startswith("/files/"):
            target = self.root / self.path.removeprefix("/files/")
            data = target.read_bytes() if target.is_file() else None
        if data is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def serve(root: Path, handler: type[FilesHandler] = FilesHandler):
    """Start a server for ``root`` on a free port: ``(base URL, routes, server)``."""
    bound = type("Bound", (handler,), {"root": root, "routes": {}})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), bound)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{httpd.server_address[1]}", bound.routes, httpd
