"""How AI Gateway encrypts a log's ``Metadata``, ``RequestBody`` and ``ResponseBody`` for Logpush.

Source: cloudflare-docs ``ai-gateway/observability/logging/logpush.mdx`` (2026): a fresh AES key per log
encrypts the data (AES-GCM, 256-bit key: the decryption sample imports it as ``AES-GCM``, length 256);
the AES key is encrypted with the gateway's ``logpush_public_key`` (RSA, OAEP with SHA-256: the sample
decrypts with ``oaepHash: "SHA256"``, which in Node sets the MGF1 hash too). The field is the object
``{"type": "encrypted", "key": b64, "iv": b64, "data": b64}``: the sample reads ``key``, ``iv`` and
``data`` as base64; ``type`` is from the dataset's field list.

ASSUMPTION: the IV is 12 random bytes (WebCrypto's recommended GCM nonce; the docs do not give its
length) and ``data`` is the ciphertext followed by the 16-byte tag (what WebCrypto's ``encrypt`` returns
and the sample's ``decrypt`` expects).
"""

from __future__ import annotations

import base64
import os
from typing import Final

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["EncryptionKeyError", "encrypt_field", "load_public_key"]

_IV_BYTES: Final = 12
_AES_KEY_BITS: Final = 256


class EncryptionKeyError(ValueError):
    """The gateway's ``logpush_public_key`` is not an RSA public key in PEM."""


def load_public_key(pem: str) -> rsa.RSAPublicKey:
    try:
        key = serialization.load_pem_public_key(pem.encode())
    except (ValueError, TypeError) as exc:
        raise EncryptionKeyError(f"logpush_public_key is not a PEM public key ({exc})") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise EncryptionKeyError("logpush_public_key is not an RSA key")
    return key


def encrypt_field(public_key: rsa.RSAPublicKey, plaintext: str) -> dict[str, str]:
    """``plaintext`` encrypted as one Logpush field, under a key made for it alone."""
    aes_key = AESGCM.generate_key(bit_length=_AES_KEY_BITS)
    iv = os.urandom(_IV_BYTES)
    data = AESGCM(aes_key).encrypt(iv, plaintext.encode(), None)
    wrapped = public_key.encrypt(
        aes_key,
        padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None),
    )
    b64 = base64.b64encode
    return {"type": "encrypted", "key": b64(wrapped).decode(), "iv": b64(iv).decode(), "data": b64(data).decode()}
