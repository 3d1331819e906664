"""Ed25519 keys and DSSE envelopes: what signs a bundle's provenance and checks it.

* DSSE (github.com/secure-systems-lab/dsse, protocol v1): the signature covers
  ``PAE(payloadType, payload) = "DSSEv1" SP LEN(type) SP type SP LEN(payload) SP payload`` (lengths as
  ASCII decimal byte counts), never the JSON around it; ``payload`` and ``sig`` are standard base64.
* The key id is the sha256 of the raw 32-byte public key, in hex.
* ``AIGW_SIGNING_KEY`` holds the private key as PEM text, or the path of a PEM file (PKCS#8, unencrypted).
  ``aigw keygen`` writes a pair: the private key with mode 0600, never under an ``outputs/`` folder.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from aigw.errors import ConfigError, EvidenceError

__all__ = [
    "SIGNING_KEY_VAR",
    "Ed25519PrivateKey",
    "Ed25519PublicKey",
    "KeyPair",
    "generate_key_pair",
    "key_from_environ",
    "key_id",
    "load_private_key",
    "load_public_key",
    "open_envelope",
    "pae",
    "private_key_text",
    "seal_envelope",
]

SIGNING_KEY_VAR: Final = "AIGW_SIGNING_KEY"
_PEM_START: Final = "-----BEGIN"


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE's pre-authentication encoding of ``payload`` of ``payload_type``."""
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def key_id(key: Ed25519PublicKey | Ed25519PrivateKey) -> str:
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def seal_envelope(payload: bytes, payload_type: str, key: Ed25519PrivateKey | None) -> dict[str, Any]:
    """The DSSE envelope of ``payload``: signed with ``key``, or with no signature when ``key`` is None."""
    signatures = [] if key is None else [{"keyid": key_id(key), "sig": _b64(key.sign(pae(payload_type, payload)))}]
    return {"payloadType": payload_type, "payload": _b64(payload), "signatures": signatures}


@dataclass(frozen=True)
class Opened:
    """An envelope read back: its payload, and the key id of the signature that was checked (None: not checked)."""

    payload: bytes
    payload_type: str
    signed: bool
    verified_key: str | None


def open_envelope(envelope: Any, payload_type: str, public_key: Ed25519PublicKey | None = None,
                  *, name: str = "the envelope") -> Opened:
    """The payload of a DSSE envelope; with ``public_key``, only when a signature of that key verifies.

    ``EvidenceError`` (one line, naming ``name``) for a malformed envelope, another payload type, a missing
    signature or one that does not verify.
    """
    if not isinstance(envelope, Mapping):
        raise EvidenceError(f"{name} is not a DSSE envelope (a JSON object)")
    kind, encoded, signatures = envelope.get("payloadType"), envelope.get("payload"), envelope.get("signatures")
    if kind != payload_type:
        raise EvidenceError(f"{name}: payloadType is {kind!r}, not {payload_type!r}")
    if not isinstance(encoded, str) or not isinstance(signatures, list):
        raise EvidenceError(f"{name} is not a DSSE envelope (payload or signatures missing)")
    try:
        payload = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise EvidenceError(f"{name}: the payload is not valid base64 (the envelope was altered)") from None
    if public_key is None:
        return Opened(payload, kind, bool(signatures), None)
    wanted = key_id(public_key)
    if not signatures:
        raise EvidenceError(f"{name} is unsigned, so it cannot be checked against key {wanted[:16]}",
                            hint="Sign the run: set AIGW_SIGNING_KEY (see `aigw keygen`) and run again")
    message = pae(kind, payload)
    for signature in signatures:
        # The key id is not covered by the signature: it must name this key, or it was altered.
        if not isinstance(signature, Mapping) or not isinstance(signature.get("sig"), str) or (
                signature.get("keyid") != wanted):
            continue
        try:
            public_key.verify(base64.b64decode(signature["sig"], validate=True), message)
        except (InvalidSignature, binascii.Error, ValueError):
            continue
        return Opened(payload, kind, True, wanted)
    ids = ", ".join(str(s.get("keyid", "?"))[:16] for s in signatures if isinstance(s, Mapping))
    raise EvidenceError(
        f"{name}: no signature verifies with key {wanted[:16]} (signed by {ids or 'nothing readable'}): "
        "the payload or the signature changed after signing, or another key signed it",
        hint="Fetch the bundle again from where it was sealed; check that --key is the signer's public key",
    )


def private_key_text(key: Ed25519PrivateKey) -> str:
    """The key's PEM body (base64 of the PKCS#8 DER): what the sealing scan looks for, so that a key that
    strayed into a bundle file is quarantined like any other secret."""
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode("ascii")
    return "".join(line for line in pem.splitlines() if not line.startswith("-----"))


def load_private_key(value: str) -> Ed25519PrivateKey:
    """A private key from PEM text or the path of a PEM file. ``ConfigError`` never shows the key."""
    text = value.strip()
    source = "AIGW_SIGNING_KEY"
    if not text.startswith(_PEM_START):
        path = Path(text).expanduser()
        source = str(path)
        try:
            text = path.read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"signing key {source!r} cannot be read ({type(exc).__name__})",
                              hint="Set AIGW_SIGNING_KEY to the PEM text or a PEM file's path; "
                                   "`aigw keygen` makes one") from None
    try:
        key = serialization.load_pem_private_key(text.encode("ascii"), password=None)
    except (ValueError, TypeError, UnicodeEncodeError):
        raise ConfigError(f"signing key from {source} is not an unencrypted PEM private key",
                          hint="Use a key `aigw keygen` wrote") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"signing key from {source} is not an Ed25519 key", hint="Use a key `aigw keygen` wrote")
    return key


def key_from_environ(environ: Mapping[str, str] | None = None) -> Ed25519PrivateKey | None:
    """The key ``AIGW_SIGNING_KEY`` gives, or None when it is unset."""
    value = (os.environ if environ is None else environ).get(SIGNING_KEY_VAR, "").strip()
    return load_private_key(value) if value else None


def load_public_key(path: Path) -> Ed25519PublicKey:
    """The Ed25519 public key of a PEM file (``aigw keygen``'s ``.pub``)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"--key {str(path)!r} cannot be read ({exc.strerror})", hint="Check the path") from None
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError:
        raise ConfigError(f"--key {str(path)!r} is not a PEM public key",
                          hint="Pass the signer's public key (the .pub file of `aigw keygen`)") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError(f"--key {str(path)!r} is not an Ed25519 public key", hint="Pass the signer's .pub file")
    return key


@dataclass(frozen=True)
class KeyPair:
    private: Path
    public: Path
    key_id: str


def generate_key_pair(private: Path) -> KeyPair:
    """A new Ed25519 pair: ``private`` (PEM, mode 0600) and ``private`` + ``.pub``. Refuses to overwrite,
    and refuses a path under an ``outputs/`` folder (bundles are shared; a key must never travel with one)."""
    private = private.expanduser().resolve()
    public = private.with_name(private.name + ".pub")
    if "outputs" in private.parts:
        raise ConfigError(f"{private} is under an outputs/ folder, which evidence bundles are made of",
                          hint="Keep the signing key outside the repository's outputs/, e.g. the default path")
    for path in (private, public):
        if path.exists():
            raise ConfigError(f"{path} exists; a key is never overwritten", hint="Choose another path with --out")
    private.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    public.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo))
    return KeyPair(private, public, key_id(key))
