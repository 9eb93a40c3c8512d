"""Device tokens: sign and verify, what does not verify, and fuzzing of ``verify``."""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from proto.tokens import TokenError, sign, verify

SECRET = b"device-secret"
APP = "app-1"
RID = "0123456789abcdef0123456789abcdef"
EXP = 1_700_000_000
NOW = EXP - 3600
TOKEN = sign(SECRET, APP, RID, EXP)


def test_token_is_expiry_dot_signature():
    exp, dot, signature = TOKEN.partition(".")
    assert (exp, dot) == (str(EXP), ".")
    # unpadded base64url of an HMAC-SHA256: 43 characters of A-Z a-z 0-9 - _
    assert len(signature) == 43
    assert set(signature) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_sign_is_deterministic():
    assert sign(SECRET, APP, RID, EXP) == TOKEN


def test_signed_token_verifies_and_returns_its_expiry():
    assert verify(SECRET, APP, RID, TOKEN, NOW) == EXP


def test_token_verifies_up_to_and_including_its_expiry_second():
    assert verify(SECRET, APP, RID, TOKEN, EXP) == EXP
    with pytest.raises(TokenError, match="expired"):
        verify(SECRET, APP, RID, TOKEN, EXP + 0.001)


@pytest.mark.parametrize(("secret", "app", "rid"), [
    (b"other-secret", APP, RID),
    (SECRET, "app-2", RID),
    (SECRET, APP, "0123456789abcdef0123456789abcdee"),
    (SECRET, RID, APP),
    (b"", APP, RID),
], ids=["other-secret", "other-app", "other-device", "swapped", "empty-secret"])
def test_token_of_another_app_device_or_secret_does_not_match(secret, app, rid):
    with pytest.raises(TokenError, match="does not match") as info:
        verify(secret, app, rid, TOKEN, NOW)
    assert info.value.reason == "token does not match this app and device"


def test_app_and_rid_cannot_be_shifted_across_the_separator():
    # "a" + "\n" + "b\nc" and "a\nb" + "\n" + "c" would sign the same text; identifiers never
    # contain a newline (ID_RE), which is what keeps the signed text unambiguous.
    assert sign(SECRET, "a", "bc", EXP) != sign(SECRET, "ab", "c", EXP)


def test_expired_token_is_refused_after_its_signature_is_checked():
    with pytest.raises(TokenError) as info:
        verify(SECRET, APP, RID, TOKEN, EXP + 1)
    assert info.value.reason == "token expired"
    forged_and_expired = sign(b"other", APP, RID, EXP)
    with pytest.raises(TokenError, match="does not match"):
        verify(SECRET, APP, RID, forged_and_expired, EXP + 1)


def test_changing_the_expiry_breaks_the_signature():
    signature = TOKEN.partition(".")[2]
    with pytest.raises(TokenError, match="does not match"):
        verify(SECRET, APP, RID, f"{EXP + 86400}.{signature}", NOW)


@pytest.mark.parametrize("token", ["", "abc", "12", "x.y", "12.", ".sig", "-1.sig", "+12.sig",
                                   " 12.sig", "12 .sig", "1e3.sig", "0x10.sig", "12,5.sig",
                                   "\uff11\uff12.sig"],
                         ids=["empty", "abc", "no-dot", "non-digit-exp", "no-signature",
                              "no-exp", "negative", "plus", "space", "space-after",
                              "exponent", "hex", "comma", "fullwidth-digits"])
def test_malformed_token_is_refused(token):
    with pytest.raises(TokenError) as info:
        verify(SECRET, APP, RID, token, NOW)
    assert info.value.reason in {"malformed token", "token does not match this app and device"}
    if token in {"", "abc", "12", "x.y", "12."}:
        assert info.value.reason == "malformed token"


def flip(text: str, index: int) -> str:
    replacement = "A" if text[index] != "A" else "B"
    return text[:index] + replacement + text[index + 1:]


@pytest.mark.parametrize("index", [0, 1, 21, 41, 42])
def test_tampered_signature_is_refused(index):
    exp, _, signature = TOKEN.partition(".")
    with pytest.raises(TokenError, match="does not match"):
        verify(SECRET, APP, RID, f"{exp}.{flip(signature, index)}", NOW)


@pytest.mark.parametrize("tampered", [TOKEN + "A", TOKEN[:-1], TOKEN + "=", TOKEN + ".x",
                                      TOKEN.upper()],
                         ids=["longer", "shorter", "padded", "extra-part", "upper"])
def test_altered_token_is_refused(tampered):
    with pytest.raises(TokenError, match="does not match"):
        verify(SECRET, APP, RID, tampered, NOW)


@pytest.mark.parametrize("exp_text", [f"0{EXP}", "\u0661\u0667" + "\u0660" * 8],
                         ids=["leading-zero", "arabic-indic-digits"])
def test_only_the_canonical_spelling_of_a_token_verifies(exp_text):
    signature = TOKEN.partition(".")[2]
    with pytest.raises(TokenError):
        verify(SECRET, APP, RID, f"{exp_text}.{signature}", NOW)


def only_token_error(token: str) -> None:
    try:
        verify(SECRET, APP, RID, token, NOW)
    except TokenError as err:
        assert err.reason in {"malformed token", "token does not match this app and device",
                              "token expired"}


ascii_tokens = st.text(st.characters(min_codepoint=0, max_codepoint=127), max_size=512)


@settings(max_examples=300, deadline=None)
@given(token=ascii_tokens | st.builds("{}.{}".format, st.integers(0, 2**64), ascii_tokens))
def test_verify_raises_only_token_error_for_ascii_tokens(token):
    # A HELLO's token is at most 512 characters.
    only_token_error(token[:512])


@settings(max_examples=300, deadline=None, report_multiple_bugs=False)
@given(token=st.text(max_size=512) | st.builds("{}.{}".format, st.integers(0, 2**64),
                                                 st.text(max_size=64)))
@example(token="12.\u00e9")
@example(token="\u00b2.sig")
@example(token="9" * 4301 + ".sig")
def test_verify_raises_only_token_error_for_any_text(token):
    only_token_error(token)


@pytest.mark.parametrize("token", ["12.\u00e9", "\u00b2.sig", "9" * 4301 + ".sig"],
                         ids=["non-ascii-signature", "superscript-two", "4301-digits"])
def test_verify_refuses_odd_text_with_token_error(token):
    with pytest.raises(TokenError):
        verify(SECRET, APP, RID, token, NOW)


def test_token_error_reason_is_the_message():
    err = TokenError("token expired")
    assert err.reason == str(err) == "token expired"
