"""Signed candidate links: anything that is not a link we issued is 401, never an error."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from offerseal.shared.errors import Unauthorized
from offerseal.shared.links import LinkSigner


@given(st.text(max_size=200))
def test_any_text_is_refused_as_a_link(token: str) -> None:
    signer = LinkSigner(b"k" * 32)
    with pytest.raises(Unauthorized):
        signer.verify(token, "reply")


def test_a_non_ascii_signature_is_401_not_a_crash() -> None:
    signer = LinkSigner(b"k" * 32)
    with pytest.raises(Unauthorized):
        signer.verify("eyJ0IjoiYSJ9.é", "reply")
