"""Scramble keys: one per municipality, derived from the platform secret."""

from __future__ import annotations

import pytest

from certgen.errors import ScrambleError
from certgen.scramble_keys import scramble_key


def test_keys_differ_per_municipality_and_secret_and_are_stable():
    key = scramble_key("secret", "131016")
    assert len(key) == 32
    assert key == scramble_key("secret", "131016")
    assert key != scramble_key("secret", "271004")
    assert key != scramble_key("other secret", "131016")


@pytest.mark.parametrize(("secret", "code"), [("", "131016"), ("s", "13101"), ("s", "13101x")])
def test_bad_input_is_refused(secret, code):
    with pytest.raises(ScrambleError):
        scramble_key(secret, code)
