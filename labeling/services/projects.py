"""Writes for projects, members and label taxonomies."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Iterator

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.text import slugify

from labeling.constants import MAX_CLASS_DEPTH, MAX_CLASS_NAME
from labeling.models import Item, LabelClass, Membership, Project, Role, TaskType
from labeling.selectors.classes import (
    NAME_SEPARATOR_PROBLEM,
    PATH_SEPARATOR,
    class_ancestors,
    class_name_clean,
    class_name_problem,
    class_name_twin,
    class_path,
    class_path_display,
    class_path_names,
    class_paths,
    class_tree,
    class_twin_note,
    classes_below,
    classes_by_path,
)
from labeling.selectors.keys import CLASS_KEYS, PAGE_KEYS
from labeling.services.resolution import items_resolve_after_overlap_change
from labeling.services.reviews import review_tasks_for_items

# Cyrillic (Russian, Ukrainian, Belarusian, Serbian, Macedonian, Bulgarian) and Greek letters in Latin, so a project
# named in them gets a slug that says its name ("Кошки и собаки": koshki-i-sobaki). Slugs stay ASCII: URL patterns
# use <slug:...> and files on disk are named by slug. A built-in table, not Unidecode (GPL). Accented Greek letters
# are decomposed first (unicodedata), so only the bare ones are listed.
_LATIN_SPELLING = {  # keys that look like Latin letters (RUF001) are the Cyrillic letters being spelled
    **dict(zip("абвгдезийклмнопрстуфы", "abvgdeziyklmnoprstufy", strict=True)),
    **{"ж": "zh", "х": "kh", "ц": "ts", "ч": "ch", "ш": "sh", "щ": "shch"},  # noqa: RUF001
    **{"ъ": "", "ь": "", "э": "e", "ё": "yo", "ю": "yu", "я": "ya"},
    **{"і": "i", "ї": "yi", "є": "ye", "ґ": "g", "ў": "u"},  # noqa: RUF001
    **{"ђ": "dj", "ј": "j", "љ": "lj", "њ": "nj", "ћ": "c", "џ": "dz", "ѓ": "gj", "ќ": "kj", "ѕ": "dz"},  # noqa: RUF001
    **dict(zip("αβγδεζηικλμνξοπρσςτυφω", "avgdeziiklmnxoprsstyfo", strict=True)),
    **{"θ": "th", "χ": "ch", "ψ": "ps"},
}
_LATIN_TABLE = str.maketrans(
    {**_LATIN_SPELLING, **{k.upper(): v for k, v in _LATIN_SPELLING.items() if k.upper() != k}}
)


def project_slug(text: str) -> str:
    """The project slug made from `text` (a name, or a slug someone asked for), Cyrillic and Greek letters spelled in
    Latin: "" where nothing of it is left (a name in Chinese, Japanese, Arabic...). At most 70 characters, leaving room
    in Project.slug's 80 for project_create's "-2", "-3"… ."""
    # й and ё before decomposing (NFKD would strip their marks); accented Greek letters after, once bare.
    spelled = unicodedata.normalize("NFKD", unicodedata.normalize("NFC", text).translate(_LATIN_TABLE))
    return slugify(spelled.translate(_LATIN_TABLE))[:70]


def project_slug_says_name(text: str) -> bool:
    """Whether the slug made from `text` holds a letter: "2024" from "写真 2024" says nothing of the name."""
    return any("a" <= c <= "z" for c in project_slug(text))


def project_slug_next(text: str) -> str:
    """The slug project_create gives a project asked for with `text` (its name, or a slug): project_slug(text), or
    "project" where that is empty, numbered "-2", "-3"… past those taken."""
    base = project_slug(text) or "project"
    candidate, n = base, 1
    while Project.objects.filter(slug=candidate).exists():
        n += 1
        candidate = f"{base}-{n}"
    return candidate


def project_create(*, name: str, created_by, task_type: str = TaskType.SINGLE, slug: str = "", **settings) -> Project:
    """Create a project and make its creator a manager.

    Precondition: for a request's user the caller checked labeling.permissions.can_create_projects (the web form
    does; commands and benchmarks act for the operator). Without that check anyone could make themselves a
    manager, and a manager starts imports."""
    candidate = project_slug_next(slug or name)
    with transaction.atomic():
        project = Project(name=name, slug=candidate, task_type=task_type, created_by=created_by, **settings)
        project.full_clean()
        project.save()
        if created_by is not None:
            Membership.objects.create(user=created_by, project=project, role=Role.MANAGER)
    return project


def membership_set(*, project: Project, username: str, role: str) -> Membership:
    """Invite an existing user into a project, or change their role. A project keeps at least one manager: its last
    manager's role does not change (ValidationError, nothing saved)."""
    if role not in Role.values:
        raise ValidationError(f"Unknown role {role!r}.")
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise ValidationError(f"No user named {username!r}.")
    with transaction.atomic():
        managers = _managers_locked(project)
        if role != Role.MANAGER and managers == [user.pk]:
            raise ValidationError(_LAST_MANAGER.format(username=username, change="changed to another role"))
        membership, _ = Membership.objects.update_or_create(user=user, project=project, defaults={"role": role})
    return membership


