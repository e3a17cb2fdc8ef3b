"""Tests for narrate.ops.pii: typed placeholders, checksums, no false positives on receipts."""

from __future__ import annotations

import copy

import pytest

from narrate.config.settings import PrivacySettings
from narrate.ops.pii import (
    AnonymizedText,
    anonymize,
    anonymize_messages,
    luhn_valid,
    valid_cn_id,
)

_ID_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]  # GB 11643


def with_check_digit(first17: str) -> str:
    """An ID number completed with its MOD 11-2 check digit (independent of the module)."""
    total = sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS, strict=True))
    return first17 + "10X98765432"[total % 11]


# Every value here must disappear from the anonymised text.
PII = {
    "EMAIL": ["li.wei@example.com.cn", "wang.fang+work@mail.qq.com"],
    "PHONE": [
        "+86 138 0013 8000",
        "139-1234-5678",
        "010-12345678",
        "0755-1234567",
        "(555) 123-4567",
        "555-987-6543",
        "+44 20 7946 0958",
    ],
    "CN_ID": ["11010519491231002X", with_check_digit("44030519900307123")],
    "BANK_CARD": ["6222 0212 3456 7890 128", "4111111111111111", "5500-0000-0000-0004"],
    "IP": ["192.168.1.20", "2001:db8::8a2e:370:7334"],
}

MIXED = f"""Contact Li Wei at {PII["EMAIL"][0]} or 王芳 <{PII["EMAIL"][1]}>.
手机：{PII["PHONE"][0]}，备用 {PII["PHONE"][1]}，
办公室电话 {PII["PHONE"][2]}，深圳 {PII["PHONE"][3]}。
US office: {PII["PHONE"][4]} or {PII["PHONE"][5]}; London {PII["PHONE"][6]}.
身份证号：{PII["CN_ID"][0]}，另一位 {PII["CN_ID"][1]}
卡号 {PII["BANK_CARD"][0]} / Visa {PII["BANK_CARD"][1]} / MC {PII["BANK_CARD"][2]}
Server {PII["IP"][0]} and {PII["IP"][1]} logged in.
"""

RECEIPT = """SUPERMARKET 超市  2026-11-27 14:32:05
Milk 2 x 3.60 = 7.20
Bread 12.50   Total 合计: ¥19.70   Cash 50.00  Change 30.30
Items: 3  Table 12  Receipt No. 000123  Open 08:00-22:00
Notice: the meeting is on 2026.11.27 at 10:30, room 301, floor 5. 版本 v1.2.3.4
通知：第2026-11-27期活动于 2026/11/27 07:30 开始，人数 1,234,567，比例 3.1415926535。
"""


def test_mixed_text_has_no_pii_left_and_typed_placeholders() -> None:
    result = anonymize(MIXED)
    for kind, values in PII.items():
        for value in values:
            assert value not in result.text, (kind, value)
    assert result.counts == {"EMAIL": 2, "PHONE": 7, "CN_ID": 2, "BANK_CARD": 3, "IP": 2}
    for placeholder in ("[EMAIL_2]", "[PHONE_7]", "[CN_ID_2]", "[BANK_CARD_3]", "[IP_2]"):
        assert placeholder in result.text
    # The words around the values survive.
    assert "手机：[PHONE_1]，备用 [PHONE_2]" in result.text
    assert "身份证号：[CN_ID_1]" in result.text
    assert "Server [IP_1] and [IP_2] logged in." in result.text


def test_replacements_point_at_the_original_spans() -> None:
    result = anonymize(MIXED)
    spans = {(r.kind, MIXED[r.start : r.end]) for r in result.replacements}
    expected = {(kind, value) for kind, values in PII.items() for value in values}
    assert spans == expected


def test_result_never_shows_the_originals() -> None:
    result = anonymize(MIXED)
    shown = repr(result) + str(result) + repr(result.replacements)
    for values in PII.values():
        for value in values:
            assert value not in shown
    assert isinstance(result, AnonymizedText)


def test_same_value_gets_the_same_placeholder() -> None:
    text = (
        "Call 13800138000, +86 138-0013-8000 or 0086 13800138000; A@X.com and a@x.com; 13900001111"
    )
    result = anonymize(text)
    assert result.text == (
        "Call [PHONE_1], [PHONE_1] or [PHONE_1]; [EMAIL_1] and [EMAIL_1]; [PHONE_2]"
    )


def test_checksum_invalid_ids_and_luhn_invalid_cards_are_untouched() -> None:
    good_id = PII["CN_ID"][0]
    bad_check = good_id[:-1] + "1"
    bad_date = with_check_digit("11010519491331002")  # month 13, checksum right
    bad_region = with_check_digit("10010519491231002")
    text = (
        f"ID {bad_check} / {bad_date} / {bad_region}; card 4111 1111 1111 1112, 6222021234567890127"
    )
    assert not valid_cn_id(bad_check) and not valid_cn_id(bad_date)
    assert valid_cn_id(good_id) and valid_cn_id(good_id.lower())
    assert not luhn_valid("4111111111111112") and luhn_valid("4111111111111111")
    assert anonymize(text).text == text


def test_ordinary_receipt_and_notice_text_is_untouched() -> None:
    result = anonymize(RECEIPT)
    assert result.text == RECEIPT
    assert result.replacements == ()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("邮箱:li@example.cn。", "邮箱:[EMAIL_1]。"),
        ("tel:(010) 8765 4321", "tel:[PHONE_1]"),
        ("IP 10.0.0.1.", "IP [IP_1]."),
        ("bad ip 300.1.2.3 and 01.02.03.04", "bad ip 300.1.2.3 and 01.02.03.04"),
        ("C++ std::vector at 12:30:45, MAC 00:1A:2B:3C:4D:5E", None),
        ("+1 (555) 123-4567", "[PHONE_1]"),
    ],
)
def test_edge_cases(text: str, expected: str | None) -> None:
    assert anonymize(text).text == (text if expected is None else expected)


def test_messages_share_placeholders_and_keep_images() -> None:
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
    messages = [
        {"role": "system", "content": "Describe the image."},
        {
            "role": "user",
            "content": [{"type": "text", "text": "OCR: mail li@example.cn, 13800138000"}, image],
        },
        {"role": "user", "content": "Who is li@example.cn? Not bob@example.cn."},
    ]
    before = copy.deepcopy(messages)
    out = anonymize_messages(messages)
    assert messages == before  # not modified in place
    assert out[0] == messages[0]
    assert out[1]["content"][0] == {"type": "text", "text": "OCR: mail [EMAIL_1], [PHONE_1]"}
    assert out[1]["content"][1] == image
    assert out[2] == {"role": "user", "content": "Who is [EMAIL_1]? Not [EMAIL_2]."}


def test_flag_reads_narrate_anonymize(monkeypatch: pytest.MonkeyPatch) -> None:
    assert PrivacySettings().anonymize is False
    monkeypatch.setenv("NARRATE_ANONYMIZE", "1")
    assert PrivacySettings().anonymize is True
