"""The one reading of X-Request-ID and If-None-Match that the gateway and every service share."""

from __future__ import annotations

import pytest

from libs.common.headers import etag_matches, incoming_request_id


@pytest.mark.parametrize("value", ["req-42", "front-42.a:b", "A_b-9", "x" * 128])
def test_a_sane_request_id_is_kept(value: str) -> None:
    assert incoming_request_id([(b"accept", b"*/*"), (b"x-request-id", value.encode())]) == value


@pytest.mark.parametrize(
    "value", [b"", b"two words", b"x" * 129, b"a\r\nX-Forged: 1", b'quote"d', b"caf\xe9"]
)
def test_a_request_id_that_could_forge_a_log_line_or_header_is_replaced(value: bytes) -> None:
    assert incoming_request_id([(b"x-request-id", value)]) is None


def test_no_request_id_means_one_is_made() -> None:
    assert incoming_request_id([(b"host", b"shop")]) is None


@pytest.mark.parametrize(
    ("header", "matches"),
    [
        ('"abc"', True),
        ('W/"abc"', True),
        ('"x", "abc"', True),
        (' "x" ,W/"abc" ', True),
        ("*", True),
        ('"abcd"', False),
        ('"x", "y"', False),
        ("", False),
        (",", False),
    ],
)
def test_if_none_match_is_the_weak_comparison_of_rfc_9110(header: str, matches: bool) -> None:
    assert etag_matches(header, '"abc"') is matches
    assert etag_matches(header, 'W/"abc"') is matches