def membership_remove(*, project: Project, membership_id: int) -> None:
    """Take a member out of the project (their labels stay) and give back the images they held (their queue leases:
    the one on their page and the one fetched ahead), which no one else would be served until the leases ran out.
    Its last manager is not removed (ValidationError)."""
    with transaction.atomic():
        managers = _managers_locked(project)
        membership = Membership.objects.filter(project=project, pk=membership_id).select_related("user").first()
        if membership is None:
            return
        if managers == [membership.user_id]:
            raise ValidationError(_LAST_MANAGER.format(username=membership.user.username, change="removed"))
        membership.delete()
        Item.objects.filter(project=project, lease_user_id=membership.user_id).update(
            lease_user=None, lease_expires_at=None
        )


_LAST_MANAGER = (
    "{username} is the project's only manager and cannot be {change}: make another member a manager first. "
    "Nothing was changed."
)


def _managers_locked(project: Project) -> list[int]:
    """The user ids of the project's managers, their rows locked until the transaction ends (two managers demoting
    each other at once cannot both pass the last-manager check)."""
    rows = Membership.objects.select_for_update().filter(project=project, role=Role.MANAGER).order_by("pk")
    return list(rows.values_list("user_id", flat=True))


_PALETTE = ["#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#eeca3b", "#b279a2", "#ff9da6", "#9d755d"]


def _used_hotkeys(project: Project) -> set[str]:
    return set(LabelClass.objects.filter(project=project).exclude(hotkey="").values_list("hotkey", flat=True))


def _free_hotkeys(used: set[str], names: Iterable[str] = ()) -> Iterator[str]:
    """The keys not in `used` (the project's), in the order new classes get them: 1-9 then letters (stored hotkeys
    are unique per project, for the review page); "" forever once they are all taken. The labeling page numbers each
    level of a taxonomy on its own (labeling.selectors.keys). Keys that `names` claim (name_hotkeys) are left out."""
    taken = used | {name.strip().lower() for name in names}
    yield from (key for key in CLASS_KEYS if key not in taken)
    while True:
        yield ""


def name_hotkeys(used: set[str], names: Iterable[str]) -> dict[str, str]:
    """{name: its own key} for new classes named by one digit: classes "0" to "9" get keys 0 to 9, as a reviewer
    expects, not 1-9 then "a". A key in `used` (a class of the project has it) is not claimed."""
    claimed: dict[str, str] = {}
    for name in names:
        key = name.strip().lower()
        if len(key) == 1 and key in "0123456789" and key not in used and key not in claimed.values():
            claimed[name] = key
    return claimed


