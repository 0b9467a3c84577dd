"""A small HTTP/1.1 server on asyncio for the REST API: slow and idle clients hold no thread.

The previous server (http.server's ThreadingHTTPServer) gave every connection a thread
for its whole life: 4,000 idle keep-alive connections made 4,027 threads, a client that
trickled its headers held a thread for 120 s, and ``Content-Length: -1`` made it read a
200 MB body past the size limit. Here one event-loop thread reads every request (request
line, headers, body) and only a complete request reaches the pool of ``num_threads``
workers (TF Serving's --rest_api_num_threads), which is therefore a real bound on REST
concurrency. Per connection:

- an idle keep-alive connection is closed after ``idle_timeout`` seconds;
- a request must arrive completely within ``request_timeout`` seconds of its first byte
  (408 otherwise), and that same deadline is handed to the handler for the model call
  (TF Serving's --rest_api_timeout_in_ms bounds the call; here reading counts too);
- ``Content-Length`` must be a non-negative decimal (400), present on requests with a
  body (411), and at most ``max_body_bytes`` (413, the body is not read); chunked bodies
  are refused (411), as is a request with both headers (400, request smuggling);
- at most ``max_connections`` connections are open; further ones are closed at once.
"""

from __future__ import annotations

import asyncio
import http.client
import io
import logging
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable

log = logging.getLogger(__name__)

IDLE_TIMEOUT = 30.0
MAX_HEADER_BYTES = 64 * 1024
# After refusing a request whose body is unread, read and drop at most this much for at
# most this long before closing, so that the client sees the answer instead of a reset.
LINGER_BYTES = 1 << 20
LINGER_SECONDS = 1.0
_REASONS = {code: reason for code, reason in http.client.responses.items()}


@dataclass
class HttpRequest:
    method: str
    target: str  # as sent: path and query
    headers: http.client.HTTPMessage
    body: bytes
    deadline: float  # time.monotonic() by which the answer is due
    disconnected: Callable[[], bool]  # the client went away (checked between model chunks)

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]


# (status, headers, body); the server adds Content-Length and Connection.
Response = tuple[int, list[tuple[str, str]], bytes]
Handler = Callable[[HttpRequest], Response]


