"""What the gap mining tests share: a keyword encoder that stands in for a model, and topics
of questions it clusters as known in advance.

Texts that share a topic keyword are near each other (cosine about 0.9), texts without a
shared keyword are far apart.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np

KEYWORDS = (
    "亲属卡", "发票", "乘车码", "登录", "充值", "退款", "费用", "安全",
    "天气", "股票", "笑话", "电影", "翻译", "签证", "菜谱", "快递", "足球", "感冒",
)  # fmt: skip


class KeywordEncoder:
    """A unit vector per text: one dimension per topic keyword it contains, plus hashed
    character bigrams at a small weight (so paraphrases differ a little)."""

    def __init__(self, dim: int = 64) -> None:
        self._dim = dim

    name = "keyword-test"
    fingerprint = "keyword-test-64"

    @property
    def dim(self) -> int:
        return self._dim

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        free = self._dim - len(KEYWORDS)
        for row, text in enumerate(texts):
            topic = np.zeros(self._dim, dtype=np.float32)
            for k, word in enumerate(KEYWORDS):
                if word in text:
                    topic[k] = 1.0
            grams = np.zeros(self._dim, dtype=np.float32)
            for i in range(len(text) - 1):
                grams[len(KEYWORDS) + zlib.crc32(text[i : i + 2].encode()) % free] += 1.0
            for part in (topic, grams):
                norm = np.linalg.norm(part)
                if norm:
                    part /= norm
            out[row] = topic + 0.35 * grams
        return out

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts)

    def encode_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts)


FAMILY_CARD = (
    "亲属卡怎么开通",
    "给爸妈开亲属卡",
    "亲属卡额度怎么改",
    "亲属卡能给孩子用吗",
    "开了亲属卡对方要同意吗",
)  # five: leaf selection could split six or more phrasings into two clusters of three
LOGIN_WORDS = ("手机登录一直失败", "登录不了怎么搞", "为啥登录失败", "登录老是转圈")
INVOICES = ("电子发票怎么开", "发票在哪下载", "发票抬头怎么填", "发票开错了")
BACKGROUND = (
    "明天天气怎么样",
    "股票会涨吗",
    "讲个笑话",
    "推荐一部电影",
    "帮我翻译一句英文",
    "去泰国要签证吗",
    "红烧肉菜谱",
    "快递一直不到",
    "昨晚足球谁赢了",
    "感冒吃什么药",
)