# A new name holds no "/" (class_name_problem says why); what to do instead, for the add-class form and API and for
# a rename.
_PARENT_FIELDS = "the add-class form's Parent, or `parent` in POST /api/projects/<slug>/classes/create/"
CREATE_SEPARATOR_ADVICE = f"To add a class under another, choose that class as its parent ({_PARENT_FIELDS})."
RENAME_SEPARATOR_ADVICE = (
    "A rename changes one level's name only. To move a class under another, add a class of that name under the new "
    f"parent ({_PARENT_FIELDS}) and archive this one; its labels stay on the archived class."
)


def _refuse_name(name: str, *, separator_advice: str = "") -> None:
    """A ValidationError saying why `name` cannot be one class's name (class_name_problem), with `separator_advice`
    after it where what is wrong is a "/" in it; nothing if it can."""
    problem = class_name_problem(name, MAX_CLASS_NAME)
    if problem:
        advice = f" {separator_advice}" if problem == NAME_SEPARATOR_PROBLEM.format(name=name) else ""
        raise ValidationError(problem[0].upper() + problem[1:] + "." + advice)


def label_class_create(
    *,
    project: Project,
    name: str,
    parent: LabelClass | None = None,
    hotkey: str | None = None,
    color: str = "",
    level: int | None = None,
) -> LabelClass:
    """Add a class; hotkeys default to 1-9 then letters (the labeling page's own keys stay reserved). `name` is one
    level's name: no "/" (class_name_problem); `parent` puts it under another class.

    `level`: the new class's level (1 for a root), when the caller knows it; else it is counted up the parents."""
    if not name.strip():
        raise ValidationError("A class needs a name.")
    _refuse_name(name.strip(), separator_advice=CREATE_SEPARATOR_ADVICE)
    name = class_name_clean(name)
    if parent is not None and parent.project_id != project.pk:
        raise ValidationError("The parent class belongs to another project.")
    if parent is not None and parent.archived:  # no class is active under an archived one (label_class_archive)
        raise ValidationError(f"“{parent.path}” is archived: restore it before adding classes under it.")
    if level is None:  # one query per level whose parent is not loaded yet
        level, above = 1, parent
        while above is not None and level <= MAX_CLASS_DEPTH:
            level, above = level + 1, above.parent
    if level > MAX_CLASS_DEPTH:
        raise ValidationError(f"A class path may have at most {MAX_CLASS_DEPTH} levels.")
    if hotkey is None:
        used = _used_hotkeys(project)
        hotkey = name_hotkeys(used, [name]).get(name) or next(_free_hotkeys(used))
    hotkey = hotkey.strip().lower()
    if hotkey in PAGE_KEYS:
        raise ValidationError(
            f"Hotkey {hotkey!r} is reserved (s skip, z undo, ? help, / search, i instructions, b background, "
            "h heatmap)."
        )
    if hotkey and LabelClass.objects.filter(project=project, hotkey=hotkey).exists():
        raise ValidationError(f"Hotkey {hotkey!r} is already used in this project.")
    _refuse_twin(name, LabelClass.objects.filter(project=project, parent=parent))
    _refuse_path_collision(project=project, name=name, parent=parent)
    order = LabelClass.objects.filter(project=project).count()
    return LabelClass.objects.create(
        project=project, name=name, parent=parent, hotkey=hotkey, order=order, color=color or _PALETTE[order % 9]
    )


def _refuse_twin(name: str, siblings) -> None:
    """A ValidationError where one of `siblings` already has `name`, in any Unicode spelling (class_name_twin)."""
    twin = class_name_twin(name, siblings.values_list("name", flat=True))
    if twin is not None:
        raise ValidationError(f"A class named {twin!r} already exists here{class_twin_note(name, twin)}.")


def _refuse_path_collision(*, project: Project, name: str, parent: LabelClass | None) -> None:
    """No two classes may share a stored path. A new name holds no "/", but a class made before that rule may: a
    root class "a/b" and a new "b" under "a" would be one class to exports, imports, CSV labels and the dataset hash.
    Only a project where some name holds the separator can collide, so the others pay one EXISTS query."""
    if not LabelClass.objects.filter(project=project, name__contains=PATH_SEPARATOR).exists():
        return
    paths = class_paths(class_tree(project=project))
    wanted = class_path([paths[parent.pk], name] if parent is not None else [name])
    if wanted in paths.values():
        where = f" under “{parent.path}”" if parent is not None else ""
        raise ValidationError(
            f"A class “{name}”{where} would have the path {wanted!r}, as an existing class does: exports and imports "
            "could not tell the two apart. Choose another name."
        )


