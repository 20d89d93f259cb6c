"""`attune serve` over TLS with a self-signed certificate, and its refusals, as a real process."""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

ATTUNE = str(Path(sys.executable).with_name("attune"))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1/localhost signed by its own key (PEM files)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    key_path.chmod(0o600)
    return cert_path, key_path


def serve(data_dir: Path, *args: str) -> subprocess.Popen:
    log = open(data_dir.parent / "server.log", "wb")  # noqa: SIM115 - closed with the process
    return subprocess.Popen([ATTUNE, "serve", "--data-dir", str(data_dir), *args], stdout=log, stderr=subprocess.STDOUT)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    init = subprocess.run([ATTUNE, "init", "--data-dir", str(data)], capture_output=True, text=True, check=False)
    assert init.returncode == 0, init.stderr
    return data


@pytest.fixture
def tls_server(tmp_path: Path, data_dir: Path) -> Iterator[tuple[str, Path]]:
    cert, key = self_signed(tmp_path)
    port = free_port()
    proc = serve(data_dir, "--port", str(port), "--ssl-certfile", str(cert), "--ssl-keyfile", str(key))
    try:
        yield f"https://127.0.0.1:{port}", cert
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _wait(url: str, verify: ssl.SSLContext, timeout: float = 60.0) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return httpx.get(url, verify=verify, timeout=5.0)
        except httpx.ConnectError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def test_healthz_over_https_with_a_self_signed_certificate(tls_server: tuple[str, Path], tmp_path: Path) -> None:
    base, cert = tls_server
    trusted = ssl.create_default_context(cafile=str(cert))
    answer = _wait(f"{base}/healthz", trusted)
    assert answer.status_code == 200, (tmp_path / "server.log").read_text()
    assert answer.json()["status"] == "ok"
    # The certificate really is what secures the connection: a client that does not trust
    # it is refused, and plain HTTP on the same port gets no answer.
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(f"{base}/healthz", verify=ssl.create_default_context(), timeout=5.0)
    with pytest.raises(httpx.HTTPError):
        httpx.get(base.replace("https://", "http://") + "/healthz", timeout=5.0)


def test_tls_needs_both_files(tmp_path: Path, data_dir: Path) -> None:
    cert, _ = self_signed(tmp_path)
    proc = serve(data_dir, "--port", str(free_port()), "--ssl-certfile", str(cert))
    assert proc.wait(timeout=60) == 1
    assert "must be given together" in (tmp_path / "server.log").read_text()


def test_development_install_refuses_a_public_interface(tmp_path: Path, data_dir: Path) -> None:
    proc = serve(data_dir, "--host", "0.0.0.0", "--port", str(free_port()))
    assert proc.wait(timeout=60) == 1
    log = (tmp_path / "server.log").read_text()
    assert "refusing to listen on 0.0.0.0" in log and "development" in log
