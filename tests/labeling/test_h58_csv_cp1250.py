# ruff: noqa: RUF001 -- Windows-1252's readings of Central European letters look like Western ones
"""A labels CSV that Central European Excel saved in Windows-1250 (Czech, Slovak, Hungarian, Polish) is refused where a
word's accents mix Western languages ("Dvoøák" for Dvořák), naming Windows-1250; one it still reads as Windows-1252
("Gdañsk") makes the job say so, quoting the words it read, on the page and in the API; a refusal names an encoding only
when the guess is clear (stop 58's tester: "Dvořák" became the class "Dvoøák" and replaced a label; a Polish file was
said to look like Big5)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from labeling.models import Job, LabelClass, Role
from labeling.services.imports.sources import label_csv_text
from tests.factories import page_client, png_bytes, token_client, upload
from tests.labeling.test_h57_csv_encoding import api_import, labels

pytestmark = pytest.mark.django_db


@pytest.fixture
def manager(project, member_of):
    return member_of(project, Role.MANAGER, "boss")


@pytest.fixture
def labeled(project, manager, django_capture_on_commit_callbacks):
    """drei.png imported with the label "crème" (a UTF-8 CSV), as the tester's enc58 project had it."""
    api_import(project, manager, django_capture_on_commit_callbacks, [upload("drei.png", png_bytes(3))],
               "filename,label\ndrei.png,crème\n".encode())  # fmt: skip
    assert labels(project) == {"drei.png": ["crème"]}


@pytest.mark.parametrize("word", ["Dvořák", "Příliš", "Árvíztűrő", "Líšeň", "černý pes", "ďábel", "kůň"])
def test_a_windows_1250_csv_whose_words_mix_western_accents_is_refused_naming_windows_1250(
    project, manager, labeled, django_capture_on_commit_callbacks, word
):
    cz = f"filename,label\ndrei.png,{word}\n".encode("cp1250")

    job = api_import(project, manager, django_capture_on_commit_callbacks, [], cz)

    # Nothing changed: no mojibake class, the label kept; the reason names Central European Excel's encoding
    assert labels(project) == {"drei.png": ["crème"]}
    assert list(LabelClass.objects.filter(project=project).values_list("name", flat=True)) == ["crème"]
    assert [e["name"] for e in job.errors] == ["labels CSV"]
    reason = job.errors[0]["reason"]
    # š, ť, ž are Windows-1250's own bytes; a word without them is ISO-8859-2's too
    assert reason.startswith(
        (
            "looks like Windows-1250 (Central European Excel) text, not UTF-8 or Windows-1252",
            "looks like Windows-1250/ISO-8859-2 (Central European) text, not UTF-8 or Windows-1252",
        )
    )
    assert reason.endswith("save it as UTF-8 CSV")
    assert "labels_csv" not in job.result


def test_a_windows_1250_csv_that_reads_as_western_words_says_so_on_the_page_and_in_the_api(
    project, manager, labeled, django_capture_on_commit_callbacks
):
    pl = "filename,label\ndrei.png,Gdańsk\nvier.png,kočka\n".encode("cp1250")
    note = ('The labels CSV is not UTF-8: read as Windows-1252 ("Gdañsk", "koèka"). If these look wrong, save it as '
            "UTF-8 CSV and import it again.")  # fmt: skip

    # Through the API: the result says how the file was read, quoting its words
    job = api_import(project, manager, django_capture_on_commit_callbacks, [upload("vier.png", png_bytes(4))], pl)
    polled = token_client(manager).get(f"/api/projects/{project.slug}/jobs/{job.pk}/").json()
    assert polled["result"]["labels_csv"] == {"read_as": "Windows-1252", "words": ["Gdañsk", "koèka"], "note": note}

    # Through the page: the browser uploads the CSV in a batch (stored as UTF-8 there), then starts the import
    client = page_client(manager)
    token = client.post(reverse("labeling:import_upload", args=[project.slug]),
                        {"files": [upload("labels.csv", pl)]}).json()["token"]  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(reverse("labeling:import_start", args=[project.slug]), {"token": token}).status_code == 201
    page_job = Job.objects.filter(project=project).latest("pk")
    assert page_job.result["labels_csv"]["note"] == note
    html = client.get(reverse("labeling:import", args=[project.slug])).content.decode()
    shown = note.replace('"', "&quot;")
    assert f'<p class="labels-csv-note" role="note">{shown}</p>' in html


def test_a_utf8_or_ascii_csv_says_nothing_of_its_encoding(
    project, manager, labeled, django_capture_on_commit_callbacks
):
    job = api_import(project, manager, django_capture_on_commit_callbacks, [],
                     "filename,label\ndrei.png,Gdańsk\n".encode())  # fmt: skip
    assert (job.errors, labels(project), "labels_csv" in job.result) == ([], {"drei.png": ["Gdańsk"]}, False)


