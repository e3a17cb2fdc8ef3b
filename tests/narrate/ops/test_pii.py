"""Tests for narrate.ops.pii: typed placeholders, checksums, no false positives on receipts.

Phone numbers go through libphonenumber (``phonenumbers``), ID and card checksums through
python-stdnum; the check digits below are computed here, independently of both.
"""

from __future__ import annotations

import copy
import random

import pytest

from narrate.config.settings import PrivacySettings
from narrate.ops.pii import (
    AnonymizedText,
    Anonymizer,
    anonymize,
    anonymize_messages,
    luhn_valid,
    plausible_card_number,
    valid_cn_id,
)

_ID_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]  # GB 11643


def with_check_digit(first17: str) -> str:
    """An ID number completed with its MOD 11-2 check digit (independent of the module)."""
    total = sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS, strict=True))
    return first17 + "10X98765432"[total % 11]


def with_luhn_digit(body: str) -> str:
    """``body`` completed with its Luhn check digit (independent of the module)."""
    total = 0
    for i, char in enumerate(reversed(body)):
        d = int(char) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return body + str(-total % 10)


# Every value here must disappear from the anonymised text.
PII = {
    "EMAIL": ["li.wei@example.com.cn", "wang.fang+work@mail.qq.com"],
    "PHONE": [
        "+86 138 0013 8000",
        "139-1234-5678",
        "010-12345678",
        "0755-8765 4321",
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
        ("+1 (415) 555-2671", "[PHONE_1]"),
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


# --- phone numbers as people write them (libphonenumber, default region CN) -------------


@pytest.mark.parametrize(
    "phone",
    [
        "+86 138 0013 8000",
        "010-6552 9988",
        "(021) 6234 5678",
        "+1 (415) 555-2671",
        "+44 20 7946 0958",
        "400-810-8888",
        "800-820-8820",
        "1380 013 8000",  # grouped as OCR or a hurried hand groups it
        "+86 13800 138000",
        "+86 (0)10 6552 9988",
        "0086-10-65529988",
        "00 44 20 7946 0958",
        "+852 2123 4567",
        "+886 2 2345 6789",
        "+33 1 42 68 53 00",
        "１３８００１３８０００",  # full-width digits, as in Chinese text
    ],
)
def test_phone_numbers_as_people_write_them(phone: str) -> None:
    text = f"联系电话：{phone}，谢谢。Call {phone} today."
    result = anonymize(text)
    assert result.text == "联系电话：[PHONE_1]，谢谢。Call [PHONE_1] today."
    assert [text[r.start : r.end] for r in result.replacements] == [phone, phone]


def test_one_number_written_many_ways_gets_one_placeholder() -> None:
    beijing = ["010-6552 9988", "+86 10 6552 9988", "(010) 65529988", "0086-10-65529988"]
    san_francisco = ["+1 (415) 555-2671", "+1 415.555.2671", "+14155552671", "001 415 555 2671"]
    text = " / ".join(beijing + san_francisco)
    expected = " / ".join(["[PHONE_1]"] * len(beijing) + ["[PHONE_2]"] * len(san_francisco))
    assert anonymize(text).text == expected


def test_restore_gives_back_what_was_written() -> None:
    anonymizer = Anonymizer()
    sent = anonymizer.anonymize("店铺电话 (021) 6234 5678，客服 400-810-8888").text
    assert sent == "店铺电话 [PHONE_1]，客服 [PHONE_2]"
    answer = "Call [PHONE_2] for service, or the shop on [PHONE_1]."
    assert anonymizer.restore(answer) == (
        "Call 400-810-8888 for service, or the shop on (021) 6234 5678."
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Shenzhen numbers have had 8 digits since 1996: 7 digits is not a number there.
        ("深圳 0755-1234567", "深圳 0755-1234567"),
        # Hefei (0551) likewise.
        ("合肥 05517654321", "合肥 05517654321"),
        # 555 is no North American area code, so "+1 (555)" is not a valid number; the
        # matcher then reads "(555) 123-4567" alone as a Chinese number (0555, Ma'anshan):
        # the digits are still hidden, "+1 " stays.
        ("+1 (555) 123-4567", "+1 [PHONE_1]"),
        # A local number without its area code is not recognisable as a phone number.
        ("电话：62345678", "电话：62345678"),
        # Glued to Latin letters: part of a code, not a phone number (libphonenumber VALID).
        ("SKU ABC13800138000X", "SKU ABC13800138000X"),
    ],
)
def test_numbers_outside_the_numbering_plan(text: str, expected: str) -> None:
    assert anonymize(text).text == expected


# --- dates, prices, times and order numbers stay ------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-30",
        "7.40",
        "12:30",
        "到期日 2026-11-30，单价 7.40 元，12:30 取餐",
        "20261130",
        "2026/11/30 12:30:45",
        "2026年11月30日 12:30-14:00",
        "¥1,299.00  $7.40  €12,30",
        "Total 1,234,567.89 at 12:30 on 30.11.2026",
        "第2026-11-30期, 版本 1.2.3.4.5, 比例 3.1415926535",
    ],
)
def test_dates_prices_and_times_are_untouched(text: str) -> None:
    result = anonymize(text)
    assert result.text == text
    assert result.replacements == ()


