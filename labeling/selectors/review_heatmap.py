"""The review card's heatmap: which class of the item it shows, and its caption, or why there is none.

Review cards are of labeled items, and the active version stores predictions for pool items only, so most cards
have no stored top class. The heatmap request names its class itself (training.views.explanations, by item and
class, as the labeling page and the confusion drill-down ask), so a card shows, first found: the active version's
top class for the item, the class the model that raised the task predicted (the label-error search's
cross-validated model, or the version that contradicted the label), else the label under review. Always the active
version's heatmap, captioned with the class it is of and why that class.
"""

from __future__ import annotations

from labeling.selectors.training_seam import active_model_version, explanation_url


def review_heatmap(*, slug: str, ctx, given_ids: set[int], explain_links: list[tuple[int, str]]) -> dict:
    """The card's heatmap slot: {"explain_top": the fragment's URL or "", "explain_caption": "v4's heatmap of 7
    (the label under review)", "explain_missing": why no heatmap can be shown (what `h` says)}; the page advertises
    `h` only with a heatmap. `ctx` is the card's ReviewContext (None without a task)."""
    none = {"explain_top": "", "explain_caption": "", "explain_missing": ""}
    if ctx is None:
        return none
    version = active_model_version(ctx.item.project_id)
    if version is None:
        return {**none, "explain_missing": "No heatmap: the project has no trained model yet."}
    outputs = set(version.class_ids or [])
    candidates = []
    if ctx.model_top:
        candidates.append((ctx.model_top[0][0], f"v{version.number}'s top class"))
    if ctx.out_of_sample:
        candidates.append((ctx.out_of_sample[0], "the class the label-error search's model predicted"))
    if ctx.raised_top:
        candidates.append((ctx.raised_top[0][0], f"the class v{ctx.raised_version} predicted"))
    given = [c for c in (ctx.given.classes if ctx.given else ctx.resolved) if c.pk in given_ids]
    candidates += [(c, "the label under review") for c in given]
    for label_class, why in candidates:
        if label_class.pk not in outputs:
            continue
        links = dict(explain_links)
        url = links.get(label_class.pk) or explanation_url(slug=slug, item_id=ctx.item.pk, class_id=label_class.pk)
        if url:
            caption = f"v{version.number}'s heatmap of {label_class.path} ({why})"
            return {**none, "explain_top": url, "explain_caption": caption}
    missing = f"No heatmap: v{version.number} predicts none of this item's classes (they were added after it)."
    return {**none, "explain_missing": missing}
