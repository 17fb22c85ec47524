# ruff: noqa: RUF001, RUF002, RUF003 -- this module is about the look-alike quotes, dashes and letters
"""Whether a labels CSV that is not UTF-8 reads as Windows-1252 text, and if not, which encoding it likely is.

Excel saves "CSV" in the computer's legacy code page: Windows-1252 in Western Europe and the Americas, but Shift-JIS
in Japan, GBK in China, Big5 in Taiwan and Hong Kong, EUC-KR in Korea, Windows-1251 in Russia. Almost any bytes
decode as Windows-1252, so decoding proves nothing: the text must also read as Western words. It does not when a
word (a run of letters, digits and non-ASCII characters) has
- three non-ASCII characters in a row, unless one repeated (Estonian "jäääär" has four);
- two different non-ASCII characters and no ASCII letter: Cyrillic and Hangul words, most Chinese ones ("ËÏÛËÁ",
  "°í¾çÀÌ", "Ã¨");
- only pairs of a character from bytes 0x80-0x9F and an ASCII letter ("ŽR": Shift-JIS's 山);
- an uppercase non-ASCII letter right after a lowercase letter ("“dŽÔ": Shift-JIS's 電車);
- a symbol where Western text never puts one ("”L": Shift-JIS's 猫). A symbol may touch a digit (no double-byte
  encoding has a digit as its second byte); an opening mark (¿ ¡ « » ‹ “ ‘ „ ‚ … ° µ © §) may start a word, a
  closing one (» « › ” “ ’ ‘ … ™ ® © ° ² ³ ¹ ª º € £ ¢ ‰ † ‡ ¼ ½ ¾) end it, and ’ · – — × join two letters;
- or it opens with « » ‹ “ „ and the file never has the matching closing mark ("«B": Big5's 雨).
Western text that trips these is rare (a bullet glued to a word: "•item"); it is refused with the word quoted.

The likely encoding is the one whose strict decoding is made most of that language's common characters: kana and
level-1 kanji (Shift-JIS), level-1 hanzi (GBK, Big5), KS X 1001 Hangul (EUC-KR), Russian's most frequent letters in
words of one case shape (Windows-1251, KOI8-R). A few words that two languages' encodings read about as well name
both (every Hangul syllable's two bytes are also a common GBK hanzi); a file of some length names the best one.
"""

from __future__ import annotations

import re

_WORD = re.compile(r"[0-9A-Za-z\x80-\x9f\xa1-\uffff]+")
_HIGH_RUN = re.compile(r"[^\x00-\x7f]{3,}")
_ASCII_LETTER = re.compile(r"[A-Za-z]")
_PLAIN = re.compile(r"[0-9\xdf-\xf6\xf8-\xff]*[A-Za-z][0-9A-Za-z\xdf-\xf6\xf8-\xff]*")
# ‚ ƒ „ … † ‡ ˆ ‰ Š ‹ Œ Ž ‘ ’ “ ” • – — ˜ ™ š › œ ž Ÿ: Windows-1252's reading of the lead bytes of most Shift-JIS kanji
_C1 = frozenset(bytes(range(0x81, 0xA0)).decode("cp1252", errors="ignore"))
_NOT_LETTERS = frozenset("ªºµƒ")
_OPENING = frozenset("¿¡«»‹“‘„‚…°µ©§")
_CLOSING = frozenset("»«›”“’‘…™®©°²³¹ªº€£¢‰†‡¼½¾")
_JOINING = frozenset("’·–—×")
_CLOSED_BY = {"«": "»", "»": "«", "‹": "›", "“": "”„", "„": "“”"}


def _letter(char: str | None) -> bool:
    return char is not None and char.isalpha() and char not in _NOT_LETTERS


def _odd_word(word: str, opened: set[str]) -> bool:
    """True when `word` (read as Windows-1252) is no Western word; the opening marks it starts with go in `opened`."""
    if any(len(set(run)) > 1 for run in _HIGH_RUN.findall(word)):
        return True
    if _PLAIN.fullmatch(word):  # the usual one, quickly: ASCII and lower-case accented letters ("façade2")
        return False
    if not _ASCII_LETTER.search(word):  # one mark or letter, maybe repeated or with digits: "–", "à", "€€€", "25°"
        return len({c for c in word if not c.isascii()}) > 1
    if (
        word[0] in _C1
        and len(word) % 2 == 0
        and all(word[i] in _C1 and word[i + 1].isascii() and word[i + 1].isalpha() for i in range(0, len(word), 2))
    ):
        return True
    for i, char in enumerate(word):
        if char.isascii():
            continue
        before, after = (word[i - 1] if i else None), (word[i + 1] if i + 1 < len(word) else None)
        if _letter(char):
            if char.isupper() and before is not None and before.islower():
                return True
            continue
        if (before or "").isdigit() or (after or "").isdigit():
            continue
        if char in _OPENING and not _letter(before):
            if _letter(after) and char in _CLOSED_BY:
                opened.add(char)
            continue
        if (char in _CLOSING and not _letter(after)) or (char in _JOINING and _letter(before) and _letter(after)):
            continue
        return True
    return False


