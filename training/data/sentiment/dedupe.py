"""What counts as "the same text" for the sentiment split, and a split that keeps such texts together.

A test score is honest only if no test text was, as the model sees it, in training. The model sees a text through
its tokenizer (training/text.py): NFKC, lower case, every link -> `http`, every @handle -> `@user`, punctuation
split off. So two tweets that differ only in the handle they reply to are one example to the model. Tweets also come
back as retweets (`RT @user: <text>`) and as cut-off copies (`<first part of text>...`). The rules, applied in this
order, each counted in the data card:

1. `casefold_url`: case, spacing and links ignored (what the key was before).
2. `model_view`: the text as the tokenizer's normaliser and pre-tokenizer leave it (handles, spacing around
   punctuation, Unicode compatibility forms).
3. `retweet_prefix`: leading `RT @user:` markers removed.
4. `truncation`: a trailing `...` / `…` removed.

Texts with equal keys are merged (one example, majority label). Texts that are not equal but close are grouped, and
a group is split as one unit:
- `near_duplicate`: character 5-gram Jaccard of the keys >= threshold (MinHash LSH proposes, exact Jaccard decides);
- `truncated_prefix`: a cut-off text whose key is the start of another text's key (a truncated retweet).
"""

from __future__ import annotations

import bisect
import functools
import random
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence

from training.data.grouping import UnionFind, join_near_duplicates

RULES = ("casefold_url", "model_view", "retweet_prefix", "truncation")
# A truncated key shorter than this is too generic to name its original ("thanks for the...").
MIN_PREFIX_CHARS = 25
# A cut-off text that starts more originals than this is a common opening, not a retweet of one of them.
MAX_PREFIX_MATCHES = 5
# Groups larger than this always train: a test set of one chain of templated tweets would measure one template.
MAX_HELDOUT_GROUP = 20


_URL = re.compile(r"https?://\S+|www\.\S+", re.IGNORECASE)


def casefold_url_key(text: str) -> str:
    """Rule 1 alone: case, spacing and links (t.co links differ per tweet) don't count."""
    return " ".join(_URL.sub(" ", text).casefold().split())


@functools.cache
def _tokenizer_view() -> Callable[[str], list[str]]:
    from tokenizers import pre_tokenizers

    from training.text import build_normalizer

    normalizer = build_normalizer(lowercase=True, tweets=True)
    splitter = pre_tokenizers.Punctuation(behavior="isolated")

    def words(text: str) -> list[str]:
        pieces = splitter.pre_tokenize_str(normalizer.normalize_str(text))
        return [w for piece, _ in pieces for w in piece.split()]

    return words


def model_words(text: str) -> list[str]:
    """The words and punctuation marks of `text` as the sentiment tokenizer sees them (before BPE)."""
    return _tokenizer_view()(text)


_RETWEET = ["rt", "@", "user"]  # 'RT @handle' as the pre-tokenizer leaves it ('@' is punctuation)


def _strip_retweet(words: list[str]) -> list[str]:
    while words[:3] == _RETWEET:
        words = words[4:] if words[3:4] == [":"] else words[3:]
    return words


def _strip_truncation(words: list[str]) -> tuple[list[str], bool]:
    # NFKC turned '…' into '...', which the pre-tokenizer isolates as three '.'
    if words[-3:] == [".", ".", "."]:
        return words[:-3], True
    return words, False


def staged_keys(text: str) -> tuple[tuple[str, ...], bool]:
    """The key of `text` after each rule of RULES (cumulative), and whether the text ended with a truncation mark."""
    words = [w for w in model_words(text) if w != "http"]
    view = " ".join(words)
    words = _strip_retweet(words)
    retweet = " ".join(words)
    words, truncated = _strip_truncation(words)
    return (casefold_url_key(text), view, retweet, " ".join(words)), truncated


def dedupe_key(text: str) -> str:
    """Texts with the same key are the same example to the model (all four rules applied)."""
    return staged_keys(text)[0][-1]


def removed_per_rule(texts: Sequence[str]) -> dict[str, int]:
    """How many texts each rule removed, applying the rules in order: distinct keys before it minus after it."""
    keys = [staged_keys(t)[0] for t in texts]
    distinct = [len(texts)] + [len({k[i] for k in keys}) for i in range(len(RULES))]
    return {rule: distinct[i] - distinct[i + 1] for i, rule in enumerate(RULES)}


def group_texts(texts: Sequence[str], threshold: float) -> tuple[list[int], Counter[str]]:
    """Group id of each (already de-duplicated) text, and how many joins each grouping rule made."""
    staged = [staged_keys(t) for t in texts]
    keys = [k[-1] for k, _ in staged]
    uf = UnionFind(len(texts))
    joins: Counter[str] = Counter()
    if threshold < 1.0:
        joins["near_duplicate"] = join_near_duplicates(uf, keys, threshold)
    order = sorted(range(len(keys)), key=keys.__getitem__)
    sorted_keys = [keys[i] for i in order]
    for i, (_, truncated) in enumerate(staged):
        prefix = keys[i]
        if not truncated or len(prefix) < MIN_PREFIX_CHARS:
            continue
        lo = bisect.bisect_left(sorted_keys, prefix)
        hi = bisect.bisect_left(sorted_keys, prefix + "\U0010ffff")
        if hi - lo - 1 > MAX_PREFIX_MATCHES:
            continue
        for j in order[lo:hi]:
            joins["truncated_prefix"] += uf.union(i, j)
    return [uf.find(i) for i in range(len(texts))], joins


def group_sizes(groups: Sequence[int]) -> dict[str, int]:
    sizes = Counter(Counter(groups).values())
    return {
        "groups": sum(sizes.values()),
        "texts_in_groups_of_2_or_more": sum(size * n for size, n in sizes.items() if size > 1),
        "largest_group": max(sizes, default=0),
        f"groups_over_{MAX_HELDOUT_GROUP}_kept_in_train": sum(
            n for size, n in sizes.items() if size > MAX_HELDOUT_GROUP
        ),
    }


def grouped_stratified_split(
    labels: Sequence[str],
    groups: Sequence[int],
    fractions: Mapping[str, float],
    seed: int,
) -> dict[str, list[int]]:
    """Indices per split (`fractions` names the held-out splits; the rest trains). Whole groups are assigned, so
    near-duplicates share a split; each class's share of every held-out split follows `fractions` to within a group:
    groups are dealt per label (the label of the group's first text), each held-out split filled up to its quota
    of that label. Groups over MAX_HELDOUT_GROUP texts always train."""
    members: dict[int, list[int]] = defaultdict(list)
    for i, g in enumerate(groups):
        members[g].append(i)
    by_label: dict[str, list[int]] = defaultdict(list)
    for g in sorted(members):
        by_label[labels[g]].append(g)
    rng = random.Random(f"memoria-sentiment:split:{seed}")
    class_totals = Counter(labels)
    assigned: dict[int, str] = {}
    for label in sorted(by_label):
        candidates = by_label[label]
        rng.shuffle(candidates)
        for split, fraction in fractions.items():
            quota = int(class_totals[label] * fraction + 0.5)
            taken = 0
            while candidates and taken < quota:
                g = candidates.pop()
                if len(members[g]) <= MAX_HELDOUT_GROUP:  # a bigger one is left unassigned: it trains
                    assigned[g] = split
                    taken += len(members[g])
    out: dict[str, list[int]] = {"train": [], **{split: [] for split in fractions}}
    for i, g in enumerate(groups):
        out[assigned.get(g, "train")].append(i)
    for indices in out.values():
        rng.shuffle(indices)  # files in random order: nothing downstream should see the classes in blocks
    return out