# The tester's P2 files: each is refused, naming the encoding it is, or, where a word or two read as well in another
# encoding, "perhaps" a list that holds it
NAMED = [
    ("猫咪", "gbk", "GBK (Chinese Excel)"),
    ("貓", "big5", "Big5 (Traditional Chinese Excel)"),
    ("żółw", "iso-8859-2", "ISO-8859-2"),
    ("Żółw", "cp1250", "Windows-1250"),
]


@pytest.mark.parametrize(("word", "encoding", "named"), NAMED)
def test_a_refusal_names_the_encoding_or_says_perhaps_with_it(
    project, manager, django_capture_on_commit_callbacks, word, encoding, named
):
    job = api_import(project, manager, django_capture_on_commit_callbacks, [upload("good.png", png_bytes(1))],
                     f"filename,label\ngood.png,{word}\n".encode(encoding))  # fmt: skip

    reason = job.errors[0]["reason"]
    assert (labels(project), LabelClass.objects.filter(project=project).count()) == ({}, 0)
    said = reason.split(" text", 1)[0] if reason.startswith("looks like") else reason.split("(perhaps ", 1)[1]
    assert named in said.split(";")[0], reason
    assert "EUC-KR" not in said or encoding == "gbk" or encoding == "big5"  # Polish is never called Korean


def test_a_longer_chinese_text_is_named_without_perhaps(project, manager, django_capture_on_commit_callbacks):
    rows = "".join(f"img{n}.png,{name}\n" for n, name in enumerate(["貓咪", "小狗", "鳥類", "汽車", "動物", "其他"]))
    job = api_import(project, manager, django_capture_on_commit_callbacks, [], f"filename,label\n{rows}".encode("big5"))
    assert job.errors[0]["reason"].startswith("looks like Big5 (Traditional Chinese Excel) text")


# Western words as each language's Excel writes them (dishes, places, names): 300+, measured in csv_encoding's
# docstring. Every one still reads as Windows-1252.
WESTERN = {
    "French": """crème brûlée|façade|pâté à l’œuf|pâté à l'œuf — spécial|Noël|naïve|château|forêt|hôpital|élève
        |garçon|français|Île-de-France|Besançon|Nîmes|Orléans|Angoulême|Montréal|Québec|Évreux|Sète|Béziers
        |bœuf bourguignon|gâteau
        |crêpe|soupe à l’oignon|œuvre|coïncidence|L’Haÿ-les-Roses|Saint-Étienne|déjà vu|tête-à-tête|maïs|aïoli
        |capharnaüm|Citroën|Thaïlande|Mont-Saint-Michel|Châteauneuf-du-Pape|île flottante|bûche de Noël
        |crème fraîche""",
    "German": """Größe|Straße|Fußball|Müller|Brötchen|Käsespätzle|Schwäbisch Gmünd|München|Köln|Düsseldorf|Nürnberg
        |Würzburg|Lübeck|Göttingen|Saarbrücken|Gänsebraten|Königsberger Klopse|Weißwurst|Rösti|Zürich|Bäckerei|Übung
        |Öl|Äpfel|Grüße|süß|Gemüse|Frühstück|Glühwein|Kärnten|Österreich|Pfälzer Saumagen|Rüdesheim|Größe Übel
        |Fußgängerübergänge|Müller-Lüdenscheidt|Straßencafé|Fußballcafé|Schloßcafé|Käsecrêpe|Kräutercrème|BioÄpfel
        |MüllerÖl|Varietétheater|Crêpesküche|Rosékönig""",
    "Spanish": """jalapeño|niño|España|año|tortilla española|jamón ibérico|Cádiz|Córdoba|Málaga|León|Logroño|A Coruña
        |Cáceres|Almería|Jaén|Ávila|Gijón|pingüino|albóndigas|pimientos de Padrón|Perú|México|Bogotá|Medellín
        |Asunción|Mazatlán|Querétaro|piña colada|Ñandú|cigüeña|corazón|canción|murciélago|¿Qué?|¡Olé!|Ibáñez|Núñez
        |Peñíscola|Cañón del Sumidero|Muñoz""",
    "Portuguese": """São Paulo|Conceição|açaí|pão de queijo|bacalhau à Brás|Portimão|Guimarães|Évora|Setúbal|Óbidos
        |Belém|Maranhão|Ceará|Paraná|Amapá|Florianópolis|coração|maçã|limão|português|três|avô|avó|pêssego
        |alfândega|Brasília|Goiânia|Piauí|cachaça|Curaçao|ações|canção|João Pessoa|Mação|Tomé-Açu""",
    "Italian": """perché|più|città|caffè|tiramisù|Forlì|Cantù|Cefalù|Nardò|ragù alla bolognese|così|università|virtù
        |lunedì|martedì|perciò|però|papà|Gesù|tè|Sant’Agata de’ Goti|Pietà|Mamoiada""",
    "Danish/Norwegian": """smørrebrød|Ørsted Æble|æbleskiver|rødgrød med fløde|Århus|Ålborg|Tromsø|Bodø|Førde|Ærø
        |Ærøskøbing|Helsingør|Køge|Næstved|Sønderborg|Frederiksværk|Bokmål|fårikål|kjøttkaker|rømmegrøt|pølse
        |blåbær|jordbær|smør|idé|allé|fôr|Øresund|Søren|Bjørn|Ødegård|2 stk. à 10 kr|Bø i Telemark|Hønefoss
        |Sørlandet""",
    "Swedish": """Malmö|Göteborg|Västerås|Örebro|Linköping|Jönköping|Norrköping|Umeå|Luleå|Gävle|Åre|köttbullar
        |smörgåsbord|räksmörgås|surströmming|Ångström|armé|Väsby|Sjögren|Älmhult|Åland|gräddfil|Skåne|Höganäs
        |Ängelholm|Öland|Sörmland""",
    "Icelandic": """Þórshöfn|fjörður|Reykjavík|Ísafjörður|Húsavík|Höfn|Egilsstaðir|Sauðárkrókur|Kirkjubæjarklaustur
        |Mýrdalsjökull|Eyjafjallajökull|Jökulsárlón|Þingvellir|Skógafoss|Hafnarfjörður|Þórður|Guðmundsdóttir|Björk
        |Sigurðsson|Hákarl|harðfiskur|Brennivín|Ölfus|Grindavík|Blönduós|Siglufjörður|Ólafsfjörður|Dettifoss
        |Seyðisfjörður|Þórsmörk|Fáskrúðsfjörður|blóðþrýstingur|Þjóðólfsson|Þjóðólfur|þjóðþing|góðæri|víðáttubrjálæði
        |ÞJÓÐÓLFSSON""",
    "Finnish/Estonian": """Hääyö|jäääär|Jyväskylä|Hämeenlinna|Seinäjoki|Mäntsälä|Kärsämäki|Pärnu|Võru|Tõrva|Põlva
        |Jõgeva|Türi|Kärdla|šokolaad|karjalanpiirakka|leipäjuusto|mämmi|Hyvinkää|Äänekoski|Kõrvemaa|Šveits|žürii
        |Käsmu|Pöide|Häädemeeste|Mäntyharju|Sääksmäki|Rääkkylä""",
    "Dutch": """één|ideeën|coöperatie|België|zeeën|financiën|reünie|patiënt|café|Zoë|enquête|reçu|à la carte
        |'s-Hertogenbosch|geïnteresseerd|vóór|drieëntwintig|knieën|Brontë|Bonaire|naïef""",
    "Catalan": """col·lecció|Empordà|Pallars Jussà|calçots|pa amb tomàquet|Sant Adrià|Vilafranca del Penedès|Perpinyà
        |Castelló|València|Ripollès|Solsonès|Maçanet|Mataró|Berguedà|coïssor|raïm|veïna|Lluís|Barça|Lleó|Fòrum
        |Sarrià|Sant Cugat del Vallès|Ciutat Vella|Pont de Suert""",
}


