# ruff: noqa: RUF001, RUF002, RUF003 -- this module is about the look-alike quotes, dashes and letters
"""Whether a labels CSV that is not UTF-8 reads as Windows-1252 text, and if not, which encoding it likely is.

Excel saves "CSV" in the computer's legacy code page: Windows-1252 in Western Europe and the Americas, but Shift-JIS
in Japan, GBK in China, Big5 in Taiwan and Hong Kong, EUC-KR in Korea, Windows-1251 in Russia, Windows-1250 in Czechia,
Slovakia, Hungary, Poland and the Balkans. Almost any bytes decode as Windows-1252, so decoding proves nothing: the
text must also read as Western words. It does not when a word (a run of letters, digits and non-ASCII characters) has
- three non-ASCII characters in a row, unless one repeated (Estonian "jäääär" has four) or they are Icelandic letters
  with ð or þ in an Icelandic word ("blóðþrýstingur", "Þjóðólfsson");
- two different non-ASCII characters and no ASCII letter: Cyrillic and Hangul words, most Chinese ones ("ËÏÛËÁ",
  "°í¾çÀÌ", "Ã¨");
- accented letters of no one Western language (_LANGUAGES: French, German, Spanish, Portuguese, Italian,
  Danish/Norwegian, Swedish, Icelandic, Finnish/Estonian, Dutch, Catalan; German with French, whose loanwords its
  compounds take: "Straßencafé"), or a Spanish, Portuguese, Italian or Catalan stress marked twice: Windows-1250's
  "Dvořák" reads "Dvoøák" (Danish ø, Spanish á), "Příliš" "Pøíliš", "Árvíztűrő" "Árvíztûrõ", "Líšeň" "Líšeò",
  "černý" "èerný", "ďábel" "ïábel", "kůň" "kùò", "Trenčín" "Trenèín";
- an œ before other than c d e i l n s t u, or last (Polish ś: "œwinia", "gêœ");
- only pairs of a character from bytes 0x80-0x9F and an ASCII letter ("ŽR": Shift-JIS's 山);
- an uppercase non-ASCII letter right after a lowercase letter ("“dŽÔ": Shift-JIS's 電車), but in a word of
  capitalized parts ("BioÄpfel", "iPhoneÉtui");
- a symbol where Western text never puts one ("”L": Shift-JIS's 猫, "go³¹bki": Polish gołąbki). A symbol may touch
  an ASCII digit (no double-byte encoding has a digit as its second byte); an opening mark (¿ ¡ « » ‹ “ ‘ „ ‚ … ° µ
  © §) may start a word, a closing one (» « › ” “ ’ ‘ … ™ ® © ° ² ³ ¹ ª º € £ ¢ ‰ † ‡ ¼ ½ ¾) end it, and ’ · – — ×
  join two letters;
- or it opens with « » ‹ “ „ ¿ ¡ and the file never has the matching closing mark ("«B": Big5's 雨, "¿aba": Polish
  żaba).
Western text that trips these is rare (a bullet glued to a word: "•item"; Dutch "’s-Hertogenbosch" with a curly
apostrophe, which reads as Shift-JIS's pairs); it is refused with the word quoted, and where each word it refuses is
made of one Western language's letters ("Cafééè", its run) no Central European encoding is named: that reading is no
clearer. Faroese, which no rule knows, mixes ø and á ("Sørvágur") as Windows-1250's Dvořák does: refused as that.
No other languages are let mix: Catalan with Spanish would pass "ïábel" (ďábel), Catalan with French "kùò" (kůň).
Measured on 533 Western words and names (the dishes, places and names of tests/labeling/test_h58_csv_cp1250.py, every
language above, and the 234 stop 58's tester tried): none refused but that "’s" (14 before the German-French,
Icelandic and capitalized-part rules: "Straßencafé", "blóðþrýstingur", "Þjóðólfsson", "BioÄpfel"). On 121 Czech,
Slovak, Hungarian, Polish, Slovenian, Croatian and Romanian words whose Windows-1250 bytes read otherwise as
Windows-1252, 68 are refused, as before those rules (35 before the one-language, œ, ¿ and digit rules); the other 53
have one accent a Western language has ("Gdañsk", "koèka", "Szõke", "Plzeò", "Meðugorje"): no rule tells them from
Western words, so a file read as Windows-1252 is reported with its words quoted (cp1252_note), for the reader to see.

The likely encoding is the one whose strict decoding is made most of that language's common characters: kana and
level-1 kanji (Shift-JIS), level-1 hanzi (GBK, Big5), KS X 1001 Hangul (EUC-KR), Russian's most frequent letters in
words of one case shape (Windows-1251, KOI8-R), Central European letters in words with an ASCII letter and one case
shape (Windows-1250, ISO-8859-2; both where they read alike). A short text (under 16 bytes past ASCII) that another
language's encoding reads about as well names them all as "perhaps" (every Hangul syllable's two bytes are also a
common GBK hanzi and Big5 one); a file of some length names the best one. Measured on one-word files: the 224 words
above in Windows-1250 name it alone 193 times and among others 29 (2 unnamed: Hungarian "őz", no ASCII letter, and
Polish "źdźbło"), in ISO-8859-2 165 and 57 (2: "őz", and "źdźbło" named Big5); 33 Japanese, Chinese, Korean and
Russian words name theirs 19 times and among others 14, and six of them in one file name it alone.
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
_CLOSED_BY = {"«": "»", "»": "«", "‹": "›", "“": "”„", "„": "“”", "¿": "?", "¡": "!"}
_DIGITS = frozenset("0123456789")  # not ² ³ ¹, which str.isdigit counts: Polish "go³¹bki" is gołąbki
_AFTER_OE = frozenset("cdeilnstu")  # French œ: "œuf", "œil", "œdème", "cœlacanthe", "œnologie", "œsophage", "fœtus"


def _letter(char: str | None) -> bool:
    return char is not None and char.isalpha() and char not in _NOT_LETTERS


# The accented letters of each Western language Windows-1252 writes (small letters; loanwords' letters where they are
# common: French ü in "capharnaüm", Danish à in "2 stk. à 10 kr"), and those that mark its stress, which a word has
# once at most (Spanish "Ibáñez": á is its stress, ñ a letter; Italian writes one accent a word).
_LANGUAGES = (
    ("àâçéèêëîïôœùûüÿ", ""),  # French
    ("äöüß", ""),  # German
    ("áéíóúüñ", "áéíóú"),  # Spanish
    ("áâãàçéêíóôõúü", "áâàéêíóôú"),  # Portuguese
    ("àèéìíîòóùú", "àèéìíîòóùú"),  # Italian
    ("æøåàéóôü", ""),  # Danish, Norwegian
    ("åäöéü", ""),  # Swedish
    ("áéíóúýþðæö", ""),  # Icelandic
    ("äöåšžõü", ""),  # Finnish, Estonian
    ("àçèéêëïóöü", ""),  # Dutch
    ("àèéíïòóúüç", "àèéíòóú"),  # Catalan
)
# German compounds take French loanwords ("Straßencafé", "Varietétheater", "Crêpesküche"): one word may mix them
_LANGUAGES += ((_LANGUAGES[0][0] + _LANGUAGES[1][0], ""),)
_ICELANDIC = frozenset(_LANGUAGES[7][0])
# Capitalized parts joined in one word, a capital accented ("BioÄpfel", "MüllerÖl", "iPhoneÉtui")
_CAMEL = re.compile(r"[a-z]*(?:[A-ZÀ-ÖØ-Þ][a-zß-öø-ÿ]+)+")


def _one_language(word: str) -> bool:
    """Whether `word`'s accented letters are all one Western language's, its stress marked once at most ("Dvoøák",
    Windows-1250's Dvořák, mixes Danish ø and Spanish á; "Trenèín", Trenčín, stresses Catalan twice)."""
    accented = [c for c in word.lower() if not c.isascii() and _letter(c)]
    if len(set(accented)) < 2:
        return True
    return any(
        set(accented) <= set(letters) and sum(c in stress for c in accented) < 2 for letters, stress in _LANGUAGES
    )


def _odd_run(run: str, word: str) -> bool:
    """Whether three or more non-ASCII characters in a row are no Western word's: two differ, unless they are Icelandic
    letters with ð or þ in an Icelandic word ("blóðþrýstingur", "Þjóðólfsson")."""
    if len(set(run)) < 2:
        return False
    low, accented = run.lower(), {c for c in word.lower() if not c.isascii()}
    return not (set(low) & set("ðþ") and accented <= _ICELANDIC)


def _odd_word(word: str, opened: set[str]) -> bool:
    """True when `word` (read as Windows-1252) is no Western word; the opening marks it starts with go in `opened`."""
    if any(_odd_run(run, word) for run in _HIGH_RUN.findall(word)) or not _one_language(word):
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
            if char.isupper() and before is not None and before.islower() and not _CAMEL.fullmatch(word):
                return True
            if char in "œŒ" and (after or "").lower() not in _AFTER_OE:  # Polish ś: "œwinia", "gêœ"
                return True
            continue
        if before in _DIGITS or after in _DIGITS:
            continue
        if char in _OPENING and (before is None or before in _OPENING):
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


def _western_refusal(data: bytes) -> bool:
    """Whether `data` reads as Windows-1252 with each word it refuses made of one Western language's letters ("Cafééè":
    a word refused for its run or its case). Its Windows-1250 reading is no clearly better one then: not named."""
    try:
        words = set(_WORD.findall(data.decode("cp1252").replace("\xa0", " ")))
    except UnicodeDecodeError:
        return False
    odd = [word for word in words if not word.isascii() and _odd_word(word, set())]
    return bool(odd) and all(
        all(c.isascii() or (_letter(c) and c not in "œŒŸ") for c in word) and _one_language(word) for word in odd
    )


def cp1252_words(text: str) -> list[str]:
    """`text`'s words with other than ASCII letters, each once, in order: what a job read as Windows-1252 quotes."""
    return list(dict.fromkeys(w for w in _WORD.findall(text.replace("\xa0", " ")) if not w.isascii()))


def cp1252_note(words: list[str], shown: int = 8) -> dict:
    """What an import's result says of a labels CSV read as Windows-1252 (job.result["labels_csv"]): a Central
    European Excel's file with a word like "Gdañsk" (Gdańsk) reads as Western text, and only its reader can tell."""
    quoted = ", ".join(f'"{word[:40]}"' for word in words[:shown]) + (
        f" and {len(words) - shown} more" if len(words) > shown else ""
    )
    note = (f"The labels CSV is not UTF-8: read as Windows-1252 ({quoted}). If these look wrong, save it as UTF-8 CSV "
            "and import it again.")  # fmt: skip
    return {"read_as": "Windows-1252", "words": words[:100], "note": note}


def _code(char: str, codec: str) -> int:
    return int.from_bytes(char.encode(codec), "big")


def _rows(code: int, first: int, last: int) -> bool:
    """Whether `code` is a character of the rows `first` to `last` of a 94 x 94 table (KS X 1001, GB2312), not of the
    codec's extension between them (cp949's and GBK's with a second byte below 0xA1)."""
    return first <= code <= last and code & 0xFF >= 0xA1


def _cjk(char: str) -> bool:
    return "\u3040" <= char <= "\u30ff" or "\u4e00" <= char <= "\u9fff" or "\uac00" <= char <= "\ud7a3"


_RUSSIAN_COMMON = frozenset("оеаинтсрвлкмдпу")
# Czech, Slovak, Polish, Hungarian, Slovenian, Croatian and Romanian letters that Windows-1250 and ISO-8859-2 write
_CENTRAL = frozenset("áäčďéěíĺľňóôŕřšťúůýžąćęłńśźżöőüűăâîşţđ")

# codec, how the refusal names it, the common characters of its language (1 each; a rarer one of its script 1/2), in
# the order a tie names them: Korean text is all KS X 1001 Hangul, which GBK and Big5 also read as common hanzi; a
# Central European word's two bytes may read as one hanzi ("Żółw" as Big5's "草逕").
_GUESSES = (
    ("cp932", "Shift-JIS (Japanese Excel)",
     lambda c: 0x829F <= _code(c, "cp932") <= 0x82F1 or 0x8340 <= _code(c, "cp932") <= 0x8396
     or 0x889F <= _code(c, "cp932") <= 0x9872),
    ("cp949", "EUC-KR (Korean Excel)", lambda c: _rows(_code(c, "cp949"), 0xB0A1, 0xC8FE)),
    ("cp1251", "Windows-1251 (Cyrillic Excel)", lambda c: c.lower() in _RUSSIAN_COMMON),
    ("koi8_r", "KOI8-R (Cyrillic)", lambda c: c.lower() in _RUSSIAN_COMMON),
    ("cp1250", "Windows-1250 (Central European Excel)", lambda c: c.lower() in _CENTRAL),
    ("iso8859_2", "ISO-8859-2 (Central European)", lambda c: c.lower() in _CENTRAL),
    ("gbk", "GBK (Chinese Excel)", lambda c: _rows(_code(c, "gbk"), 0xB0A1, 0xD7F9)),
    ("cp950", "Big5 (Traditional Chinese Excel)", lambda c: 0xA440 <= _code(c, "cp950") <= 0xC67E),
)  # fmt: skip


_CYRILLIC_WORD = re.compile(r"[A-Za-z\u0400-\u04ff]*[\u0400-\u04ff][A-Za-z\u0400-\u04ff]*")
_LATIN_WORD = re.compile(r"[A-Za-z\u00c0-\u024f]*[\u00c0-\u024f][A-Za-z\u00c0-\u024f]*")
# one language: name the better reading only (both where they read alike: Polish "żółw" is the same bytes in both)
_FAMILY = {"cp1251": "ru", "koi8_r": "ru", "cp1250": "ce", "iso8859_2": "ce"}
_RUSSIAN = frozenset("абвгдеёжзийклмнопрстуфхцчшщъыьэюя")


def _shaped(word: str) -> bool:
    return word.islower() or word.isupper() or word.istitle()


def _reads_as(text: str, common, latin: bool) -> float:
    """How much of `text`'s non-ASCII is its language's: a common character 1, another of its script 1/2, anything
    else 0. A Cyrillic word counts only in lower case, upper case or capitalized, without Latin letters (a wrong
    reading mixes them: "лПЫЛБ"), and there a Russian letter that is not common counts 3/4. With `latin` (a Central
    European reading), a word counts only with an ASCII letter and in one of those cases: its Central European
    letters 1 each (a double-byte text reads as words of accented letters alone: "Ă¨ßä" for GBK's 猫咪)."""
    total = score = 0.0
    for char in text:
        if not char.isascii():
            total += 1
            score += (1 if common(char) else 0.5) if _cjk(char) else 0
    for match in _CYRILLIC_WORD.finditer(text):
        word = match.group()
        if not any(c.isascii() for c in word) and _shaped(word):
            score += sum(1 if common(c) else 0.75 if c.lower() in _RUSSIAN else 0.5 for c in word)
    for word in _LATIN_WORD.findall(text) if latin else ():
        pairs = len(word) % 2 == 0 and all(not c.isascii() for c in word[::2]) and word[1::2].isascii()
        if _ASCII_LETTER.search(word) and _shaped(word) and not pairs:  # "ŽR": Shift-JIS's 山 (cp1252_odd_word)
            score += sum(1 for c in word if not c.isascii() and common(c))
    return score / total if total else 0.0


def likely_encodings(data: bytes) -> list[str]:
    """What the refusal calls the encoding `data` most likely is (["Shift-JIS (Japanese Excel)"]); none where no
    reading is clear; on a short text, every one that reads about as well as the best, best first ("EUC-KR (Korean
    Excel)", "GBK (Chinese Excel)"): the refusal then says "perhaps" (labeling.services.imports.sources)."""
    scores = []
    if len(data) > 1 << 16:  # its first 64 KiB of lines tell as well as all of it
        data = data[: data.rfind(b"\n", 0, 1 << 16) + 1 or 1 << 16]
    western = _western_refusal(data)
    for order, (codec, name, common) in enumerate(_GUESSES):
        if western and _FAMILY.get(codec) == "ce":
            continue
        try:
            text = data.decode(codec)
        except UnicodeDecodeError:
            continue
        scores.append((_reads_as(text, common, _FAMILY.get(codec) == "ce"), -order, codec, name))
    if not scores or max(scores)[0] < 0.6:
        return []
    scores.sort(reverse=True)  # the best reading first (on a tie, the table's order)
    best, short = scores[0][0], sum(byte > 0x7F for byte in data) < 16
    named: list[str] = []
    families: dict[str, tuple[float, int]] = {}  # family -> its best reading's score and place in named
    for score, _, codec, name in scores:
        family = _FAMILY.get(codec, codec)
        if score < best - 0.1 or (named and not short and family not in families):
            break
        if family not in families:
            families[family] = (score, len(named))
            named.append(name)
        elif families[family][0] == score:  # the same text ("żółw"), or letters alike ("kruška", "kruąka"): either
            at = families[family][1]
            named[at] = f"{named[at].split(' (')[0]}/{name}"
    return named
