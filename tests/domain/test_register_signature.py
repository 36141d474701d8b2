"""The signed-run format of bcl.register.diffs (domain.register_signature): each message verifies alone."""

from __future__ import annotations

import pytest

from domain.register_signature import SignatureHeader, climb, leaf_digest, run_paths, signer_rejection


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 13, 256])
def test_every_leaf_leads_to_the_root_and_nothing_else_does(n: int) -> None:
    messages = [(f"302066:{i:011d}".encode(), f"value {i}".encode()) for i in range(n)]
    leaves = [leaf_digest(k, v) for k, v in messages]
    top, paths = run_paths(leaves)

    def root(leaf: bytes, index: int, path: bytes) -> bytes | None:
        nodes = climb(leaf, index, n, path)
        return None if nodes is None else nodes[-1]

    for i, leaf in enumerate(leaves):
        assert root(leaf, i, paths[i]) == top
        assert root(leaf_digest(messages[i][0], b"altered"), i, paths[i]) != top
        if n > 1:
            assert root(leaf, (i + 1) % n, paths[i]) != top
    assert root(leaves[0], n, paths[0]) is None  # a position outside the run


def test_a_climb_stops_at_a_node_already_authenticated() -> None:
    leaves = [leaf_digest(b"k", bytes([i])) for i in range(8)]
    top, paths = run_paths(leaves)
    first = climb(leaves[0], 0, 8, paths[0])
    assert first is not None and len(first) == 4 and first[-1] == top
    second = climb(leaves[1], 1, 8, paths[1], known=set(first))
    assert second == [leaves[1], first[1]]  # one level: its parent is the first leaf's
    assert leaf_digest(None, b"") != leaf_digest(b"", b"")  # no key is not an empty key


def test_the_header_round_trips_and_rejects_other_bytes() -> None:
    header = SignatureHeader(b"k" * 8, b"s" * 64, 3, 5, b"a" * 32 + b"b" * 32)
    assert SignatureHeader.decode(header.encode()) == header
    assert SignatureHeader.decode(header.encode()[:-1]) is None
    assert SignatureHeader.decode(b"not a signature") is None


def test_the_key_must_name_the_signing_municipality() -> None:
    assert signer_rejection("302066", b"302066:00000000001") is None
    for key in (b"045811:00000000001", b"3020661:00000000001"):
        rejection = signer_rejection("302066", key)
        assert rejection is not None and rejection.code == "SIGNER_MISMATCH"
    assert signer_rejection("302066", None) is None  # left to the event's validation: MISSING_KEY
