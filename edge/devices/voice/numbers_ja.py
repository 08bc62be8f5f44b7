"""Japanese readings of ticket numbers in hiragana.

Why kana and not digits or kanji: espeak-ng's Japanese voice reads kana only (kanji come out as
"Chinese letter"), and a reading we build ourselves gets the sound changes right that engines
often miss: さんびゃく, ろっぴゃく, はっぴゃく, さんぜん, はっせん.
"""

from __future__ import annotations

import re

MAX = 99_999

ONES = ("", "いち", "に", "さん", "よん", "ご", "ろく", "なな", "はち", "きゅう")
TENS = ("", "じゅう", "にじゅう", "さんじゅう", "よんじゅう", "ごじゅう", "ろくじゅう",
        "ななじゅう", "はちじゅう", "きゅうじゅう")
HUNDREDS = ("", "ひゃく", "にひゃく", "さんびゃく", "よんひゃく", "ごひゃく", "ろっぴゃく",
            "ななひゃく", "はっぴゃく", "きゅうひゃく")
THOUSANDS = ("", "せん", "にせん", "さんぜん", "よんせん", "ごせん", "ろくせん", "ななせん",
             "はっせん", "きゅうせん")
TEN_THOUSANDS = ("", "いちまん", "にまん", "さんまん", "よんまん", "ごまん", "ろくまん", "ななまん",
                 "はちまん", "きゅうまん")

# Digit by digit, the short readings are lengthened as on the phone (にい, ごお) so that a
# one-mora digit is not lost in a noisy hall.
DIGITS = ("ぜろ", "いち", "にい", "さん", "よん", "ごお", "ろく", "なな", "はち", "きゅう")


def reading(n: int) -> str:
    """``123 -> ひゃくにじゅうさん``; 0 to 99999."""
    if not 0 <= n <= MAX:
        raise ValueError(f"number out of range 0..{MAX}: {n}")
    if n == 0:
        return "ぜろ"
    man, rest = divmod(n, 10_000)
    sen, rest = divmod(rest, 1000)
    hyaku, rest = divmod(rest, 100)
    ju, ichi = divmod(rest, 10)
    return TEN_THOUSANDS[man] + THOUSANDS[sen] + HUNDREDS[hyaku] + TENS[ju] + ONES[ichi]


def digits_reading(n: int, sep: str = "、") -> str:
    """``123 -> いち、にい、さん``: for sites that call numbers digit by digit."""
    if n < 0:
        raise ValueError(f"negative number: {n}")
    return sep.join(DIGITS[int(d)] for d in str(n))


# Words that counter and service names are made of, for engines that cannot read kanji. A site
# whose names are not covered gives a kana reading under the key "ja-Hira".
KANJI_WORDS: dict[str, str] = {
    "国民健康保険": "こくみんけんこうほけん", "住民票": "じゅうみんひょう",
    "印鑑登録": "いんかんとうろく", "証明書": "しょうめいしょ", "子育て": "こそだて",
    "窓口": "まどぐち", "受付": "うけつけ", "番": "ばん", "号": "ごう", "階": "かい",
    "会計": "かいけい", "相談": "そうだん", "戸籍": "こせき", "住民": "じゅうみん",
    "異動": "いどう", "転入": "てんにゅう", "転出": "てんしゅつ", "転居": "てんきょ",
    "届出": "とどけで", "届": "とどけ", "証明": "しょうめい", "税": "ぜい", "保険": "ほけん",
    "年金": "ねんきん", "福祉": "ふくし", "介護": "かいご", "支援": "しえん", "手続": "てつづき",
    "手続き": "てつづき", "処理": "しょり", "室": "しつ", "係": "かかり", "課": "か", "第": "だい",
    "本庁": "ほんちょう", "出張所": "しゅっちょうじょ",
}
_KANJI_KEYS = sorted(KANJI_WORDS, key=len, reverse=True)
_WORD = re.compile("|".join(map(re.escape, _KANJI_KEYS)) + r"|[0-9０-９]+")
KANJI = re.compile(r"[\u3400-\u9fff\uf900-\ufaff々]")


def to_kana(text: str) -> tuple[str, str]:
    """Known kanji words and digits to kana; returns (text, kanji that are left unread).

    Counter numbers become readings (``1番窓口 -> いちばんまどぐち``). Leftover kanji are
    reported, not guessed: a wrong reading sends a visitor to the wrong counter.
    """
    def sub(m: re.Match[str]) -> str:
        word = m.group()
        if word in KANJI_WORDS:
            return KANJI_WORDS[word]
        value = int(word.translate(_FULLWIDTH))
        return reading(value) if value <= MAX else digits_reading(value, "")

    out = _WORD.sub(sub, text)
    return out, "".join(KANJI.findall(out))


_FULLWIDTH = str.maketrans("０１２３４５６７８９", "0123456789")