class _Refused(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class HttpServer:
    def __init__(self, handler: Handler, host: str, port: int, *, num_threads: int,
                 max_body_bytes: int, request_timeout: float, error_body: Callable[[str], bytes],
                 idle_timeout: float = IDLE_TIMEOUT, max_connections: int = 4096):
        self.handler = handler
        self.host = host.strip("[]")
        self.max_body_bytes = max_body_bytes
        self.request_timeout = request_timeout
        self.idle_timeout = idle_timeout
        self.max_connections = max_connections
        self.error_body = error_body  # message -> body of an error response (JSON for REST)
        self.shutting_down = False
        self._pool = ThreadPoolExecutor(max_workers=max(1, num_threads), thread_name_prefix="rest")
        self._loop = asyncio.new_event_loop()
        self._writers: set = set()
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        self._sock = socket.socket(family, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((self.host, port))
        self._sock.listen(1024)  # bursts of new connections queue instead of being reset
        self.port = self._sock.getsockname()[1]
        self._server = None
        self._thread = threading.Thread(target=self._run, name="rest-loop", daemon=True)
        self._started = threading.Event()

    # --- lifecycle -------------------------------------------------------------------------
    def start(self) -> "HttpServer":
        self._thread.start()
        self._started.wait()
        return self

    def _run(self):
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(asyncio.start_server(
            self._connection, sock=self._sock, limit=MAX_HEADER_BYTES))
        self._started.set()
        self._loop.run_forever()

    def stop(self) -> None:
        """Stops accepting; answers further requests 503 with Connection: close. In-flight
        requests finish (the caller waits for them); then call `close`."""
        self.shutting_down = True
        if self._server is not None:
            self._loop.call_soon_threadsafe(self._server.close)

    def close(self, timeout: float = 5.0) -> None:
        def shut():
            for w in list(self._writers):
                w.close()
            self._loop.call_later(0.05, self._loop.stop)

        if self._loop.is_running():
            self._loop.call_soon_threadsafe(shut)
            self._thread.join(timeout)
        self._pool.shutdown(wait=False, cancel_futures=True)

    # --- one connection --------------------------------------------------------------------
    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        if len(self._writers) >= self.max_connections:
            writer.close()
            return
        self._writers.add(writer)
        try:
            while await self._one_request(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except Exception:  # noqa: BLE001 - one connection never takes the server down
            log.exception("REST connection failed")
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _one_request(self, reader, writer) -> bool:
        """Reads, runs and answers one request; False when the connection is to be closed."""
        try:
            first = await asyncio.wait_for(reader.read(1), self.idle_timeout)
        except asyncio.TimeoutError:
            return False
        if not first:
            return False
        deadline = time.monotonic() + self.request_timeout
        method = "GET"
        try:
            head = first + await self._within(reader.readuntil(b"\r\n\r\n"), deadline)
            method, target, version, headers = _parse_head(head)
            keep_alive = _keep_alive(version, headers)
            length = self._body_length(method, headers)
            if length and headers.get("Expect", "").lower() == "100-continue":
                writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            body = await self._within(reader.readexactly(length), deadline) if length else b""
        except _Refused as e:
            await self._respond(writer, method, e.status, [], self.error_body(e.message), False)
            await _linger(reader, writer)
            return False
        except asyncio.LimitOverrunError:
            await self._respond(writer, method, 431, [], self.error_body(
                f"Request headers exceed {MAX_HEADER_BYTES} bytes"), False)
            return False
        except asyncio.TimeoutError:
            await self._respond(writer, method, 408, [], self.error_body(
                f"Request not received within {self.request_timeout:g}s (--rest_api_timeout_in_ms)"), False)
            return False
        if self.shutting_down:
            await self._respond(writer, method, 503, [], self.error_body("Server is shutting down"), False)
            return False
        request = HttpRequest(method, target, headers, body, deadline,
                              lambda: writer.is_closing() or reader.at_eof())
        try:
            status, extra, payload = await self._loop.run_in_executor(self._pool, self.handler, request)
        except Exception as e:  # noqa: BLE001 - the handler answers errors itself; this is a bug
            log.exception("REST handler failed")
            status, extra, payload = 500, [], self.error_body(f"{type(e).__name__}: {e}")
        return await self._respond(writer, method, status, extra, payload, keep_alive)

    async def _within(self, awaitable, deadline: float):
        return await asyncio.wait_for(awaitable, max(0.0, deadline - time.monotonic()))

    def _body_length(self, method: str, headers) -> int:
        raw = headers.get_all("Content-Length") or []
        if headers.get("Transfer-Encoding"):
            if raw:
                raise _Refused(400, "Both Transfer-Encoding and Content-Length given")
            raise _Refused(411, "Transfer-Encoding is not supported; send the body with a Content-Length")
        if not raw:
            if method in ("POST", "PUT", "PATCH"):
                raise _Refused(411, "Missing Content-Length")
            return 0
        if len(set(raw)) > 1 or not raw[0].strip().isascii() or not raw[0].strip().isdigit():
            raise _Refused(400, f"Bad Content-Length: {', '.join(raw)!r} (expected one non-negative "
                                f"decimal number)")
        n = int(raw[0])
        if n > self.max_body_bytes:
            raise _Refused(413, f"Request body of {n} bytes exceeds the limit of {self.max_body_bytes} "
                                f"bytes (--grpc_max_message_size)")
        return n

    async def _respond(self, writer, method: str, status: int, headers, body: bytes,
                       keep_alive: bool) -> bool:
        keep_alive = keep_alive and not self.shutting_down
        lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}"]
        lines += [f"{k}: {v}" for k, v in headers]
        lines.append(f"Content-Length: {len(body)}")
        lines.append("Connection: keep-alive" if keep_alive else "Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        # One write: a head and a body written apart leave the body to Nagle, waiting for
        # the client's delayed ACK of the head (~40 ms a request on keep-alive connections).
        writer.write(head if method == "HEAD" else head + body)
        try:
            # A client that does not read its answer must not hold the connection forever.
            await asyncio.wait_for(writer.drain(), self.request_timeout)
        except asyncio.TimeoutError:
            return False
        return keep_alive


async def _linger(reader, writer) -> None:
    if writer.can_write_eof():
        writer.write_eof()
    deadline = time.monotonic() + LINGER_SECONDS
    dropped = 0
    try:
        while dropped < LINGER_BYTES:
            chunk = await asyncio.wait_for(reader.read(65536), max(0.0, deadline - time.monotonic()))
            if not chunk:
                break
            dropped += len(chunk)
    except (asyncio.TimeoutError, ConnectionError):
        pass


def _parse_head(head: bytes):
    """(method, target, version, headers) of a request head; _Refused(400) when malformed."""
    line, _, rest = head.lstrip(b"\r\n").partition(b"\r\n")
    parts = line.decode("latin-1").split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1.") or not parts[0].isalpha():
        raise _Refused(400, f"Malformed request line: {line[:100].decode('latin-1')!r}")
    try:
        headers = http.client.parse_headers(io.BytesIO(rest))
    except http.client.HTTPException as e:
        raise _Refused(431, f"Malformed request headers: {e}") from None
    return parts[0].upper(), parts[1], parts[2], headers


def _keep_alive(version: str, headers) -> bool:
    connection = (headers.get("Connection") or "").lower()
    if version == "HTTP/1.0":
        return "keep-alive" in connection
    return "close" not in connection
