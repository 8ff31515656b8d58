"""A local HTTP server on 127.0.0.1 for the download tests: serves given files, and the failures real
mirrors produce. Paths: /good/NAME (Range requests honoured), /html/NAME (an HTML page with status
200), /forbidden/NAME (403), /truncated/NAME (half the body, then the connection closes), /wrong/NAME
(an IDX .gz of other content, or other bytes of the same size), /stall/NAME (headers and a few bytes,
then silence), /huge/NAME (a Content-Length of 10 GB). Every request's path and Range header are
recorded in `requests`."""

from __future__ import annotations

import gzip
import http.server
import threading
import time


class Server:
    def __init__(self, files: dict[str, bytes]):
        self.files = files
        self.requests: list[tuple[str, str | None]] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):  # noqa: N802 (the http.server interface)
                outer.requests.append((self.path, self.headers.get("Range")))
                _, mode, name = self.path.split("/", 2)
                body = outer.files.get(name)
                if body is None:
                    return self.send_error(404)
                if mode == "forbidden":
                    return self.send_error(403)
                if mode == "html":
                    page = b"<!DOCTYPE html><html><body>Please log in to download</body></html>"
                    return self._send(200, page, "text/html; charset=utf-8")
                if mode == "wrong":  # an IDX .gz of other content; other files: inverted bytes, same size
                    other = gzip.compress(bytes(len(body))) if name.endswith("-ubyte.gz") else \
                        bytes(255 - b for b in body)
                    return self._send(200, other)
                if mode == "huge":
                    self.send_response(200)
                    self.send_header("Content-Length", str(10 << 30))
                    self.end_headers()
                    self.wfile.write(body[:100])
                    return None
                if mode == "truncated":
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body[:len(body) // 2])
                    self.close_connection = True
                    return None
                if mode == "stall":
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body[:10])
                    self.wfile.flush()
                    time.sleep(3)
                    return None
                start = 0
                rng = self.headers.get("Range")
                if rng and rng.startswith("bytes=") and rng.endswith("-"):
                    start = int(rng[6:-1])
                    if start >= len(body):
                        return self.send_error(416)
                    return self._send(206, body[start:], extra={"Content-Range": f"bytes {start}-{len(body) - 1}/"
                                                                                 f"{len(body)}"})
                return self._send(200, body)

            def _send(self, status, body, kind="application/octet-stream", extra=None):
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                for k, v in (extra or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, mode: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{mode}/"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
