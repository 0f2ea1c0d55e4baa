"""Unit tests of the format pieces that carry the integrity promises (format.md "Must hold" 4 and 6)."""

from __future__ import annotations

import os
from pathlib import Path

import msgpack
import pytest

from vger.crypto import keys as keys_mod
from vger.crypto.envelope import ObjectType, seal, unseal
from vger.crypto.keys import MasterKey, unwrap_key, wrap_key
from vger.errors import CorruptData, IntegrityError, WrongPassphrase
from vger.pluginmanager import Registry, load_plugins
from vger.repository import format as fmt
from vger.repository.pack import PackBuilder, decode_header, pack_id_of, walk_blobs
from vger.repository.repository import Repository
from vger.repository.writer import BlobWriter
from vger.storage import open_backend

PASSPHRASE = "unit test passphrase"
# Cheap Argon2 parameters so the tests do not spend a second per key.
CHEAP_KDF = {"time_cost": 1, "memory_cost": 8, "parallelism": 1}


@pytest.fixture(scope="module")
def registry() -> Registry:
    return load_plugins()


@pytest.fixture
def cipher(registry: Registry) -> object:
    return registry.get("cipher", "aes256gcm")(os.urandom(32))


@pytest.fixture
def repo(tmp_path: Path, registry: Registry, monkeypatch: pytest.MonkeyPatch) -> Repository:
    monkeypatch.setattr(keys_mod, "DEFAULT_KDF", CHEAP_KDF)
    backend = open_backend(str(tmp_path / "repo"), {}, registry)
    return Repository.init(backend, registry, "aes256gcm", lambda: PASSPHRASE)


def reopen(repo: Repository, registry: Registry) -> Repository:
    return Repository.open(repo.backend, registry, lambda: PASSPHRASE, allow_unencrypted=False)


# -- envelopes -----------------------------------------------------------------


def test_envelope_round_trip(cipher: object) -> None:
    sealed = seal(cipher, ObjectType.SNAPSHOT, b"hello", b"name")  # type: ignore[arg-type]
    assert sealed[0] == ObjectType.SNAPSHOT
    assert unseal(cipher, ObjectType.SNAPSHOT, sealed, b"name") == b"hello"  # type: ignore[arg-type]


def test_envelope_type_confusion_is_refused(cipher: object) -> None:
    sealed = seal(cipher, ObjectType.SNAPSHOT, msgpack.packb([]))  # type: ignore[arg-type]
    with pytest.raises(CorruptData, match="expected a index object, found snapshot"):
        unseal(cipher, ObjectType.INDEX, sealed)  # type: ignore[arg-type]
    # Rewriting the type byte does not help: it is authenticated.
    forged = bytes((ObjectType.INDEX,)) + sealed[1:]
    with pytest.raises(IntegrityError):
        unseal(cipher, ObjectType.INDEX, forged)  # type: ignore[arg-type]


def test_snapshot_object_passed_off_as_index_segment(repo: Repository, registry: Registry) -> None:
    # A hostile server copies a (valid, authenticated) snapshot object into index/.
    repo.put_object("index/" + "ab" * 32, ObjectType.SNAPSHOT, [])
    opened = reopen(repo, registry)
    with pytest.raises(CorruptData, match="index/abab"):
        list(opened.read_index_segment("index/" + "ab" * 32))
    with pytest.raises(CorruptData):
        _ = opened.index


def test_envelope_name_binding(cipher: object) -> None:
    sealed = seal(cipher, ObjectType.SNAPSHOT, b"doc", b"A" * 32)  # type: ignore[arg-type]
    with pytest.raises(IntegrityError):
        unseal(cipher, ObjectType.SNAPSHOT, sealed, b"B" * 32)  # type: ignore[arg-type]


def test_truncated_envelope(cipher: object) -> None:
    sealed = seal(cipher, ObjectType.CHUNK, b"x" * 100)  # type: ignore[arg-type]
    with pytest.raises(CorruptData):
        unseal(cipher, ObjectType.CHUNK, sealed[:20])  # type: ignore[arg-type]
    with pytest.raises(IntegrityError):
        unseal(cipher, ObjectType.CHUNK, sealed[:-1])  # type: ignore[arg-type]


# -- chunk id binding ----------------------------------------------------------


