"""An MP3's Xing/Info tag: the length LAME writes in the first frame, which libmpg123 reports as the
file's (asr.audio uses it to tell a cut or joined MP3), and reading a file's first bytes and its
size without moving a reader's position."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class XingTag:
    """An MP3's Xing/Info tag (LAME writes one in its first frame)."""
    counts_frames: bool  # libmpg123's ``frames`` is then the tag's count, else a guess from the file's size
    stream_bytes: int | None  # the MPEG stream's length it gives
    held_bytes: int  # the file's, less its ID3 tags

    @property
    def size_off(self) -> bool:
        """The file holds more than 1% more or less than the tag says: libmpg123 then prints a note
        of its own ("Xing stream size off by more than 1%"), and reads only as far as the tag says."""
        return self.stream_bytes is not None and abs(self.held_bytes - self.stream_bytes) > self.stream_bytes / 100


def xing_tag(source) -> XingTag | None:
    """An MP3's Xing/Info tag (after an ID3v2 tag, if any), or None."""
    head, start = file_head(source, 10), 0
    if head[:3] == b"ID3" and len(head) == 10:  # an ID3v2 tag first: a 10-byte header, 7 bits a byte of size
        start = 10 + sum((b & 0x7F) << 7 * (3 - i) for i, b in enumerate(head[6:10])) + 10 * bool(head[5] & 0x10)
    frame = file_head(source, 60, start)
    at = max(frame.find(b"Xing"), frame.find(b"Info"))  # after the side information: byte 13, 21 or 36
    if at < 0 or len(frame) < at + 8:
        return None
    flags = int.from_bytes(frame[at + 4: at + 8], "big")  # then the frame count (bit 0), the byte count (bit 1)
    size_at = at + 8 + 4 * (flags & 1)
    stream = int.from_bytes(frame[size_at: size_at + 4], "big") if flags & 2 and len(frame) >= size_at + 4 else None
    size = file_size(source)
    held = size - start - 128 * (file_head(source, 3, max(0, size - 128)) == b"TAG")  # an ID3v1 tag last
    return XingTag(bool(flags & 1), stream, held)


def file_size(source) -> int:
    """The size in bytes of a file (by path) or of the file object libsndfile reads (left where it
    was); 0 where it cannot be told."""
    try:
        if isinstance(source, (str, bytes, os.PathLike)):  # bytes: a path (soundfile's f.name, see asr.audio)
            return os.path.getsize(source)
        at = source.tell()
        end = source.seek(0, os.SEEK_END)
        source.seek(at)
        return end
    except (OSError, AttributeError, ValueError):
        return 0


def file_head(source, size: int, start: int = 0) -> bytes:
    """``size`` bytes from ``start`` of a file (not a pipe: they would be gone) or of the file object
    libsndfile reads (left where it was); none where they cannot be read."""
    try:
        if isinstance(source, (str, bytes, os.PathLike)):  # bytes: a path (soundfile's f.name, see asr.audio)
            if not os.path.isfile(source):
                return b""
            with open(source, "rb") as file:
                file.seek(start)
                return file.read(size)
        at = source.tell()
        source.seek(start)
        data = source.read(size)
        source.seek(at)
        return data
    except (OSError, AttributeError, ValueError):  # unreadable; a closed or unseekable stream
        return b""
