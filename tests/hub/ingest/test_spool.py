"""The encrypted spool: round trips across segment boundaries, random access, tamper detection,
no plaintext on disk, and no file left behind whatever happens."""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

import pytest

from hub.ingest import spool as spool_module
from hub.ingest.spool import TAG_SIZE, EncryptedSpool, SpoolCorrupted

SEGMENT = 64
MARKER = b"Marquise Whitfield,1999-04-17"


def make_payload(size: int) -> bytes:
    """``size`` bytes that differ at every offset (a misplaced segment would show)."""
    return bytes((i * 7 + i // 251) % 256 for i in range(size))


def make_spool(tmp_path: Path, data: bytes, write_size: int = 10) -> EncryptedSpool:
    spool = EncryptedSpool(tmp_path, segment_size=SEGMENT)
    for start in range(0, len(data), write_size):
        spool.write(data[start : start + write_size])
    return spool


def ciphertext(spool: EncryptedSpool) -> bytes:
    return os.pread(spool.fileno(), 1 << 24, 0)


@pytest.mark.parametrize(
    "size", [0, 1, SEGMENT - 1, SEGMENT, SEGMENT + 1, 2 * SEGMENT, 3 * SEGMENT + 5]
)
def test_what_is_written_reads_back_whole_for_sizes_around_segment_boundaries(
    tmp_path: Path, size: int
) -> None:
    data = make_payload(size)
    with make_spool(tmp_path, data) as spool, spool.open() as reader:
        assert reader.read() == data
        assert spool.size == size
        assert os.fstat(spool.fileno()).st_size == size + spool.segments * TAG_SIZE


@pytest.mark.parametrize("write_size", [1, SEGMENT, 3 * SEGMENT + 1])
def test_any_write_size_gives_the_same_plaintext(tmp_path: Path, write_size: int) -> None:
    data = make_payload(5 * SEGMENT + 3)
    with make_spool(tmp_path, data, write_size) as spool, spool.open() as reader:
        assert reader.read() == data


def test_a_reader_seeks_anywhere_and_reads_across_segments(tmp_path: Path) -> None:
    data = make_payload(4 * SEGMENT + 9)
    with make_spool(tmp_path, data) as spool, spool.open() as reader:
        assert reader.seekable() and reader.readable()
        for start, length in [(0, 5), (SEGMENT - 3, 10), (2 * SEGMENT, SEGMENT), (250, 100)]:
            reader.seek(start)
            assert reader.read(length) == data[start : start + length]
        assert reader.seek(-4, io.SEEK_END) == len(data) - 4
        assert reader.read() == data[-4:]
        reader.seek(SEGMENT + 1)
        reader.seek(3, io.SEEK_CUR)
        assert reader.tell() == SEGMENT + 4
        assert reader.read(2) == data[SEGMENT + 4 : SEGMENT + 6]


def test_two_readers_keep_their_own_positions(tmp_path: Path) -> None:
    data = make_payload(3 * SEGMENT)
    with make_spool(tmp_path, data) as spool:
        first, second = spool.open(), spool.open()
        assert first.read(SEGMENT + 1) == data[: SEGMENT + 1]
        assert second.read(5) == data[:5]
        assert first.read() == data[SEGMENT + 1 :]


def test_the_file_on_disk_never_holds_the_plaintext(tmp_path: Path) -> None:
    data = (b"id,name,dob\n" + b"".join(b"%d," % i + MARKER + b"\n" for i in range(50))) * 3
    with EncryptedSpool(tmp_path, segment_size=SEGMENT) as spool:
        spool.write(data)
        spool.finish()
        sealed = ciphertext(spool)
        assert len(sealed) == len(data) + spool.segments * TAG_SIZE
        for needle in (MARKER, b"Whitfield", b"1999-04-17", b"id,name,dob"):
            assert needle not in sealed
        with spool.open() as reader:
            assert reader.read() == data


def test_the_spool_is_unlinked_at_once_and_private(tmp_path: Path) -> None:
    with EncryptedSpool(tmp_path) as spool:
        spool.write(MARKER)
        assert list(tmp_path.iterdir()) == []
        assert spool.path is None
        mode = os.fstat(spool.fileno()).st_mode
        assert stat.S_IMODE(mode) == 0o600


def test_a_flipped_byte_is_detected_with_a_clear_error(tmp_path: Path) -> None:
    data = make_payload(3 * SEGMENT)
    with make_spool(tmp_path, data) as spool:
        spool.finish()
        at = (SEGMENT + TAG_SIZE) + 10  # inside segment 1
        byte = os.pread(spool.fileno(), 1, at)
        os.pwrite(spool.fileno(), bytes([byte[0] ^ 0x01]), at)
        with spool.open() as reader:
            assert reader.read(SEGMENT) == data[:SEGMENT]  # segment 0 is intact
            with pytest.raises(SpoolCorrupted, match="segment 1 .* failed authentication"):
                reader.read(1)


def test_swapped_segments_are_detected(tmp_path: Path) -> None:
    data = make_payload(3 * SEGMENT)
    with make_spool(tmp_path, data) as spool:
        spool.finish()
        fd, width = spool.fileno(), SEGMENT + TAG_SIZE
        first, second = os.pread(fd, width, 0), os.pread(fd, width, width)
        os.pwrite(fd, second, 0)
        os.pwrite(fd, first, width)
        with spool.open() as reader, pytest.raises(SpoolCorrupted, match="segment 0"):
            reader.read(1)


def test_a_cut_off_or_extended_file_is_detected(tmp_path: Path) -> None:
    with make_spool(tmp_path, make_payload(3 * SEGMENT)) as spool:
        spool.finish()
        os.ftruncate(spool.fileno(), os.fstat(spool.fileno()).st_size - 1)
        with pytest.raises(SpoolCorrupted, match="changed size"):
            spool.open()


def test_after_close_the_file_and_its_descriptor_are_gone(tmp_path: Path) -> None:
    spool = make_spool(tmp_path, make_payload(2 * SEGMENT))
    reader = spool.open()
    fd = spool.fileno()
    spool.close()
    assert spool.closed and list(tmp_path.iterdir()) == []
    with pytest.raises(OSError):
        os.fstat(fd)
    with pytest.raises(ValueError, match="closed spool"):
        reader.read()
    with pytest.raises(ValueError, match="closed spool"):
        spool.write(b"more")
    spool.close()  # a second close is harmless


def test_where_the_file_cannot_be_unlinked_while_open_it_is_deleted_on_close(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Windows path: the name stays until close, and the contents are still ciphertext."""
    monkeypatch.setattr(spool_module, "_detach", lambda path: False)
    with EncryptedSpool(tmp_path, segment_size=SEGMENT) as spool:
        spool.write(MARKER * 10)
        spool.finish()
        assert spool.path is not None and spool.path.parent == tmp_path
        assert MARKER not in spool.path.read_bytes()
        assert stat.S_IMODE(spool.path.stat().st_mode) == 0o600
    assert list(tmp_path.iterdir()) == []


def test_the_file_is_deleted_when_the_with_block_raises(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(spool_module, "_detach", lambda path: False)
    with pytest.raises(RuntimeError, match="client went away"), EncryptedSpool(tmp_path) as spool:
        spool.write(MARKER)
        assert spool.path is not None
        raise RuntimeError("client went away")
    assert list(tmp_path.iterdir()) == []


def test_the_file_is_deleted_when_a_write_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(spool_module, "_detach", lambda path: False)
    spool = EncryptedSpool(tmp_path, segment_size=SEGMENT)
    assert spool.path is not None

    def disk_full(plaintext: bytes, final: bool) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(spool, "_seal", disk_full)
    with pytest.raises(OSError, match="No space"):
        spool.write(make_payload(3 * SEGMENT))
    assert spool.closed and list(tmp_path.iterdir()) == []


def test_a_forgotten_spool_is_deleted_when_collected(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(spool_module, "_detach", lambda path: False)
    spool = EncryptedSpool(tmp_path)
    spool.write(MARKER)
    assert len(list(tmp_path.iterdir())) == 1
    del spool
    assert list(tmp_path.iterdir()) == []


def test_a_finished_spool_takes_no_more_writes(tmp_path: Path) -> None:
    with EncryptedSpool(tmp_path) as spool:
        spool.write(b"abc")
        spool.open().close()
        with pytest.raises(ValueError, match="finished"):
            spool.write(b"d")


def test_two_spools_of_the_same_data_share_no_ciphertext(tmp_path: Path) -> None:
    """Each spool has its own one-time key."""
    data = make_payload(2 * SEGMENT)
    with make_spool(tmp_path, data) as a, make_spool(tmp_path, data) as b:
        a.finish()
        b.finish()
        assert ciphertext(a) != ciphertext(b)
        assert "key" not in repr(a).lower()
