"""API keys: random, shown once, stored only as a keyed hash, recognisable when leaked.

    pk_test_3kq7x2mf9d4h_Xb1...   pk_<environment>_<key id>_<secret>

The key id is public (it appears in logs and the audit log); the secret never leaves the
response that created it. What is stored is HMAC-SHA256(pepper, key): a stolen database
yields no usable key without the pepper, which lives in the gateway's environment.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string
from dataclasses import dataclass
from enum import StrEnum


class Environment(StrEnum):
    TEST = "test"
    LIVE = "live"


KEY_PATTERN = re.compile(r"^pk_(test|live)_([a-z0-9]{12})_([A-Za-z0-9]{40})$")
ID_ALPHABET = string.ascii_lowercase + string.digits
SECRET_ALPHABET = string.ascii_letters + string.digits  # 40 chars of 62 symbols: ~238 bits


@dataclass(frozen=True)
class ParsedKey:
    environment: Environment
    key_id: str
    raw: str


def new_key(environment: Environment) -> ParsedKey:
    key_id = "".join(secrets.choice(ID_ALPHABET) for _ in range(12))
    secret = "".join(secrets.choice(SECRET_ALPHABET) for _ in range(40))
    return ParsedKey(environment, key_id, f"pk_{environment.value}_{key_id}_{secret}")


def parse_key(raw: str) -> ParsedKey | None:
    """The key's parts, or None when it is not shaped like one of our keys."""
    match = KEY_PATTERN.match(raw)
    if match is None:
        return None
    return ParsedKey(Environment(match.group(1)), match.group(2), raw)


def key_hash(pepper: bytes, raw: str) -> str:
    return hmac.new(pepper, raw.encode(), hashlib.sha256).hexdigest()


def key_matches(pepper: bytes, raw: str, stored_hash: str) -> bool:
    return hmac.compare_digest(key_hash(pepper, raw), stored_hash)
