"""The code's comments cite measurements by document and section name (`docs/measured.md, "Time"`, `README,
"Data"`): each cited name must still be a heading or a bold lead of the document it names, so moving or renaming a
section cannot leave a comment pointing at nothing."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO

DOCUMENTS = {"README": REPO / "README.md", "docs/measured.md": REPO / "docs" / "measured.md"}
# `README, "Data"` or `docs/measured.md, "Sentiment off the tweets"`: the document, a comma, the quoted name; a name
# may wrap onto the next comment or docstring line
CITATION = re.compile(r'(README|docs/measured\.md),\s+"([^"]{2,80})"')


def section_names(markdown: str) -> list[str]:
    """Headings and bold paragraph leads (`**Name.** text`), lower-cased, without markup."""
    headings = re.findall(r"^#+ (.+)$", markdown, re.M)
    leads = re.findall(r"^\*\*(.+?)\*\*", markdown, re.M)
    return [re.sub(r"[`*]", "", name).strip().lower() for name in headings + leads]


def flattened(source: str) -> str:
    """The text with line breaks, comment markers and indentation between lines folded into single spaces."""
    return re.sub(r"\s*\n\s*(#\s*)?", " ", source)


def citations(text: str) -> list[tuple[str, str]]:
    return [(doc, re.sub(r"\s+", " ", name).strip().lower()) for doc, name in CITATION.findall(flattened(text))]


def cited_in_code() -> list[tuple[str, str, str]]:
    files = subprocess.run(
        ["git", "ls-files", "*.py", "Makefile", "*.toml"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    files = [f for f in files if f != "tests/test_doc_citations.py"]  # its own examples cite on purpose
    return [(f, doc, name) for f in files for doc, name in citations((REPO / f).read_text(encoding="utf-8"))]


def missing_sections(cited: list[tuple[str, str, str]], document: str, markdown: str) -> list[str]:
    """The citations of `document` that name no heading or bold lead of its text `markdown`."""
    names = section_names(markdown)
    return sorted(
        f"{f}: {doc}, {name!r}"
        for f, doc, name in cited
        if doc == document and not any(n.startswith(name.rstrip(".")) for n in names)
    )


def test_a_wrapped_citation_is_read_whole() -> None:
    # given: a comment whose cited name wraps onto the next line
    text = 'x = 1  # measured (docs/measured.md, "Sentiment off the\n    # tweets": +0.6)\n'
    # then: the whole name is read, lower-cased
    assert citations(text) == [("docs/measured.md", "sentiment off the tweets")]


def test_a_renamed_section_is_caught() -> None:
    # given: a document whose "Time" heading was renamed, and code citing the old name and a bold lead
    document = "## Durations\n\n**Learning per minute: throughput.** text\n"
    code = 'a = 1  # (docs/measured.md, "Time")\nb = 2  # (docs/measured.md, "Learning per minute")\n'
    cited = [("x.py", doc, name) for doc, name in citations(code)]
    # then: only the renamed one is reported
    assert missing_sections(cited, "docs/measured.md", document) == ["x.py: docs/measured.md, 'time'"]


def test_the_code_cites_its_measurements() -> None:
    assert len(cited_in_code()) >= 20, "the comments' citations are no longer found: has the citation form changed?"


@pytest.mark.parametrize("document", sorted(DOCUMENTS))
def test_every_cited_section_exists(document: str) -> None:
    missing = missing_sections(cited_in_code(), document, Path(DOCUMENTS[document]).read_text(encoding="utf-8"))
    assert not missing, f"cited sections not found in {document}:\n" + "\n".join(missing)
