"""Endless Sky's conversations as English to back-translate: paragraphs read from the game's data-file format,
quotations taken over the narration around them, substitutions and bracketed alternatives left out."""

from __future__ import annotations

from training.data.translation import endless_sky as es

# a mission as the game's data files write it (shortened from "intro missions.txt")
DATA_FILE = """mission "Intro [0 Tutorial]"
	name "Welcome to Endless Sky"
	description "Meet a tutor who will show you the ropes."
	on offer
		conversation
			`You begin strolling through the spaceport, walking briskly in order to keep warm.`
			`	"Captain <last>!" he says. "Wonderful to see you again. Do you have a bunk ready for me?"`
			choice
				`	"Sure!"`
				`	"Sure, I'd be glad to help."`
			`	James says, "It will [befoul, soil, defile] its own home." Then he leaves.`
	on complete
		dialog "You say goodbye to them and wish them well. They pay you <payment>."
		payment 1500
"""


def test_paragraphs_are_the_backtick_strings_and_one_line_prose_entries() -> None:
    assert list(es.paragraphs(DATA_FILE)) == [
        "Meet a tutor who will show you the ropes.",
        "You begin strolling through the spaceport, walking briskly in order to keep warm.",
        '"Captain <last>!" he says. "Wonderful to see you again. Do you have a bunk ready for me?"',
        '"Sure!"',
        '"Sure, I\'d be glad to help."',
        'James says, "It will [befoul, soil, defile] its own home." Then he leaves.',
        "You say goodbye to them and wish them well. They pay you <payment>.",
    ]  # `name "..."` is a title, not prose


def test_a_paragraph_that_quotes_someone_gives_its_quotations_and_drops_what_the_game_substitutes() -> None:
    found = [es.sentences_of(p) for p in es.paragraphs(DATA_FILE)]
    assert found == [
        ["Meet a tutor who will show you the ropes."],
        ["You begin strolling through the spaceport, walking briskly in order to keep warm."],
        ["Wonderful to see you again.", "Do you have a bunk ready for me?"],  # "Captain <last>!" is substituted
        [],  # one word
        ["Sure, I'd be glad to help."],
        [],  # the alien's bracketed word choices; "Then he leaves." is narration around a quotation
        ["You say goodbye to them and wish them well."],
    ]


def test_sentences_are_whole_plain_ascii_sentences_of_3_to_20_words() -> None:
    assert es.as_sentence("  Do you take them up on   their offer? ") == "Do you take them up on their offer?"
    assert es.as_sentence("and then we left.") is None  # the tail of a quotation broken by narration
    assert es.as_sentence("We could go") is None  # no closing punctuation: cut by narration
    assert es.as_sentence("Welcome, café owner.") is None
    assert es.as_sentence(" ".join(["word"] * 20) + ".") is None
