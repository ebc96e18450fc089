"""Self-signed certificates for the TLS tests, made with the openssl command line (a peer program: a test
fails, never skips, without it)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.mwl_server.dicom import require


def self_signed(folder: Path, name: str) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its private key (PEM, unencrypted): (certificate, key)."""
    cert, key = folder / f"{name}.pem", folder / f"{name}.key"
    subprocess.run(
        [
            require("openssl"),
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-keyout", str(key), "-out", str(cert),
            "-subj", f"/CN={name}", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )  # fmt: skip
    return cert, key
