"""A labels CSV in a legacy code page that is not Windows-1252 (Japanese Excel's Shift-JIS, GBK, Big5, EUC-KR,
KOI8-R, Windows-1251) is refused by name on every import path and changes nothing; Western Excel's Windows-1252
files still label their images (stop 57's tester: a Shift-JIS "猫" became the class "”L" and replaced a label)."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.urls import reverse

from labeling.models import Job, LabelClass, ResolvedLabel, Role
from tests.factories import page_client, png_bytes, token_client, upload

pytestmark = pytest.mark.django_db

SAVE_AS = "save it as UTF-8 CSV"


@pytest.fixture
def manager(project, member_of):
    return member_of(project, Role.MANAGER, "boss")


def api_import(project, manager, capture, files: list, csv: bytes | None = None) -> Job:
    data = {"files": files, **({"csv": [upload("labels.csv", csv)]} if csv is not None else {})}
    with capture(execute=True):
        answer = token_client(manager).post(f"/api/projects/{project.slug}/imports/", data, format="multipart")
    assert answer.status_code == 202, answer.content
    return Job.objects.get(pk=answer.json()["id"])


def labels(project) -> dict[str, list[str]]:
    return {
        r.item.original_name: sorted(c.path for c in r.classes.all())
        for r in ResolvedLabel.objects.filter(project=project).select_related("item")
    }


def test_a_shift_jis_csv_for_imported_images_is_refused_and_replaces_no_label(
    project, manager, django_capture_on_commit_callbacks
):
    # Given good.png imported with the label "crème" (a UTF-8 CSV)
    first = api_import(project, manager, django_capture_on_commit_callbacks, [upload("good.png", png_bytes(1))],
                       "filename,label\ngood.png,crème\n".encode())  # fmt: skip
    assert (first.errors, labels(project)) == ([], {"good.png": ["crème"]})

    # When Japanese Excel's CSV (Shift-JIS) labels it 猫, through the API as the tester did
    sjis = "filename,label\ngood.png,猫\n".encode("shift_jis")
    job = api_import(project, manager, django_capture_on_commit_callbacks, [], sjis)

    # Then the job says what the file looks like and what to do, and nothing changed: no class "”L", no label replaced
    reason = "looks like Shift-JIS (Japanese Excel) text, not UTF-8 or Windows-1252"
    assert job.errors == [{"name": "labels CSV", "reason": f'{reason} (Windows-1252 would read "”L"): {SAVE_AS}'}]
    assert labels(project) == {"good.png": ["crème"]}
    assert sorted(LabelClass.objects.filter(project=project).values_list("name", flat=True)) == ["crème"]
    assert (job.result.get("relabeled", 0), job.result.get("new_classes", [])) == (0, [])
    polled = token_client(manager).get(f"/api/projects/{project.slug}/jobs/{job.pk}/").json()
    assert [(e["name"], e["reason"]) for e in polled["errors"]] == [("labels CSV", job.errors[0]["reason"])]


# Class names as a team in each country would write them, saved by its Excel. Each file is refused: a double-byte
# encoding's words read as Windows-1252 mojibake with runs of accented letters and symbols ("°í¾çÀÌ"), or a closing
# quote before a letter ("”L"); a Cyrillic word reads as a word of accented capitals or small letters alone ("ËÏÛËÁ").
SAMPLES = {
    "shift_jis": (["猫", "犬", "鳥", "自動車", "ねこ", "その他"], "Shift-JIS (Japanese Excel)"),
    "gbk": (["猫", "狗", "鸟", "汽车", "动物", "其他"], "GBK (Chinese Excel)"),
    "big5": (["貓", "狗", "鳥", "汽車", "動物", "其他"], "Big5 (Traditional Chinese Excel)"),
    "euc_kr": (["고양이", "개", "새", "자동차", "동물", "기타"], "EUC-KR (Korean Excel)"),
    "koi8_r": (["кошка", "собака", "птица", "машина", "животные", "другое"], "KOI8-R (Cyrillic)"),
    "cp1251": (["кошка", "собака", "птица", "машина", "животные", "другое"], "Windows-1251 (Cyrillic Excel)"),
}


@pytest.mark.parametrize("encoding", list(SAMPLES))
def test_a_csv_in_an_east_asian_or_cyrillic_code_page_is_refused_naming_it(
    project, manager, django_capture_on_commit_callbacks, encoding
):
    names, named = SAMPLES[encoding]
    rows = "".join(f"img{n}.png,{name}\n" for n, name in enumerate(names))
    files = [upload(f"img{n}.png", png_bytes(n)) for n in range(len(names))]

    job = api_import(
        project, manager, django_capture_on_commit_callbacks, files, f"filename,label\n{rows}".encode(encoding)
    )

    # The images are imported, unlabeled; no class is made; the one error names the encoding
    assert job.result["imported"] == len(names)
    assert (labels(project), LabelClass.objects.filter(project=project).count()) == ({}, 0)
    assert len(job.errors) == 1
    assert job.errors[0]["reason"].startswith(f"looks like {named} text, not UTF-8 or Windows-1252")
    assert job.errors[0]["reason"].endswith(SAVE_AS)


def test_one_japanese_class_among_ascii_ones_refuses_the_file(project, manager, django_capture_on_commit_callbacks):
    # ASCII classes and one Japanese one, 山, that Windows-1252 would read as two letters, "ŽR"
    text = "filename,label\na.png,chat\nb.png,山\n"
    files = [upload("a.png", png_bytes(1)), upload("b.png", png_bytes(2))]

    job = api_import(project, manager, django_capture_on_commit_callbacks, files, text.encode("shift_jis"))

    assert labels(project) == {}
    assert [e["name"] for e in job.errors] == ["labels CSV"]
    assert "Shift-JIS (Japanese Excel)" in job.errors[0]["reason"]


WESTERN = {
    # French Excel: accents, œ, the typographer's apostrophe and guillemets with no-break spaces
    "french": ["chat", "crème brûlée", "cœur d’artichaut", "\xabœuvre\xa0d’art\xbb", "à trier", "Été", "ÉLAN"],  # noqa: RUF001
    # German: umlauts, ß, „quotes“, an en dash
    "german": ["Größe", "Straße", "Öl – Übung", "„Apfel“", "süß", "Müller-Lüdenscheidt", "ÄPFEL"],  # noqa: RUF001
    # Spanish and Portuguese: ñ, ¿?, ¡!, ordinals, tildes
    "iberian": ["niño", "¿Qué?", "¡Hola!", "1ª categoría", "canção", "ações", "pingüino"],
    # Nordic and Finnish: runs of the same letter, Ø Æ Å
    "nordic": ["smørrebrød", "blåbær", "Ærø", "Ålesund", "jäääär", "Hääyö", "Þórður"],
    # Price and measure classes: €, °, ², ½, ™, curly quotes, an ellipsis, Catalan's l·l
    "symbols": ["€5", "10€", "€€€", "25°C", "m²", "3½kg", "Brand™", "“Sale”", "suite…", "col·lecció"],
}


@pytest.mark.parametrize("language", list(WESTERN))
def test_windows_1252_csvs_as_western_excel_saves_them_still_label_the_images(
    project, manager, django_capture_on_commit_callbacks, language
):
    names = WESTERN[language]
    rows = "".join(f'img{n}.png,"{name}"\n' for n, name in enumerate(names))
    files = [upload(f"img{n}.png", png_bytes(n)) for n in range(len(names))]

    job = api_import(
        project, manager, django_capture_on_commit_callbacks, files, f"filename,label\n{rows}".encode("cp1252")
    )

    assert job.errors == []
    assert labels(project) == {f"img{n}.png": [name.strip()] for n, name in enumerate(names)}


def test_the_page_the_api_and_the_command_give_the_same_refusal(
    project, manager, tmp_path, django_capture_on_commit_callbacks
):
    sjis = "filename,label\ngood.png,猫\n".encode("shift_jis")
    expected = 'looks like Shift-JIS (Japanese Excel) text, not UTF-8 or Windows-1252 (Windows-1252 would read "”L")'

    # The import page: the browser uploads the image and the CSV in batches, then starts the import
    client = page_client(manager)
    token = client.post(
        reverse("labeling:import_upload", args=[project.slug]),
        {"files": [upload("good.png", png_bytes(1)), upload("labels.csv", sjis)]},
    ).json()["token"]
    with django_capture_on_commit_callbacks(execute=True):
        started = client.post(reverse("labeling:import_start", args=[project.slug]), {"token": token})
    assert started.status_code == 201
    page = Job.objects.get(project=project)

    # The API
    api = api_import(project, manager, django_capture_on_commit_callbacks, [upload("good.png", png_bytes(1))], sjis)

    # manage.py import_images --csv
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "good.png").write_bytes(png_bytes(1))
    (tmp_path / "labels.csv").write_bytes(sjis)
    out = io.StringIO()
    call_command("import_images", project.slug, str(tmp_path / "images"), "--csv", str(tmp_path / "labels.csv"),
                 verbosity=0, stdout=out)  # fmt: skip

    reason = f"{expected}: {SAVE_AS}"
    assert page.errors == [{"name": "labels CSV", "reason": reason}]
    assert [e for e in api.errors if e["name"] == "labels CSV"] == page.errors  # good.png itself: a duplicate now
    assert f"rejected labels CSV: {reason}" in out.getvalue()
    assert (labels(project), LabelClass.objects.filter(project=project).count()) == ({}, 0)
