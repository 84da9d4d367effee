import base64
import hashlib

from hypothesis import given
from hypothesis import strategies as st

from exportd.s3.digests import ObjectDigest, content_md5


def test_content_md5_is_base64_of_the_md5_digest() -> None:
    # RFC 1864's header for the empty body, and one for a known text.
    assert content_md5(b"") == "1B2M2Y8AsgTpgAmY7PhCfg=="
    assert content_md5(bytearray(b"hello")) == "XUFAKrxLKna5cZ2REBfFkg=="


@given(st.lists(st.binary(max_size=64), max_size=6))
def test_an_object_digest_is_the_sha256_of_its_parts_in_order(parts: list[bytes]) -> None:
    digest = ObjectDigest()
    md5s = [digest.add(bytearray(part)) for part in parts]
    assert digest.hexdigest() == hashlib.sha256(b"".join(parts)).hexdigest()
    assert md5s == [base64.b64encode(hashlib.md5(p).digest()).decode() for p in parts]
