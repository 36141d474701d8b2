"""The JPKI-TEST repository over HTTP: OCSP responder (RFC 6960 Appendix A), CRL and root certificate.

    POST /ocsp                 body: DER OCSPRequest (application/ocsp-request)
    GET  /ocsp/<base64 DER>    the request base64-encoded, then URL-encoded, in the path
    GET  /crl/auth.crl         the daily CRL, DER (application/pkix-crl)
    GET  /certs/auth-root.cer  the root certificate, DER (application/pkix-cert)

A thin shell: answers come from `certgen.ocsp.answer_ocsp_request`, status from a lookup.
`openssl ocsp -issuer root.pem -cert user.pem -url http://127.0.0.1:PORT/ocsp` queries it.
"""

from __future__ import annotations

import base64
import binascii
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

import structlog
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from certgen.endpoints import CRL_PATH, OCSP_PATH, ROOT_CERT_PATH
from certgen.ocsp import OcspResponderIdentity, StatusLookupProtocol, answer_ocsp_request

log = structlog.get_logger("certgen.ocsp_responder")

MAX_REQUEST_BYTES = 64 * 1024  # an OCSP request is a few hundred bytes; refuse anything absurd


@dataclass(frozen=True)
class RepositoryContent:
    """What the server publishes. `crl` is called per CRL download (it decides when to refresh)."""

    responder: OcspResponderIdentity
    lookup: StatusLookupProtocol
    crl: Callable[[datetime], x509.CertificateRevocationList]
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)


class RepositoryServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], content: RepositoryContent | None = None) -> None:
        # Content may be set after binding: certificates carry the server's URL, so a PKI on a free
        # port is created once the port is known. Until then every request gets 503.
        self.content = content
        super().__init__(address, _RepositoryHandler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def start_in_thread(self) -> threading.Thread:
        """Serve in a daemon thread (tests, embedded use); stop with `shutdown()` then `server_close()`."""
        thread = threading.Thread(target=self.serve_forever, name="jpki-repository", daemon=True)
        thread.start()
        return thread


class _RepositoryHandler(BaseHTTPRequestHandler):
    server: RepositoryServer
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        if self.server.content is None:
            self._send(HTTPStatus.SERVICE_UNAVAILABLE, b"", "text/plain")
            return
        if self.path.rstrip("/") != OCSP_PATH:
            self._send(HTTPStatus.NOT_FOUND, b"", "text/plain")
            return
        length_header = self.headers.get("Content-Length") or "0"
        length = int(length_header) if length_header.isdigit() else 0
        if not 0 < length <= MAX_REQUEST_BYTES:
            self._send(HTTPStatus.BAD_REQUEST, b"", "text/plain")
            return
        self._answer_ocsp(self.server.content, self.rfile.read(length))

    def do_GET(self) -> None:
        content = self.server.content
        if content is None:
            self._send(HTTPStatus.SERVICE_UNAVAILABLE, b"", "text/plain")
            return
        if self.path.startswith(OCSP_PATH + "/"):
            encoded = unquote(self.path[len(OCSP_PATH) + 1:])
            try:
                request_der = base64.b64decode(encoded, validate=True)
            except (binascii.Error, ValueError):
                self._send(HTTPStatus.BAD_REQUEST, b"", "text/plain")
                return
            self._answer_ocsp(content, request_der)
        elif self.path == CRL_PATH:
            crl = content.crl(content.clock())
            self._send(HTTPStatus.OK, crl.public_bytes(serialization.Encoding.DER), "application/pkix-crl")
        elif self.path == ROOT_CERT_PATH:
            self._send(HTTPStatus.OK, content.responder.issuer.public_bytes(serialization.Encoding.DER),
                       "application/pkix-cert")
        else:
            self._send(HTTPStatus.NOT_FOUND, b"", "text/plain")

    def _answer_ocsp(self, content: RepositoryContent, request_der: bytes) -> None:
        body = answer_ocsp_request(request_der, content.responder, content.lookup, content.clock())
        self._send(HTTPStatus.OK, body, "application/ocsp-response")

    def _send(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # the stdlib names the parameter "format"
        # No access log per request: at kiosk rates it would be the main cost, and stdlib lines are not
        # structured. Problems (bad requests, broken connections) go through log_error.
        return

    def log_error(self, format: str, *args: object) -> None:
        log.warning("http_error", client=self.client_address[0], detail=format % args)


def serve_repository(host: str, port: int, content: RepositoryContent | None = None) -> RepositoryServer:
    """Bind the repository server (port 0: any free port; see `.url`)."""
    return RepositoryServer((host, port), content)