def cp1252_odd_word(text: str) -> str | None:
    """The first word of `text`, Windows-1252 read, that is no Western word (see the module docstring), or None."""
    opened: set[str] = set()
    first_opened: dict[str, str] = {}
    seen: set[str] = set()  # a CSV names its few classes on many rows
    for word in _WORD.findall(text.replace("\xa0", " ")):
        if word.isascii() or word in seen:
            continue
        seen.add(word)
        before = set(opened)
        if _odd_word(word, opened):
            return word
        for mark in opened - before:
            first_opened.setdefault(mark, word)
    for mark, word in first_opened.items():
        if not any(closing in text for closing in _CLOSED_BY[mark]):
            return word
    return None


def _code(char: str, codec: str) -> int:
    return int.from_bytes(char.encode(codec), "big")


def _cjk(char: str) -> bool:
    return "\u3040" <= char <= "\u30ff" or "\u4e00" <= char <= "\u9fff" or "\uac00" <= char <= "\ud7a3"


_RUSSIAN_COMMON = frozenset("оеаинтсрвлкмдпу")

# codec, how the refusal names it, the common characters of its language (1 each; a rarer one of its script 1/2), in
# the order a tie names them: Korean text is all KS X 1001 Hangul, which GBK and Big5 also read as common hanzi.
_GUESSES = (
    ("cp932", "Shift-JIS (Japanese Excel)",
     lambda c: 0x829F <= _code(c, "cp932") <= 0x82F1 or 0x8340 <= _code(c, "cp932") <= 0x8396
     or 0x889F <= _code(c, "cp932") <= 0x9872),
    ("cp949", "EUC-KR (Korean Excel)", lambda c: 0xB0A1 <= _code(c, "cp949") <= 0xC8FE),
    ("cp1251", "Windows-1251 (Cyrillic Excel)", lambda c: c.lower() in _RUSSIAN_COMMON),
    ("koi8_r", "KOI8-R (Cyrillic)", lambda c: c.lower() in _RUSSIAN_COMMON),
    ("gbk", "GBK (Chinese Excel)", lambda c: 0xB0A1 <= _code(c, "gbk") <= 0xD7F9),
    ("cp950", "Big5 (Traditional Chinese Excel)", lambda c: 0xA440 <= _code(c, "cp950") <= 0xC67E),
)  # fmt: skip


_CYRILLIC_WORD = re.compile(r"[A-Za-z\u0400-\u04ff]*[\u0400-\u04ff][A-Za-z\u0400-\u04ff]*")
_FAMILY = {"cp1251": "ru", "koi8_r": "ru"}  # one language: name the better reading only
_RUSSIAN = frozenset("абвгдеёжзийклмнопрстуфхцчшщъыьэюя")


def _reads_as(text: str, common) -> float:
    """How much of `text`'s non-ASCII is its language's: a common character 1, another of its script 1/2, anything
    else 0. A Cyrillic word counts only in lower case, upper case or capitalized, without Latin letters (a wrong
    reading mixes them: "лПЫЛБ"), and there a Russian letter that is not common counts 3/4."""
    total = score = 0.0
    for char in text:
        if not char.isascii():
            total += 1
            score += (1 if common(char) else 0.5) if _cjk(char) else 0
    for match in _CYRILLIC_WORD.finditer(text):
        word = match.group()
        if not any(c.isascii() for c in word) and (word.islower() or word.isupper() or word.istitle()):
            score += sum(1 if common(c) else 0.75 if c.lower() in _RUSSIAN else 0.5 for c in word)
    return score / total if total else 0.0


def likely_encoding(data: bytes) -> str | None:
    """What the refusal calls the encoding `data` most likely is ("Shift-JIS (Japanese Excel)"), or None. A short text
    that another language's encoding reads about as well names both ("EUC-KR (Korean Excel) or GBK (Chinese Excel)")."""
    scores = []
    if len(data) > 1 << 16:  # its first 64 KiB of lines tell as well as all of it
        data = data[: data.rfind(b"\n", 0, 1 << 16) + 1 or 1 << 16]
    for codec, name, common in _GUESSES:
        try:
            text = data.decode(codec)
        except UnicodeDecodeError:
            continue
        scores.append((_reads_as(text, common), codec, name))
    if not scores or max(scores)[0] < 0.6:
        return None
    best = max(score for score, _, _ in scores)
    # the best reading first (on a tie, the table's order); a few words read as two languages name both: a short
    # Chinese text is all KS X 1001 Hangul about as often as not, a longer one never is
    named = sorted(((-score, codec, name) for score, codec, name in scores if score >= best - 0.1), key=lambda n: n[0])
    (_, first_codec, first), short = named[0], sum(byte > 0x7F for byte in data) < 16
    also = [name for _, codec, name in named[1:] if _FAMILY.get(codec, codec) != _FAMILY.get(first_codec, first_codec)]
    return f"{first} or {also[0]}" if short and also else first