def label_classes_from_paths(*, project: Project, paths: list[str]) -> dict[str, LabelClass]:
    """Create (or find) classes for stored 'a/b/c' paths; returns stored path -> class, for every class.

    The classes are what `label_class_create` would make one at a time, path after path, parents first: the same
    hotkeys (the next free key each), order and colours. They are inserted a level at a time (one INSERT per level
    and batch, not six queries a class: 5,000 classes took 30 s). A path deeper than MAX_CLASS_DEPTH, or a name the
    name rule refuses, is a ValidationError before any class is made. A new class under an archived class is made
    archived (its labels are kept, as on the archived classes beside it). Names are stored cleaned (class_name_clean),
    and a path a class has in another Unicode spelling is that class (classes_by_path)."""
    typed = [[p.strip() for p in path.split(PATH_SEPARATOR) if p.strip()] for path in paths]
    split = [[class_name_clean(p) for p in parts] for parts in typed]  # stored and matched cleaned
    deepest = max(map(len, split), default=0)
    if deepest > MAX_CLASS_DEPTH:
        raise ValidationError(f"A class path may have at most {MAX_CLASS_DEPTH} levels ({deepest} given).")
    existing = classes_by_path(LabelClass.objects.filter(project=project))
    new: dict[str, tuple[str, str | None]] = {}  # stored path -> (name, parent's stored path), in creation order
    for parts, names in zip(split, typed, strict=True):
        for depth in range(len(parts)):
            key = class_path(parts[: depth + 1])
            if key not in existing and key not in new:
                _refuse_name(names[depth])
                new[key] = (parts[depth], class_path(parts[:depth]) if depth else None)
    if not new:
        return existing
    _refuse_new_twins(existing, new)
    used = _used_hotkeys(project)
    own = name_hotkeys(used, [name for name, _parent in new.values()])
    keys = _free_hotkeys(used, own.values())
    first = LabelClass.objects.filter(project=project).count()
    rows = {
        key: LabelClass(
            project=project, name=name, hotkey=own.pop(name, None) or next(keys), order=first + n,
            color=_PALETTE[(first + n) % 9],
        )
        for n, (key, (name, _parent)) in enumerate(new.items())
    }  # fmt: skip
    levels: dict[int, list[str]] = {}
    for key in new:
        levels.setdefault(key.count(PATH_SEPARATOR), []).append(key)
    for level in sorted(levels):  # parents exist (with their ids) before their children are inserted
        for key in levels[level]:
            parent_key = new[key][1]
            rows[key].parent = None if parent_key is None else rows.get(parent_key) or existing[parent_key]
            # under an archived class a new one is archived too, as label_class_archive keeps every subtree
            rows[key].archived = rows[key].parent is not None and rows[key].parent.archived
        LabelClass.objects.bulk_create([rows[key] for key in levels[level]], batch_size=1000)
    existing.update(rows)
    return existing


def _refuse_new_twins(existing: dict[str, LabelClass], new: dict[str, tuple[str, str | None]]) -> None:
    """A ValidationError where a new class (stored path -> (name, parent's path)) reads as a sibling does, existing
    or new, without being it (class_name_twin: "Ca\u200bfé" beside "Café"); the import makes no class then."""
    siblings: dict[str, list[str]] = {}
    for path in [*existing, *new]:
        parent, _, leaf = path.rpartition(PATH_SEPARATOR)
        siblings.setdefault(parent, []).append(leaf)
    for name, parent in new.values():
        twin = class_name_twin(name, [other for other in siblings[parent or ""] if other != name], ignore_case=False)
        if twin is not None:
            where = f" under “{class_path_display(parent.split(PATH_SEPARATOR))}”" if parent else ""
            raise ValidationError(
                f"The class {name!r}{where} reads the same as {twin!r} beside it{class_twin_note(name, twin)}: label "
                f"with {twin!r}, or rename that class first."
            )


