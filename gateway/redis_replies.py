"""Reading redis-py's replies: it types each one `bytes | str`, which of the two depending on the
client's `decode_responses`. The gateway's own clients leave it off (bytes); a store handed a client
that decodes works all the same."""

from __future__ import annotations


def text(reply: bytes | str) -> str:
    """A reply as text (UTF-8)."""
    return reply.decode() if isinstance(reply, bytes) else reply
