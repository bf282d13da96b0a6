"""WordNet's usage examples as English to back-translate: read from the synset lines of a `data.*` file (the
format of Debian's wordnet-base), made into sentences. (Each source's pin and probe filter:
test_back_translation.py.)"""

from __future__ import annotations

from training.data.translation import wordnet_examples as wn

# two licence-header lines, then synset lines as WordNet 3.0 writes them (shortened)
DATA_NOUN = """  1 This software and database is being provided to you, the LICENSEE, by
  2 Princeton University under the following license.  "quoted" words in the header are no examples
09217230 17 n 01 beach 0 002 @ 09335240 n 0000 | sand sloping to the water; "they lay on the beach all day"
04468005 06 n 01 train 0 001 @ 04019101 n 0000 | public transport; "At what time does your train leave?"; "a train"
14303680 26 n 01 headache 0 000 | pain in the head; "a bad headache"; "the cream has turned--we have to throw it out"
03540595 06 n 01 hospital 0 000 | a health facility where patients receive treatment
"""


def test_examples_are_the_quoted_parts_of_glosses_only() -> None:
    found = wn.examples_in_data_file(DATA_NOUN.splitlines())
    assert found == [
        "they lay on the beach all day",
        "At what time does your train leave?",
        "a train",
        "a bad headache",
        "the cream has turned--we have to throw it out",
    ]


def test_examples_become_sentences_like_the_other_targets_or_nothing() -> None:
    assert wn.as_sentence("they lay on the   beach all day") == "They lay on the beach all day."
    assert wn.as_sentence("At what time does your train leave?") == "At what time does your train leave?"
    assert wn.as_sentence("a train") is None  # under 3 words: a word, not a sentence
    assert wn.as_sentence("the cream has turned--we have to throw it out") is None
    assert wn.as_sentence("a café au lait") is None  # not plain ASCII
    assert wn.as_sentence(" ".join(["word"] * 21)) is None