def _store(repo: Repository, registry: Registry, blobs: list[bytes]) -> list[bytes]:
    writer = BlobWriter(repo, registry.get("compressor", "zstd")({}))
    ids = []
    for data in blobs:
        cid = repo.hasher(data)
        writer.store(cid, data)
        ids.append(cid)
    writer.finish()
    return ids


def test_chunk_id_is_keyed(repo: Repository) -> None:
    import hashlib

    data = b"known file contents"
    assert repo.hasher(data) != hashlib.blake2b(data, digest_size=32).digest()


def test_swapped_index_entries_are_detected(repo: Repository, registry: Registry) -> None:
    a, b = os.urandom(5000), os.urandom(7000)
    id_a, id_b = _store(repo, registry, [a, b])
    fresh = reopen(repo, registry)
    assert fresh.read_blob(id_a) == a and fresh.read_blob(id_b) == b

    # Rewrite the index with the two entries' locations swapped.
    (segment,) = repo.index_segment_keys()
    rows = list(repo.read_index_segment(segment))
    by_id = {r[0]: r for r in rows}
    ea, eb = by_id[id_a], by_id[id_b]
    swapped = {
        ea[1]: [
            (id_a, eb[2], eb[3], eb[4], eb[5]),
            (id_b, ea[2], ea[3], ea[4], ea[5]),
        ]
    }
    assert ea[1] == eb[1]  # same pack
    repo.backend.delete(segment)
    repo.write_index_segment(swapped)

    tampered = reopen(repo, registry)
    with pytest.raises(IntegrityError, match=id_a.hex()[:16]):
        tampered.read_blob(id_a)
    with pytest.raises(IntegrityError, match=id_b.hex()[:16]):
        tampered.read_blob(id_b)


