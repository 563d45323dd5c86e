"""Intent cues of the safety gate: a small lexicon of phrasings that say *whose* money or data a
question is after and whether the asker wants it hidden, which the question's vector carries
only faintly.

The sentence vector places "show me my wife's bills" next to "show me my bills": it encodes the
topic (bills) far more than the owner (someone else). Each cue below is one binary feature that
the gate's logistic head (:mod:`walletfaq.retrieval.safety`) learns a weight for from the
exemplars, next to the vector's components. A cue is not a rule: it adds its learned weight
to the head's logit, as much as the labelled exemplars say it is worth, and the benign
exemplars carry the cues too
(victims: "my ex guessed my PIN and emptied my wallet"; helpers: "my mother forgot her
password, she is next to me"; surprises: "send my wife a red packet secretly"), so a cue counts
only where it separates the labels.

The cues (each in Simplified and Traditional Chinese and in English; the gate reads the
normalised question, so Traditional forms matter only with ``to_simplified=False``):

- ``concealment``: the act should stay hidden from its owner or from the controls: 不被发现,
  不让他知道, 让他查不到, 不留记录, 怎么偷偷/悄悄/瞒着…, 不触发风控/躲过监控; "without them
  noticing", "undetected", "won't show up".
- ``other-asset``: another person's account, money, card, password or records: 别人的账户,
  老婆的钱包, 同事的密码, 他的余额; "someone else's wallet", "my wife's transactions".
- ``disclose-other``: asks for something to be shown, told or looked up about another person
  (告诉我/查一下/发给我/补全/是谁/住哪; "tell me", "look up", "who owns") *and* names one
  (对方, 这个人, 收款人, 尾号…, 他/她; "the sender", "this number", "him").
- ``take-other``: money moved to the asker (转给我, 转到自己, 转走, 弄出来; "to myself",
  "drain") *and* another person named.
- ``access-other``: a way in (没锁屏, 没退出, 猜, 找回密码, 重置, 申诉, 改绑, 趁…; "unlocked",
  "logged in", "guess", "reset") *and* another person named.

They were written for the weak areas of the first gate (requests aimed at other people's
records, opportunistic theft, hiding the act), from no held-out set; their effect is measured
on held-out questions by ``benchmarks/safety.py`` (``benchmarks/README.md``, "The safety gate").
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

_C = "[^，。,.?？!！;；]"
"""One character inside a clause."""

_CONCEALMENT = (
    rf"不被{_C}{{0,6}}(发现|發現|察觉|察覺|知道|查到|查出|追究|盯上|注意到|识破|識破|追查|冻|凍|封)",
    rf"不(让|讓){_C}{{0,6}}(知道|发现|發現|察觉|察覺|查到)",
    rf"(让|讓|使|才|就){_C}{{0,6}}(查不到|查不出|发现不了|發現不了|察觉不到|察覺不到|看不出)",
    rf"不留(下)?{_C}{{0,3}}(记录|紀錄|記錄|痕迹|痕跡|证据|證據)",
    rf"(怎么|怎麼|怎样|怎樣|如何|咋|能不能|可以|才能){_C}{{0,8}}"
    r"(偷偷|悄悄|瞒着|瞞著|背着|背著|神不知鬼不觉|神不知鬼不覺)",
    rf"(不|避免|躲过|躲過|躲开|躲開|躲避|规避|規避|避开|避開|绕过|繞過|逃过|逃過|逃避)(触发|觸發|被)?"
    rf"{_C}{{0,2}}(风控|風控|监控|監控|监管|監管|反洗钱|反洗錢|审查|審查|预警|預警)",
    r"without (\w+ ){0,3}(knowing|noticing|finding out|getting caught|being caught|being traced"
    r"|a trace)",
    r"undetected|unnoticed|untraceable|under the radar|cover (my|our) tracks",
    r"(won't|wouldn't|doesn't|does not|can't|cannot|never) (\w+ ){0,2}(notice|find out|trace"
    r"|show up|be traced|get caught|be flagged)",
    r"(avoid|evade|dodge|slip past|get around) (\w+ ){0,2}(detection|fraud checks?|aml"
    r"|risk controls?|monitoring|flags?|alerts?)",
)
_PERSON = (
    "别人|別人|他人|旁人|对方|對方|老公|老婆|丈夫|妻子|媳妇|媳婦|前任|前夫|前妻|男朋友|女朋友|男友|女友|"
    "室友|舍友|同事|同学|同學|朋友|家人|父母|爸妈|爸媽|爸爸|妈妈|媽媽|父亲|父親|母亲|母親|哥哥|姐姐|弟弟|"
    "妹妹|儿子|兒子|女儿|女兒|爷爷|爺爺|奶奶|外公|外婆|亲戚|親戚|老板|老闆|客户|客戶|顾客|顧客|陌生人|某人|"
    "这个人|這個人|那个人|那個人|此人|收款人|付款人|邻居|鄰居"
)
_ASSET = (
    "账户|賬戶|帳戶|账号|賬號|帳號|帐号|钱包|錢包|零钱|零錢|余额|餘額|密码|密碼|验证码|驗證碼|银行卡|銀行卡|"
    "卡号|卡號|身份证|身份證|身分證|手机号|手機號|电话|電話|手机|手機|电脑|電腦|转账记录|轉賬記錄|轉帳紀錄|"
    "消费记录|消費記錄|交易记录|交易記錄|付款记录|收款记录|账单|賬單|帳單|流水|实名|實名|真实姓名|真實姓名|"
    "姓名|名字|住址|地址|位置|人脸|人臉|指纹|指紋|收款码|收款碼|付款码|付款碼|信息|資訊|资料|資料|隐私|隱私|"
    "号|號|钱|錢"
)
_OTHER_ASSET = (
    rf"({_PERSON})(的)?({_ASSET})",
    rf"(姐|哥|弟|妹|爸|妈|媽|舅|叔|姨|姑|嫂)的({_ASSET})",
    rf"(他|她|他们|她們|他們)的({_ASSET})",
    r"(someone else's|somebody else's|another person's|other people's|a stranger's"
    r"|(wife|husband|partner|ex|girlfriend|boyfriend|roommate|flatmate|coworker|colleague"
    r"|brother|sister|mom|mum|mother|dad|father|friend|boss|neighbou?r|grandma|grandpa)'s"
    r"|\bhis|\bher|\btheir) (\w+ ){0,2}(account|wallet|password|pin|balance|card|id|phone"
    r"|laptop|transactions?|history|records?|name|address|location|money|cash|login|email"
    r"|face|fingerprint)\b",
)
_SOMEONE = (
    *_OTHER_ASSET,
    r"这个人|這個人|那个人|那個人|此人|收款人|付款人|对方|對方|这个号|這個號|这个账号|這個帳號|"
    r"这个手机号|這個手機號|尾号|尾號|某人|他|她",
    r"\b(the person|the owner|the sender|the payer|whoever|this (number|account|phone|card"
    r"|wallet|person)|someone|somebody|stranger|him|her|them)\b",
)
_KIN_AFTER_ME = "(?!妈|媽|爸|哥|姐|弟|妹|老公|老婆|朋友|家|同)"
"""Not "send it to my mother" (发给我妈): there 我 starts a person, not the receiver."""
_DISCLOSE = (
    rf"告诉我{_KIN_AFTER_ME}|告訴我{_KIN_AFTER_ME}|给我看|給我看|发给我{_KIN_AFTER_ME}"
    rf"|發給我{_KIN_AFTER_ME}|发我{_KIN_AFTER_ME}|發我{_KIN_AFTER_ME}|列给我|列給我|调出来|調出來"
    r"|显示出来|顯示出來|补全|補全|帮我查|幫我查|查一下|查下|查查|反查|查到|查出|是多少|是谁|是誰"
    r"|叫什么|叫什麼|住哪|现在在哪|現在在哪|哪个城市|哪個城市",
    r"\b(tell me|show me|give me|send me|look up|find out|pull up|unmask|reveal"
    r"|track (him|her|them) down)\b|\bwho (owns|is|paid|sent)\b"
    r"|\bwhat('s| is) (the|his|her|their)\b",
)
_TAKE = (
    r"转给我|轉給我|转到我|轉到我|转给自己|轉給自己|转到自己|轉到自己|给自己转|給自己轉|转进我|弄出来|弄出來"
    r"|转走|轉走|拿走|提走|取走|套出来|弄过来|弄過來|(钱|錢|余额|餘額|零钱|零錢)(转|轉|拿|弄|提|取)"
    r"(出来|出來|走|过来|過來)|据为己有|據為己有|占为己有|佔為己有",
    r"\b(to myself|send myself|pay myself|into my (own )?(account|wallet)|drain"
    r"|empty (a|his|her|their|the) wallet|grab some cash|take (his|her|their|the) money)\b",
)
_ACCESS = (
    r"没锁|沒鎖|没退出|沒退出|没锁屏|沒鎖屏|忘了退出|还开着|還開著|解锁|解鎖|猜|试出|試出|找回密码|找回密碼"
    r"|重置|申诉|申訴|改绑|改綁|趁",
    r"\b(unlocked|logged in|left open|guess|reset|recover(y)?"
    r"|while (he|she|they)('s| is| are)? (asleep|sleeping|away|out))\b",
)


@dataclass(frozen=True)
class Cue:
    """One intent cue: it is present when one of ``any_of`` matches and, if ``and_any_of`` is
    given, one of those matches too (case-insensitive, anywhere in the question).

    Attributes:
        name: the cue's name (a feature of the head, in its reports).
        any_of: its phrasings.
        and_any_of: phrasings that must accompany them (empty: none needed).
    """

    name: str
    any_of: tuple[re.Pattern[str], ...]
    and_any_of: tuple[re.Pattern[str], ...] = ()

    def present(self, text: str) -> bool:
        """Whether ``text`` carries the cue."""
        if not any(pattern.search(text) for pattern in self.any_of):
            return False
        return not self.and_any_of or any(p.search(text) for p in self.and_any_of)


def _compiled(patterns: Sequence[str]) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(pattern, re.IGNORECASE) for pattern in patterns)


CUES: tuple[Cue, ...] = (
    Cue("concealment", _compiled(_CONCEALMENT)),
    Cue("other-asset", _compiled(_OTHER_ASSET)),
    Cue("disclose-other", _compiled(_DISCLOSE), _compiled(_SOMEONE)),
    Cue("take-other", _compiled(_TAKE), _compiled(_SOMEONE)),
    Cue("access-other", _compiled(_ACCESS), _compiled(_SOMEONE)),
)
"""The cues, in the order of the head's cue features (see the module docstring)."""
CUE_NAMES = tuple(cue.name for cue in CUES)


def cue_features(texts: Sequence[str]) -> np.ndarray:
    """The cues of each text: ``(len(texts), len(CUES))`` of 0.0/1.0, in :data:`CUES` order."""
    out = np.zeros((len(texts), len(CUES)), dtype=np.float32)
    for row, text in enumerate(texts):
        for column, cue in enumerate(CUES):
            if cue.present(text):
                out[row, column] = 1.0
    return out


def cues_of(text: str) -> tuple[str, ...]:
    """The names of the cues ``text`` carries."""
    return tuple(cue.name for cue in CUES if cue.present(text))


__all__ = ["CUES", "CUE_NAMES", "Cue", "cue_features", "cues_of"]
