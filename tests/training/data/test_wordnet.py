"""WordNet's database as both tasks read it: the antonym pointers of a `data.*` file (the format of Debian's
wordnet-base). The usage examples: test_wordnet_examples.py."""

from __future__ import annotations

from training.data.wordnet import antonyms

# a licence-header line, then synset lines as WordNet 3.0 writes them (pointers shortened): "good" and "bad" point
# at each other (`!`, word 1 to word 1), "galore(ip)" carries a position marker, "&" is similarity, not antonymy
DATA_ADJ = """  1 This software and database is being provided to you, the LICENSEE, by ! 01125429 a 0101
01123148 00 a 01 good 1 003 = 04723816 n 0000 ! 01125429 a 0101 & 01123879 a 0000 | having desirable qualities
01125429 00 a 02 bad 0 spoiled 0 002 ! 01123148 a 0101 ! 09999999 a 0101 | having undesirable qualities; "a bad report"
00001740 00 a 02 able 0 galore(ip) 0 001 ! 00002098 a 0201 | having the necessary means
00002098 00 a 01 unable 0 000 | not able
01123879 00 s 01 well-behaved 0 001 & 01123148 a 0000 | behaving well
"""


def test_antonyms_follow_the_exclamation_pointers_between_words_of_two_synsets() -> None:
    found = antonyms(DATA_ADJ.splitlines())
    # bad's pointer to a synset the file does not hold is dropped, not an error
    assert found == {"good": {"bad"}, "bad": {"good"}, "galore": {"unable"}}