# Order numbers as Chinese shops and payment apps print them; each 13-19 digit one is
# completed with a Luhn check digit, so a Luhn-only rule would take every one for a card.
ORDER_NUMBERS = {
    "meituan": with_luhn_digit("202611301234567890"),  # 19 digits, date first
    "taobao": with_luhn_digit("352123456789012345"),  # 19 digits, 3521 is below JCB's 3528
    "jd": with_luhn_digit("31234567890"),  # 12 digits: too short for a card
    "didi": with_luhn_digit("808123456789012"),  # 16 digits, 80 belongs to no network
    "member": with_luhn_digit("880012345678901"),  # 16 digits, 88 belongs to no network
    "visa_like_18": with_luhn_digit("40012345678901234"),  # 18 digits: Visa issues 16 or 19
    "amex_like_16": with_luhn_digit("370012345678901"),  # 16 digits: Amex issues 15
    "visa_13": with_luhn_digit("400810888812"),  # 13-digit Visa numbers are no longer issued
}
ORDER_RECEIPT = f"""美团外卖 订单详情
订单号：{ORDER_NUMBERS["meituan"]}
下单时间：2026-11-30 12:30   送达 12:58
宫保鸡丁 x1  ¥28.00   米饭 x2  ¥7.40   配送费 ¥3.00   合计 ¥38.40
淘宝订单编号 {ORDER_NUMBERS["taobao"]}   京东订单 {ORDER_NUMBERS["jd"]}
滴滴行程单号 {ORDER_NUMBERS["didi"]}   会员卡号 {ORDER_NUMBERS["member"]}
Ref {ORDER_NUMBERS["visa_like_18"]} / {ORDER_NUMBERS["amex_like_16"]} / {ORDER_NUMBERS["visa_13"]}
支付宝交易号 2026113022001412345678901234   商户单号 4200001234202611301234
快递单号 SF1234567890123   发票代码 044001900111   有效期至 2026-11-30
客服电话 400-810-8888
"""


def test_order_numbers_on_a_receipt_are_not_cards() -> None:
    for name, number in ORDER_NUMBERS.items():
        assert luhn_valid(number), name  # the old Luhn-only rule would have replaced it
        assert not plausible_card_number(number), name
    result = anonymize(ORDER_RECEIPT)
    assert result.text == ORDER_RECEIPT.replace("400-810-8888", "[PHONE_1]")
    assert result.counts == {"PHONE": 1}


# Published test numbers of each network, plain and grouped as printed on the card.
CARDS = [
    "4111 1111 1111 1111",  # Visa
    "4000 0000 0000 0000 006",  # Visa, 19 digits
    "5500-0000-0000-0004",  # Mastercard
    "2223 0031 2200 3222",  # Mastercard 2-series
    "3782 822463 10005",  # American Express, grouped 4-6-5
    "6222 0212 3456 7890 128",  # UnionPay, 19 digits
    "6011111111111117",  # Discover
    "3530111333300000",  # JCB
    "30569309025904",  # Diners Club, 14 digits
]


def test_cards_of_every_network_are_replaced() -> None:
    text = "\n".join(f"卡号 {card} 有效期 12/29" for card in CARDS)
    result = anonymize(text)
    assert result.text == "\n".join(
        f"卡号 [BANK_CARD_{i}] 有效期 12/29" for i in range(1, len(CARDS) + 1)
    )
    assert [text[r.start : r.end] for r in result.replacements] == CARDS


def test_random_order_numbers_are_not_cards_but_random_cards_are() -> None:
    rng = random.Random(20261130)

    def digits(n: int) -> str:
        return "".join(rng.choice("0123456789") for _ in range(n))

    # Order numbers: a date, then a serial; every one Luhn-valid.
    orders = [
        with_luhn_digit(f"2026{rng.randint(1, 12):02d}" + digits(rng.randint(6, 12)))
        for _ in range(300)
    ]
    replaced = [o for o in orders if anonymize(f"订单号 {o}").replacements]
    assert replaced == []
    # Card numbers: a network prefix and one of its lengths, completed with the Luhn digit.
    shapes = [
        ("4", 16),
        ("4", 19),
        ("53", 16),
        ("2720", 16),
        ("37", 15),
        ("62", 19),
        ("62", 16),
        ("3566", 16),
    ]
    for prefix, length in shapes:
        for _ in range(20):
            card = with_luhn_digit(prefix + digits(length - len(prefix) - 1))
            assert anonymize(f"card {card}").text == "card [BANK_CARD_1]", card


# --- resident IDs: GB 11643-1999 through python-stdnum ------------------------------------


def test_resident_ids_of_districts_newer_than_their_holder() -> None:
    # Pudong New Area (310115) dates from 1992, Nanshan (440305) from 1990: people born
    # before hold these numbers. stdnum.cn.ric.is_valid ties the region to the birth year
    # and would let them through; they must be replaced.
    pudong = with_check_digit("31011519600101123")
    nanshan = with_check_digit("44030519700512002")
    hong_kong_permit = with_check_digit("81000019880808123")  # HK residents' permit (2018-)
    text = f"身份证 {pudong}、{nanshan}，居住证 {hong_kong_permit}"
    assert anonymize(text).text == "身份证 [CN_ID_1]、[CN_ID_2]，居住证 [CN_ID_3]"


def test_resident_ids_that_cannot_exist_stay() -> None:
    unborn = with_check_digit("11010520901231002")  # born in 2090
    no_such_region = with_check_digit("91000019900101123")
    no_such_county = with_check_digit("11999919900101123")
    text = f"No. {unborn} / {no_such_region} / {no_such_county}"
    assert not any(valid_cn_id(v) for v in (unborn, no_such_region, no_such_county))
    assert anonymize(text).text == text