def test_blob_bit_flip_is_detected(repo: Repository, registry: Registry) -> None:
    data = os.urandom(10000)
    (cid,) = _store(repo, registry, [data])
    entry = repo.index.get(cid)
    assert entry is not None
    path = Path(repo.backend.location) / fmt.pack_key(entry.pack_id)
    raw = bytearray(path.read_bytes())
    raw[entry.offset + entry.length // 2] ^= 0x01
    path.write_bytes(bytes(raw))
    with pytest.raises(IntegrityError, match=entry.pack_id.hex()[:16]):
        reopen(repo, registry).read_blob(cid)


def test_none_cipher_recomputes_chunk_id(tmp_path: Path, registry: Registry) -> None:
    backend = open_backend(str(tmp_path / "clear"), {}, registry)
    repo = Repository.init(backend, registry, "none", lambda: "")
    a, b = b"a" * 3000, b"b" * 3000
    id_a, _id_b = _store(repo, registry, [a, b])
    assert repo.read_blob(id_a) == a
    # Without a key, a checksum-only envelope with the right AAD could be forged;
    # decode_blob must still recompute the id.
    envelope = repo.seal(ObjectType.CHUNK, b"\x00" + b, id_a)
    entry = repo.index.get(id_a)
    assert entry is not None
    with pytest.raises(IntegrityError, match="does not match its id"):
        repo.decode_blob(id_a, envelope, entry)


# -- keys ------------------------------------------------------------------------


def test_key_wrap_unwrap_and_wrong_passphrase() -> None:
    key = MasterKey.generate(os.urandom(32), "chacha20poly1305")
    blob = wrap_key(key, "right", CHEAP_KDF)
    assert key.enc_key not in blob and key.id_key not in blob
    assert unwrap_key(blob, "right") == key
    with pytest.raises(WrongPassphrase, match="wrong passphrase"):
        unwrap_key(blob, "wrong")


def test_rewrap_keeps_master_key() -> None:
    key = MasterKey.generate(os.urandom(32), "aes256gcm")
    one = wrap_key(key, "one", CHEAP_KDF)
    two = wrap_key(key, "two", CHEAP_KDF)
    assert one != two
    assert unwrap_key(one, "one") == unwrap_key(two, "two") == key


def test_tampered_key_file_repo_id_is_refused() -> None:
    key = MasterKey.generate(os.urandom(32), "aes256gcm")
    doc = msgpack.unpackb(wrap_key(key, "pw", CHEAP_KDF))
    doc["repo_id"] = os.urandom(32)  # the repo id is associated data of the wrapped key
    with pytest.raises(WrongPassphrase):
        unwrap_key(msgpack.packb(doc), "pw")


@pytest.mark.parametrize(
    ("name", "value"),
    [("memory_cost", 2**32), ("memory_cost", 64 * 1024 * 1024), ("time_cost", 10**6), ("parallelism", 0)],
)
def test_hostile_kdf_parameters_rejected_before_deriving(
    monkeypatch: pytest.MonkeyPatch, name: str, value: int
) -> None:
    key = MasterKey.generate(os.urandom(32), "aes256gcm")
    doc = msgpack.unpackb(wrap_key(key, "pw", CHEAP_KDF))
    doc[name] = value

    def no_derive(*args: object, **kwargs: object) -> bytes:
        raise AssertionError("Argon2 was run with hostile parameters")

    monkeypatch.setattr(keys_mod, "_derive", no_derive)
    monkeypatch.setattr(keys_mod, "hash_secret_raw", no_derive)
    with pytest.raises(CorruptData, match=name):
        unwrap_key(msgpack.packb(doc), "pw")


def test_garbage_key_file() -> None:
    with pytest.raises(CorruptData):
        unwrap_key(b"\xc1garbage", "pw")
    with pytest.raises(CorruptData):
        unwrap_key(msgpack.packb({"type": 6, "kdf": "scrypt"}), "pw")


# -- packs -------------------------------------------------------------------------


def _pack(cipher: object, sizes: list[int]) -> tuple[bytes, PackBuilder]:
    builder = PackBuilder()
    for i, size in enumerate(sizes):
        cid = bytes([i]) * 32
        builder.add(cid, fmt.BLOB_DATA, seal(cipher, ObjectType.CHUNK, os.urandom(size), cid), size)  # type: ignore[arg-type]
    entries = list(builder.entries)
    pack_id, parts = builder.finish(cipher)  # type: ignore[arg-type]
    data = b"".join(parts)
    assert pack_id == pack_id_of(data)
    builder.entries = entries
    return data, builder


def _sealed_header(cipher: object, rows: list[list[object]]) -> bytes:
    return seal(cipher, ObjectType.PACK_HEADER, msgpack.packb(rows))  # type: ignore[arg-type]


def test_pack_header_round_trip(cipher: object) -> None:
    data, builder = _pack(cipher, [100, 2000, 5])
    hlen = int.from_bytes(data[-4:], "little")
    sealed = data[-4 - hlen : -4]
    entries = decode_header(cipher, sealed, len(data), "pack x")  # type: ignore[arg-type]
    assert entries == builder.entries
    assert data.startswith(fmt.PACK_PREAMBLE)


@pytest.mark.parametrize(
    "bad",
    [
        lambda size, hlen: [b"\x01" * 32, 0, size, 10, 10],  # starts past the end
        lambda size, hlen: [b"\x01" * 32, 0, 13, size, 10],  # runs past the end
        lambda size, hlen: [b"\x01" * 32, 0, size - hlen - 4 - 5, 20, 10],  # runs into the header
        lambda size, hlen: [b"\x01" * 32, 0, 0, 40, 10],  # overlaps the preamble
        lambda size, hlen: [b"\x01" * 32, 0, -5, 40, 10],  # negative offset
        lambda size, hlen: [b"\x01" * 31, 0, 13, 40, 10],  # short chunk id
    ],
)
def test_pack_header_rejects_entries_outside_the_pack(cipher: object, bad: object) -> None:
    data, _ = _pack(cipher, [300, 300])
    sample = _sealed_header(cipher, [[b"\x00" * 32, 0, 13, 10, 10]])
    size = len(data)
    hlen = len(sample)
    row = bad(size, hlen)  # type: ignore[operator]
    sealed = _sealed_header(cipher, [[b"\x00" * 32, 0, 13, 10, 10], row])
    assert len(sealed) >= hlen  # same layout
    with pytest.raises(CorruptData, match="pack q"):
        decode_header(cipher, sealed, size, "pack q")  # type: ignore[arg-type]


def test_pack_header_garbage_is_corrupt(cipher: object) -> None:
    for payload in (b"\xc1", msgpack.packb({"a": 1}), msgpack.packb([[1, 2]]), msgpack.packb(5)):
        sealed = seal(cipher, ObjectType.PACK_HEADER, payload)  # type: ignore[arg-type]
        with pytest.raises(CorruptData):
            decode_header(cipher, sealed, 10_000, "pack g")  # type: ignore[arg-type]


def test_walk_blobs_recovers_offsets(cipher: object) -> None:
    data, builder = _pack(cipher, [10, 4000, 1, 70000])
    expected = [(e.offset, e.length) for e in builder.entries]
    walked = walk_blobs(data, "pack w")
    # The header envelope follows the blobs without a length prefix, so the walk
    # stops there; every real blob is found, in order.
    assert walked[: len(expected)] == expected
    # Header damage does not matter to the walk.
    damaged = bytearray(data)
    damaged[-10] ^= 0xFF
    assert walk_blobs(bytes(damaged), "pack w")[: len(expected)] == expected
    # A damaged length prefix stops the walk at the damage, not with garbage beyond.
    broken = bytearray(data)
    second = expected[1][0] - 4
    broken[second : second + 4] = (len(data) * 2).to_bytes(4, "little")
    assert walk_blobs(bytes(broken), "pack w") == expected[:1]
    with pytest.raises(CorruptData):
        walk_blobs(b"NOTAPACK" + data[8:], "pack w")


def _stored_sizes(repo: Repository, registry: Registry, blobs: list[bytes]) -> list[int]:
    writer = BlobWriter(repo, registry.get("compressor", "zstd")({}))
    sizes = [writer.store(repo.hasher(data), data)[1] for data in blobs]
    writer.finish()
    return sizes


def test_incompressible_chunks_are_stored_as_they_are(repo: Repository, registry: Registry) -> None:
    noise = os.urandom(1 << 20)
    (stored,) = _stored_sizes(repo, registry, [noise])
    # the envelope adds a tag byte, a nonce and an AEAD tag, nothing more
    assert len(noise) < stored < len(noise) + 64
    assert reopen(repo, registry).read_blob(repo.hasher(noise)) == noise


def test_a_chunk_compressible_only_past_its_start_is_still_compressed(
    repo: Repository, registry: Registry
) -> None:
    # Media headers, then text: a probe of the first bytes alone would store
    # this chunk raw; probes spread over the chunk must find the text.
    mixed = os.urandom(600_000) + b"a log line that repeats\n" * 20_000
    (stored,) = _stored_sizes(repo, registry, [mixed])
    assert stored < 650_000
    assert reopen(repo, registry).read_blob(repo.hasher(mixed)) == mixed


def test_a_chunk_with_one_small_compressible_block_is_still_compressed(
    repo: Repository, registry: Registry
) -> None:
    # 2 MiB of random data with one 64 KiB block of zeros in the middle (a disk
    # image with one sparse region): eight 16 KiB probes all landed in random
    # data; 32 probes of 4 KiB sample every 64 KiB.
    size, block = 2 * 1024 * 1024, 64 * 1024
    at = 21 * block + 1000  # not aligned to any probe grid
    data = os.urandom(at) + bytes(block) + os.urandom(size - at - block)
    (stored,) = _stored_sizes(repo, registry, [data])
    assert stored < size - block // 2
    assert reopen(repo, registry).read_blob(repo.hasher(data)) == data


def test_nonces_never_repeat_across_threads_or_a_fork(cipher: object) -> None:
    import threading

    from vger.crypto import envelope

    def nonces(count: int) -> list[bytes]:
        return [envelope._nonces.take() for _ in range(count)]

    seen: list[bytes] = nonces(700)  # more than one pool's worth
    others: list[list[bytes]] = []
    workers = [threading.Thread(target=lambda: others.append(nonces(600))) for _ in range(3)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    for batch in others:
        seen.extend(batch)
    # A forked child starts from fresh randomness, not from the parent's pool.
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        os.close(read)
        os.write(write, b"".join(nonces(4)))
        os._exit(0)
    os.close(write)
    child = os.read(read, 4 * envelope.NONCE_SIZE)
    os.close(read)
    os.waitpid(pid, 0)
    seen.extend(child[i : i + envelope.NONCE_SIZE] for i in range(0, len(child), envelope.NONCE_SIZE))
    seen.extend(nonces(4))  # what the parent takes next, which the child would have reused
    assert all(len(n) == envelope.NONCE_SIZE for n in seen)
    assert len(set(seen)) == len(seen)
