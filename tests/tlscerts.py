"""Certificates for the TLS tests, made with the ``openssl`` command: a CA, server
certificates it signs (for ``localhost`` and ``127.0.0.1`` unless told otherwise) and a
client certificate."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

OPENSSL = shutil.which("openssl")


def _run(*args: str, cwd: Path) -> None:
    subprocess.run([OPENSSL or "openssl", *args], cwd=cwd, check=True, capture_output=True)


@dataclass
class Pki:
    dir: Path
    ca: Path
    ca_key: Path
    serial: int = 1

    def issue(
        self, name: str, cn: str, sans: str = "DNS:localhost,IP:127.0.0.1"
    ) -> tuple[Path, Path]:
        """A certificate ``name.pem`` (and key ``name.key``) for ``cn`` signed by the CA."""
        key, csr, cert = (
            self.dir / f"{name}.key",
            self.dir / f"{name}.csr",
            self.dir / f"{name}.pem",
        )
        ext = self.dir / f"{name}.ext"
        ext.write_text(f"subjectAltName={sans}\n" if sans else "basicConstraints=CA:FALSE\n")
        _run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr),
             "-subj", f"/CN={cn}", cwd=self.dir)  # fmt: skip
        self.serial += 1
        _run("x509", "-req", "-in", str(csr), "-CA", str(self.ca), "-CAkey", str(self.ca_key),
             "-set_serial", str(self.serial), "-days", "2", "-extfile", str(ext),
             "-out", str(cert), cwd=self.dir)  # fmt: skip
        return cert, key


def make_pki(directory: Path, name: str = "ca") -> Pki:
    if OPENSSL is None:
        pytest.skip("the openssl command is not installed")
    directory.mkdir(parents=True, exist_ok=True)
    ca, ca_key = directory / f"{name}.pem", directory / f"{name}.key"
    _run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key), "-out", str(ca),
         "-days", "2", "-subj", f"/CN=mcpframe test {name}", cwd=directory)  # fmt: skip
    return Pki(directory, ca, ca_key)