def label_class_rename(*, project: Project, class_id: int, name: str) -> LabelClass:
    """Give a class a new name (its id, labels, hotkey and place in the taxonomy stay), under the rules a new class
    meets: the name rule (no "/", which separates the levels of a path), no sibling of the same name, and no two
    classes sharing a stored path, its subclasses' included. Its stored path changes, so the next dataset export is a
    new version; a model version keeps the names it was trained with until the next one. The name the class has is
    no change, even one made before a rule (a "/" in it): nothing is refused, nothing saved."""
    label_class = LabelClass.objects.get(project=project, pk=class_id)
    if name.strip() == label_class.name:
        return label_class
    _refuse_name(name.strip(), separator_advice=RENAME_SEPARATOR_ADVICE)
    name = class_name_clean(name)
    if name == label_class.name:
        return label_class
    siblings = LabelClass.objects.filter(project=project, parent_id=label_class.parent_id)
    _refuse_twin(name, siblings.exclude(pk=label_class.pk))
    tree = class_tree(project=project)
    tree[label_class.pk] = (name, label_class.parent_id)
    paths = class_paths(tree)
    if len(set(paths.values())) < len(paths):
        raise ValidationError(
            f"Renamed “{name}”, the class (or one of its subclasses) would share its path with another class: exports "
            "and imports could not tell the two apart. Choose another name."
        )
    label_class.name = name
    label_class.save(update_fields=["name"])
    return label_class


def label_class_archive(*, project: Project, class_id: int, archived: bool = True) -> LabelClass:
    """Archive a class (hidden from annotators, its labels kept: classes with labels are never deleted) together with
    every class under it, or restore it together with them. No class is ever active under an archived one: the
    labeling page would offer it, its keys would be those of other classes, and labels would still go to it.

    So a class under an archived class is not restored alone: a ValidationError names the archived class to restore
    (nothing changes). Archiving an archived class archives any class under it that is still active."""
    with transaction.atomic():
        label_class = LabelClass.objects.select_for_update().get(project=project, pk=class_id)
        rows = list(LabelClass.objects.filter(project=project).values_list("pk", "name", "parent_id", "archived"))
        if not archived:
            _refuse_restore_under_archived(label_class, rows)
        children: dict[int | None, list[int]] = {}
        for pk, _name, parent_id, _archived in rows:
            children.setdefault(parent_id, []).append(pk)
        subtree = {label_class.pk} | classes_below(children, [label_class.pk])
        LabelClass.objects.filter(project=project, pk__in=subtree).exclude(archived=archived).update(archived=archived)
    label_class.archived = archived
    return label_class


def _refuse_restore_under_archived(label_class: LabelClass, rows: list[tuple[int, str, int | None, bool]]) -> None:
    """A ValidationError naming the highest archived class above `label_class` (the one a restore must start from),
    if there is one. `rows`: (id, name, parent id, archived) of every class of the project."""
    tree = {pk: (name, parent_id) for pk, name, parent_id, _archived in rows}
    gone = {pk for pk, _name, _parent_id, archived in rows if archived}
    above = [pk for pk in class_ancestors(label_class.pk, tree) if pk in gone]
    if above:
        path, top = (class_path_display(class_path_names(pk, tree)) for pk in (label_class.pk, above[-1]))
        raise ValidationError(
            f"“{path}” is under the archived class “{top}”: restore “{top}”, which restores the classes under it too."
        )


def project_overlap_lowered(*, project: Project) -> int:
    """Once "Annotators per image" is saved lower: the items that now have enough labels are resolved (and sent to
    review where their annotators disagree). Returns how many. Raising it changes no item labeled already."""
    changed = items_resolve_after_overlap_change(project=project)
    review_tasks_for_items(project=project, item_ids=changed)
    return len(changed)
