"""Framing between the pool and a worker: a 4-byte big-endian length, then UTF-8 JSON.

Pool -> worker: one frame per job (see `pool.job_to_wire`). Worker -> pool: a hello frame with the
isolation report, then one answer frame per job ({job_id, status, detail, duration_s}).

Covers: exact-length reads over pipes, clean EOF at a frame boundary. Not covered: authentication;
these pipes are private to harness and worker (untrusted children have them closed before they run).
Kept import-light: the worker imports it before forking children.
"""

from __future__ import annotations

import json
import os
import struct

MAX_FRAME_BYTES = 1 << 28
_HEADER = struct.Struct(">I")


class ProtocolError(Exception):
    """A frame was truncated, too large or not JSON: the stream can no longer be trusted."""


def encode_frame(obj: dict) -> bytes:
    data = json.dumps(obj, separators=(",", ":")).encode()
    if len(data) > MAX_FRAME_BYTES:
        raise ProtocolError(f"frame of {len(data)} bytes exceeds {MAX_FRAME_BYTES}")
    return _HEADER.pack(len(data)) + data


def write_frame(fd: int, obj: dict) -> None:
    view = memoryview(encode_frame(obj))
    while view:
        view = view[os.write(fd, view) :]


def read_frame(fd: int) -> dict | None:
    """The next frame from `fd`, or None on EOF before its first byte."""
    header = _read_exact(fd, _HEADER.size, eof_ok=True)
    if header is None:
        return None
    (size,) = _HEADER.unpack(header)
    if size > MAX_FRAME_BYTES:
        raise ProtocolError(f"frame header announces {size} bytes")
    try:
        obj = json.loads(_read_exact(fd, size, eof_ok=False))
    except ValueError as e:
        raise ProtocolError(f"frame is not JSON: {e}") from None
    if not isinstance(obj, dict):
        raise ProtocolError("frame is not a JSON object")
    return obj


def _read_exact(fd: int, n: int, eof_ok: bool) -> bytes | None:
    chunks, got = [], 0
    while got < n:
        chunk = os.read(fd, min(n - got, 1 << 20))
        if not chunk:
            if eof_ok and got == 0:
                return None
            raise ProtocolError(f"stream ended after {got} of {n} bytes")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)
