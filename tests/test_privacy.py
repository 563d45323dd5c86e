"""Personal details are masked before anything is stored: mobile, bank card and ID-card numbers
and e-mail addresses, in the ways Chinese users write them, and nothing else."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from walletfaq.data.privacy import (
    PLACEHOLDERS,
    detection_view,
    id_check_digit_ok,
    luhn_ok,
    mask_details,
    mask_personal,
)

MOBILE, CARD, ID, EMAIL, LONG = (
    PLACEHOLDERS[k] for k in ("mobile", "bank_card", "id_card", "email", "long_number")
)
FULL_WIDTH = str.maketrans("0123456789 ", "０１２３４５６７８９\u3000")


def full_width(text: str) -> str:
    return text.translate(FULL_WIDTH)


def id_number(body17: str) -> str:
    """An 18-character ID-card number with its right check character."""
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    total = sum(int(d) * w for d, w in zip(body17, weights, strict=True))
    return body17 + "10X98765432"[total % 11]


# --- mobile numbers ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "written",
    [
        "13812345678",
        "138 1234 5678",
        "138-1234-5678",
        "138 12345678",
        "1381234 5678",
        "+86 138 1234 5678",
        "+8613812345678",
        "(+86)13812345678",
        "0086-138-1234-5678",
        "8613812345678",
    ],
)
def test_a_mobile_number_in_any_usual_layout_is_masked(written: str) -> None:
    assert (
        mask_personal(f"我的手机号是{written}，收不到验证码")
        == f"我的手机号是{MOBILE}，收不到验证码"
    )


def test_a_mobile_number_in_full_width_digits_is_masked() -> None:
    assert mask_personal("手机１３８\u3000１２３４\u3000５６７８换号了") == f"手机{MOBILE}换号了"


def test_a_mobile_number_glued_to_chinese_text_is_masked() -> None:
    assert mask_personal("请打15912345678联系我") == f"请打{MOBILE}联系我"


def test_a_mobile_number_split_by_invisible_characters_is_masked() -> None:
    assert mask_personal("号码139\u200b8765\u200b4321") == f"号码{MOBILE}"


# --- bank card numbers -------------------------------------------------------------------


@pytest.mark.parametrize(
    "written",
    [
        "6222021234567890",  # 16 digits
        "6222 0212 3456 7890",
        "6222-0212-3456-7890-123",  # 19 digits in fours
        "6222021234567890123",
        "622202 1234567890123",  # 6 + 13, as some cards print it
    ],
)
def test_a_bank_card_number_in_any_usual_layout_is_masked(written: str) -> None:
    assert mask_personal(f"银行卡{written}绑定失败") == f"银行卡{CARD}绑定失败"


def test_a_bank_card_number_in_full_width_digits_is_masked() -> None:
    assert mask_personal(full_width("卡号 6217 0000 1234 5678 901 扣款失败")) == (
        full_width("卡号 ") + CARD + full_width(" 扣款失败")
    )


def test_a_mistyped_card_number_failing_the_luhn_check_is_still_masked() -> None:
    assert not luhn_ok("6222021234567891")
    assert mask_personal("卡号6222021234567891怎么解绑") == f"卡号{CARD}怎么解绑"


# --- ID-card numbers ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "written",
    [
        "11010519491231002X",
        "11010519491231002x",
        "110105 19491231 002X",
        "110105 1949 1231 002X",
        "440524188001010014",  # born 1880
        "110105491231002",  # the old 15-digit form
    ],
)
def test_an_id_card_number_in_any_usual_layout_is_masked(written: str) -> None:
    assert mask_personal(f"身份证号{written}实名认证不通过") == f"身份证号{ID}实名认证不通过"


def test_an_id_card_number_in_full_width_characters_is_masked() -> None:
    assert mask_personal("身份证１１０１０５１９４９１２３１００２Ｘ") == f"身份证{ID}"


def test_an_id_shaped_number_with_a_wrong_check_digit_but_a_valid_luhn_reads_as_a_card() -> None:
    number = next(
        f"11010519491231{n:04d}"
        for n in range(10_000)
        if luhn_ok(f"11010519491231{n:04d}") and not id_check_digit_ok(f"11010519491231{n:04d}")
    )
    assert mask_details(f"号码{number}").kinds == ("bank_card",)


def test_the_id_check_digit_and_luhn_checks_know_valid_numbers() -> None:
    assert id_check_digit_ok("11010519491231002X")
    assert not id_check_digit_ok("110105194912310021")
    assert luhn_ok("4111111111111111") and not luhn_ok("4111111111111112")


# --- e-mail addresses, long numbers, several details -------------------------------------


@pytest.mark.parametrize(
    "written", ["zhang.san@qq.com", "lisi_88@163.com", "a+b@mail.example.cn", "13812345678@139.com"]
)
def test_an_email_address_is_masked_whole(written: str) -> None:
    assert mask_personal(f"邮箱{written}收不到账单") == f"邮箱{EMAIL}收不到账单"


def test_a_full_width_email_address_is_masked() -> None:
    assert mask_personal("发到ｗａｎｇ＠ｑｑ．ｃｏｍ吧") == f"发到{EMAIL}吧"


def test_a_run_of_twenty_or_more_digits_is_masked_as_a_long_number() -> None:
    assert mask_personal("交易单号4200001234202405011234567890查不到") == f"交易单号{LONG}查不到"


def test_several_details_in_one_text_are_each_masked() -> None:
    text = (
        "我叫张三，身份证11010519491231002X，手机138-1234-5678，"
        "卡号6222 0212 3456 7890，邮箱zs@qq.com"
    )
    result = mask_details(text)
    assert result.text == f"我叫张三，身份证{ID}，手机{MOBILE}，卡号{CARD}，邮箱{EMAIL}"
    assert sorted(result.kinds) == ["bank_card", "email", "id_card", "mobile"]


def test_everything_around_a_detail_is_kept_as_written() -> None:
    text = "請問：我的手機１３８１２３４５６７８（舊號）　還能用嗎？！"
    assert mask_personal(text) == f"請問：我的手機{MOBILE}（舊號）　還能用嗎？！"


# --- what is not personal ----------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "充值100元没到账",
        "转账12,345.67元手续费多少",
        "2024-05-01的订单退款",
        "20240501那天扣了两次钱",
        "从2024-05-01 13:45到2024-05-31 09:00",
        "验证码6位，一直收不到",
        "验证码是123456，提示错误",
        "这个月交易了15笔，共3次失败",
        "拨打95188或400-820-8888",
        "座机010-12345678",
        "单笔限额50000元，每日20万",
        "订单号202405011234",
        "",
    ],
)
def test_amounts_dates_codes_counts_and_hotlines_are_left_alone(text: str) -> None:
    assert mask_personal(text) == text
    assert not mask_details(text).masked


def test_a_number_too_long_to_be_a_mobile_is_not_cut_into_one() -> None:
    assert mask_personal("编号138123456789") == "编号138123456789"  # 12 digits


def test_masking_takes_text_only() -> None:
    with pytest.raises(TypeError, match="takes text"):
        mask_personal(13812345678)  # type: ignore[arg-type]


def test_the_detection_view_maps_one_character_to_one() -> None:
    text = "１３８\u3000－ｘ＠．中"
    assert detection_view(text) == "138 -x@.中"


# --- generated (hypothesis) --------------------------------------------------------------

CJK = st.text(st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF), max_size=12)
DIGIT = st.sampled_from("0123456789")
SEP = st.sampled_from(["", " ", "-"])


def _digits(n: int) -> st.SearchStrategy[str]:
    return st.lists(DIGIT, min_size=n, max_size=n).map("".join)


@st.composite
def mobiles(draw: st.DrawFn) -> str:
    digits = "1" + draw(st.sampled_from("3456789")) + draw(_digits(9))
    sep = draw(SEP)
    prefix = draw(st.sampled_from(["", "+86", "+86 ", "86", "0086-", "(+86)"]))
    return prefix + digits[:3] + sep + digits[3:7] + sep + digits[7:]


@st.composite
def cards(draw: st.DrawFn) -> str:
    digits = draw(st.sampled_from("3456789")) + draw(_digits(draw(st.integers(15, 18))))
    sep = draw(SEP)
    return sep.join(digits[i : i + 4] for i in range(0, len(digits), 4))


@st.composite
def id_cards(draw: st.DrawFn) -> str:
    born = draw(st.dates(dt.date(1900, 1, 1), dt.date(2024, 12, 31)))
    region, sequence = draw(_digits(6)), draw(_digits(3))
    if draw(st.booleans()):  # the old 15-digit form
        return region + born.strftime("%y%m%d") + sequence
    number = id_number(region + born.strftime("%Y%m%d") + sequence)
    if draw(st.booleans()):
        number = number[:-1] + number[-1].lower()
    sep = draw(st.sampled_from(["", " "]))
    return number[:6] + sep + number[6:14] + sep + number[14:]


DETAILS = st.one_of(
    mobiles().map(lambda d: (d, {MOBILE})),
    cards().map(lambda d: (d, {CARD, ID})),  # 18 digits may read as an ID-card number
    id_cards().map(lambda d: (d, {ID, CARD})),  # a typo'd ID may read as a card
)


@settings(max_examples=300, deadline=None)
@given(before=CJK, after=CJK, detail=DETAILS, wide=st.booleans())
def test_a_generated_detail_in_chinese_text_is_masked_and_no_digit_survives(
    before: str, after: str, detail: tuple[str, set[str]], wide: bool
) -> None:
    written, placeholders = detail
    if wide:
        written = full_width(written)
    masked = mask_personal(before + written + after)
    assert masked.startswith(before) and masked.endswith(after)
    assert masked[len(before) : len(masked) - len(after)] in placeholders
    assert not any(c.isdigit() for c in masked)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(CJK, DETAILS), min_size=2, max_size=5))
def test_several_generated_details_are_all_masked(parts: list[tuple[str, tuple[str, set]]]) -> None:
    text = "".join(words + "，" + detail + "。" for words, (detail, _) in parts)
    masked = mask_details(text)
    assert not any(c.isdigit() for c in masked.text)
    assert len(masked.kinds) == len(parts)


NOISY = st.text(
    st.sampled_from(list("0123456789１３８ -+@.Xx（）中文号卡abc") + ["\u3000", "\u200b"]),
    max_size=60,
)


@settings(max_examples=400, deadline=None)
@given(NOISY)
def test_masking_is_idempotent(text: str) -> None:
    once = mask_personal(text)
    assert mask_personal(once) == once


@settings(max_examples=400, deadline=None)
@given(NOISY)
def test_masking_never_makes_a_text_longer(text: str) -> None:
    assert len(mask_personal(text)) <= len(text)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(CJK.filter(bool), st.integers(0, 10**10 - 1)), max_size=6))
def test_numbers_of_up_to_ten_digits_between_words_are_kept(
    parts: list[tuple[str, int]],
) -> None:
    text = "".join(f"{words}{number}" for words, number in parts)
    assert mask_personal(text) == text