@pytest.mark.parametrize("language", list(WESTERN))
def test_no_western_word_is_refused(language):
    words = [w.strip() for w in WESTERN[language].split("|")]
    text = "filename,label\n" + "".join(f'img{n}.png,"{w}"\n' for n, w in enumerate(words))
    errors: list[dict] = []
    read: list[str] = []
    assert label_csv_text(text.encode("cp1252"), errors=errors, read_as_1252=read) == text
    assert errors == []
    assert read  # and the job would quote them


# Stop 58's second tester: German compounds with a French loanword, Icelandic ð and þ beside accented vowels and a
# capitalized part after another were refused, the Icelandic file as Central European
@pytest.mark.parametrize("word", ["Straßencafé", "Fußballcafé", "blóðþrýstingur", "Þjóðólfsson", "BioÄpfel"])
def test_a_windows_1252_csv_with_a_german_compound_or_an_icelandic_word_labels_the_image(
    project, manager, labeled, django_capture_on_commit_callbacks, word
):
    job = api_import(project, manager, django_capture_on_commit_callbacks, [],
                     f"filename,label\ndrei.png,{word}\n".encode("cp1252"))  # fmt: skip

    assert (job.errors, labels(project)) == ([], {"drei.png": [word]})
    assert job.result["labels_csv"]["words"] == [word]


def test_a_refused_word_of_western_letters_is_not_called_windows_1250(
    project, manager, labeled, django_capture_on_commit_callbacks
):
    # "Cafééè" (a key held down) reads as French letters, refused for its run of three: its Windows-1250 reading
    # "Cafééč" is no better, so the refusal quotes the word and names no encoding
    job = api_import(project, manager, django_capture_on_commit_callbacks, [],
                     "filename,label\ndrei.png,Cafééè\n".encode("cp1252"))  # fmt: skip

    assert labels(project) == {"drei.png": ["crème"]}
    reason = 'not UTF-8 text, and as Windows-1252 it would read "Cafééè": save it as UTF-8 CSV'
    assert job.errors == [{"name": "labels CSV", "reason": reason}]
