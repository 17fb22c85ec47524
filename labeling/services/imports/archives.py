"""Checks on a zip before anything in it is inflated: entry count, declared total size, overlapping entries.

A zip's central directory can point many entries at the same compressed bytes (300 entries sharing one
49 MB deflated block inflate to 14.7 GB from a 65 KB file), or at ranges that quote each other. Every
entry of an honest zip owns its own span of the file, so any overlap refuses the whole archive. The
entry count is read from the central directory itself, before Python's zipfile builds an object per
entry, and the declared sizes are summed before reading. Declared sizes are never trusted while reading:
each entry is read with a cap (sources.py), and zipfile stops inflating an entry at its declared size.
"""

from __future__ import annotations

import itertools
import struct
import zipfile
from pathlib import Path

from labeling.services.imports.validation import binary_size

_CENTRAL = struct.Struct("<4s24xHHH12x")  # signature; name, extra and comment lengths at offset 28
_LOCAL = struct.Struct("<4s22xHH")  # signature, then name and extra lengths at offset 26


def zip_entry_count(path: Path, *, stop_after: int) -> int | None:
    """Central-directory records of the zip at `path`, counted up to `stop_after` + 1; None if not a zip.

    Walks the records themselves (a lying total in the end record changes nothing) without building them.
    """
    with open(path, "rb") as fh:
        # zipfile's end-record finder handles zip64 and data prepended to the archive (self-extractors).
        endrec = zipfile._EndRecData(fh)
        if not endrec:
            return None
        size_cd, offset_cd = endrec[zipfile._ECD_SIZE], endrec[zipfile._ECD_OFFSET]
        start = endrec[zipfile._ECD_LOCATION] - size_cd
        if endrec[zipfile._ECD_SIGNATURE] == zipfile.stringEndArchive64:
            start -= zipfile.sizeEndCentDir64 + zipfile.sizeEndCentDir64Locator
        if start < 0 or offset_cd < 0:
            return None
        end, position, count = start + size_cd, start, 0
        while position + _CENTRAL.size <= end and count <= stop_after:
            fh.seek(position)
            head = fh.read(_CENTRAL.size)
            if len(head) < _CENTRAL.size:
                break
            signature, name_len, extra_len, comment_len = _CENTRAL.unpack(head)
            if signature != zipfile.stringCentralDir:
                break
            count += 1
            position += _CENTRAL.size + name_len + extra_len + comment_len
        return count


def zip_overlap(path: Path, infos: list[zipfile.ZipInfo], *, data_end: int) -> str | None:
    """Why the entries' byte ranges are not disjoint (a zip bomb), or None when every entry owns its bytes.

    An entry spans its local header, name, extra field and compressed data; a data descriptor after the
    data is left out, so the span is never larger than the truth and an honest zip never trips it.
    """
    spans = []
    with open(path, "rb") as fh:
        for info in infos:
            fh.seek(info.header_offset)
            head = fh.read(_LOCAL.size)
            if len(head) < _LOCAL.size or _LOCAL.unpack(head)[0] != zipfile.stringFileHeader:
                return f"entry {info.filename!r} points at no file header: not a valid zip"
            _, name_len, extra_len = _LOCAL.unpack(head)
            end = info.header_offset + _LOCAL.size + name_len + extra_len + info.compress_size
            spans.append((info.header_offset, end, info.filename))
    spans.sort()
    for (_, end, name), (start, _, other) in itertools.pairwise(spans):
        if start < end:
            return (f"entries {name!r} and {other!r} share the same compressed bytes (a zip bomb): "
                    "refused, nothing in it was unpacked")  # fmt: skip
    if spans and max(end for _, end, _ in spans) > data_end:
        return "an entry's data runs into the zip's directory (a zip bomb): refused, nothing in it was unpacked"
    return None


def zip_open_checked(path: Path, *, max_entries: int, max_bytes: int) -> tuple[zipfile.ZipFile | None, str | None]:
    """Open a zip after checking it as a whole: (archive, None), or (None, why it is refused). Reads only headers.

    Raises zipfile.BadZipFile or OSError for a file that is not a readable zip.
    """
    count = zip_entry_count(path, stop_after=max_entries)
    if count is not None and count > max_entries:
        return None, f"zip has more than {max_entries:,} entries (LABELLOOP_MAX_ARCHIVE_ENTRIES): refused"
    archive = zipfile.ZipFile(path)
    infos = archive.infolist()
    reason = None
    declared = sum(info.file_size for info in infos)
    if len(infos) > max_entries:
        reason = f"zip has {len(infos):,} entries, over the {max_entries:,} limit (LABELLOOP_MAX_ARCHIVE_ENTRIES)"
    elif declared > max_bytes:
        reason = (f"zip would unpack to {binary_size(declared)}, over the {binary_size(max_bytes)} limit "
                  "(LABELLOOP_MAX_ARCHIVE_BYTES): refused, nothing in it was unpacked")  # fmt: skip
    else:
        reason = zip_overlap(path, infos, data_end=archive.start_dir)
    if reason:
        archive.close()
        return None, reason
    return archive, None
