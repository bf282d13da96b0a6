"""Explanations: token spans, occlusion contributions and attention on the served champions (the `store`
fixture), first through serving/explain.py, then over HTTP with the API token switched on.

Independent references: contributions are recomputed through SentimentPredictor's own batching (length-sorted
chunks, padded beside a longer text), attention through TranslationPredictor with other sentences in the batch.
"""

from __future__ import annotations

import csv
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from serving.contract.bundle import Bundle
from serving.contract.text import UNK, UNK_ID, encode_ids
from serving.explain import attention, occlusion, token_spans, variant_probabilities
from serving.sentiment import SentimentPredictor
from serving.translation import TranslationPredictor
from tests.conftest import FIXTURES
from tests.serving_harness import Server, http

TOKEN = "explain-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
with (FIXTURES / "sentiment" / "reviews.csv").open(encoding="utf-8-sig") as rows:
    # plain texts (the fixture also holds a blank one and links, which the rewritten-text test covers)
    TWEETS = [row["text"] for row in csv.DictReader(rows) if row["text"].strip() and "http" not in row["text"]]
SPANISH = ["Buenos días.", "¿Cómo estás?", "El perro come pan y la mujer ve la casa."]


@pytest.fixture(scope="module")
def bundles(store: dict[str, str]) -> dict[str, Bundle]:
    from serving.contract.registry import champion_bundle

    cache = Path(store["MEMORIA_BUNDLE_CACHE"])
    return {t: champion_bundle(t, store["MLFLOW_TRACKING_URI"], cache).bundle for t in ("sentiment", "translation")}


@pytest.fixture(scope="module")
def sentiment(bundles: dict[str, Bundle]) -> SentimentPredictor:
    return SentimentPredictor(bundles["sentiment"])


@pytest.fixture(scope="module")
def translation(bundles: dict[str, Bundle]) -> TranslationPredictor:
    return TranslationPredictor(bundles["translation"])


def serving_graph(bundle: Bundle, graph: str) -> SentimentPredictor:
    """A predictor on the same bundle serving `graph` ("fp32" or "int8"), as a bundle that chose it would."""
    graphs = bundle.manifest["graphs"]
    manifest = {
        **bundle.manifest,
        "graphs": {**graphs, "classifier": graphs[f"classifier_{graph}"]},
        "quantization": {**bundle.manifest.get("quantization", {}), "served": graph},
    }
    return SentimentPredictor(replace(bundle, manifest=manifest))


# -- token spans ----------------------------------------------------------------------------------------------
def assert_spans_in_order(text: str, spans) -> None:
    previous = (0, 0)
    for s in spans:
        assert 0 <= s.start < s.end <= len(text), (s, text)
        assert not text[s.start].isspace() and not text[s.end - 1].isspace(), s
        # in reading order (tokens made from one rewritten stretch or character share it)
        assert s.start >= previous[0] and s.end >= previous[1], (s, previous)
        previous = (s.start, s.end)


def test_spans_of_plain_text_are_the_tokens_themselves(sentiment: SentimentPredictor) -> None:
    for text in TWEETS:
        ids, spans = token_spans(sentiment.tokenizer, text, sentiment.max_tokens)
        assert ids == encode_ids(sentiment.tokenizer, [text], sentiment.max_tokens)[0]  # what predictions read
        assert_spans_in_order(text, spans)
        assert spans and all(ids[s.index] not in (0, 2, 3) for s in spans)
        for s in spans:
            if s.token != UNK:  # the tokenizer lower-cases; an unknown token stands for one character
                assert text[s.start : s.end].lower() == s.token, (text, s)


def test_spans_of_rewritten_text_cover_what_the_normalizer_rewrote(sentiment: SentimentPredictor) -> None:
    """Tweet placeholders (URL -> http, mention -> @user) and NFKC expansions: `tokenizers` maps their tokens to
    the last character of the match; the spans cover the whole source stretch instead."""
    text = "  Great ﬁne   flight @united_airlines see https://t.co/AbC123 ok"
    _, spans = token_spans(sentiment.tokenizer, text, sentiment.max_tokens)
    assert_spans_in_order(text, spans)
    normalize = sentiment.tokenizer.normalizer.normalize_str
    by_source: dict[str, set[str]] = {}
    for s in spans:
        source = text[s.start : s.end]
        by_source.setdefault(source, set()).add(s.token)
        assert s.token == UNK or s.token in normalize(source), (s, source)
    assert "https://t.co/AbC123" in by_source and "@united_airlines" in by_source, by_source
    ligature = text.index("ﬁ")  # NFKC: "fi"; every token made from it has it in its span
    assert "".join(s.token for s in spans if s.start <= ligature < s.end).startswith("fi"), by_source


def test_spans_stop_at_the_token_limit(sentiment: SentimentPredictor) -> None:
    text = " ".join(TWEETS * 4)
    ids, spans = token_spans(sentiment.tokenizer, text, sentiment.max_tokens)
    assert len(ids) == sentiment.max_tokens < len(encode_ids(sentiment.tokenizer, [text], 10_000)[0])
    assert max(s.index for s in spans) < sentiment.max_tokens
    assert spans[-1].end < len(text) // 2  # the rest of the text was never read


# -- occlusion ------------------------------------------------------------------------------------------------
def test_contributions_are_the_occlusion_differences_recomputed_through_the_predictor(
    bundles: dict[str, Bundle], sentiment: SentimentPredictor
) -> None:
    fp32 = serving_graph(bundles["sentiment"], "fp32")
    text = TWEETS[0]
    label = sentiment.predict([text])[0]["label"]
    tokens = occlusion(sentiment, text, label)
    ids = encode_ids(fp32.tokenizer, [text], fp32.max_tokens)[0]
    _, spans = token_spans(fp32.tokenizer, text, fp32.max_tokens)
    assert [(t.token, t.start, t.end) for t in tokens] == [(s.token, s.start, s.end) for s in spans]
    unlisted = set(range(len(ids))) - {s.index for s in spans}
    assert all(fp32.tokenizer.id_to_token(ids[k]) == "\u2581" for k in unlisted)  # only bare word-start marks
    # Independently: every variant through the predictor's own chunked, length-sorted batches, padded beside a
    # longer text (so padding is in play where the explanation had none)
    variants = [ids] + [[*ids[:k], UNK_ID, *ids[k + 1 :]] for k in range(len(ids))]
    longer = encode_ids(fp32.tokenizer, [" ".join(TWEETS[:4])], fp32.max_tokens)
    probs = fp32._probabilities(variants + longer)[:, fp32.labels.index(label)]
    expected = [0.0 if ids[s.index] == UNK_ID else probs[0] - probs[s.index + 1] for s in spans]
    np.testing.assert_allclose([t.contribution for t in tokens], expected, atol=1e-5)
    assert any(abs(t.contribution) > 1e-6 for t in tokens)  # the check means something only if tokens matter


def test_padding_does_not_change_the_occlusion_scores(sentiment: SentimentPredictor) -> None:
    ids = encode_ids(sentiment.tokenizer, [TWEETS[1]], sentiment.max_tokens)[0]
    variants = [ids] + [[*ids[:k], UNK_ID, *ids[k + 1 :]] for k in range(len(ids))]
    alone = variant_probabilities(sentiment, variants)
    long = encode_ids(sentiment.tokenizer, [" ".join(TWEETS)], sentiment.max_tokens)[0]
    padded = variant_probabilities(sentiment, [long, *variants, long])[1:-1]
    assert padded.shape == alone.shape and len(long) > len(ids)
    np.testing.assert_allclose(padded, alone, atol=1e-5)


def test_an_int8_served_model_is_explained_on_its_fp32_graph(bundles: dict[str, Bundle]) -> None:
    bundle = bundles["sentiment"]
    if "classifier_int8" not in bundle.manifest["graphs"]:
        pytest.fail(f"the store's sentiment bundle has no int8 graph: {bundle.manifest.get('quantization')}")
    int8, fp32 = serving_graph(bundle, "int8"), serving_graph(bundle, "fp32")
    assert int8.chunk == 1 and int8.fp32_session is not int8.session and fp32.fp32_session is fp32.session
    text = TWEETS[2]
    label = int8.predict([text])[0]["label"]
    assert occlusion(int8, text, label) == occlusion(fp32, text, label)


# -- attention ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("beam", [1, 3, None])
def test_attention_rows_are_distributions_over_the_source(translation: TranslationPredictor, beam) -> None:
    for text in SPANISH:
        answer = attention(translation, text, beam)
        matrix = np.array(answer.attention)
        source = encode_ids(translation.source_tokenizer, [text], translation.max_input_tokens)[0]
        assert matrix.shape == (len(answer.target_tokens), len(answer.source_tokens)) and len(source) == matrix.shape[1]
        np.testing.assert_allclose(matrix.sum(axis=1), 1.0, atol=1e-5)
        assert answer.translation == translation.translate([text], beam)[0]
        assert "".join(answer.source_tokens).replace("▁", "") == "".join(
            translation.source_tokenizer.id_to_token(i) for i in source
        ).replace("▁", "")


def test_padding_does_not_change_the_attention(translation: TranslationPredictor) -> None:
    for beam in (1, 3):
        alone = attention(translation, SPANISH[0], beam)
        batched = translation.translate_with_attention([SPANISH[2], SPANISH[0], SPANISH[2] * 3], beam)[1]
        assert batched.text == alone.translation
        np.testing.assert_allclose(batched.attention, np.array(alone.attention), atol=1e-5)


def test_a_long_source_is_cut_at_the_token_limit(translation: TranslationPredictor) -> None:
    answer = attention(translation, " ".join(SPANISH * 10), 1)
    assert len(answer.source_tokens) == translation.max_input_tokens == len(answer.attention[0])


# -- over HTTP ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def server(store: dict[str, str], tmp_path_factory: pytest.TempPathFactory):
    """The tests above exercise the server without a token (tests/test_e2e_http.py); this one has it on."""
    env = {**store, "MEMORIA_API_TOKEN": TOKEN, "MEMORIA_WORKERS": "1"}
    srv = Server(env, tmp_path_factory.mktemp("explain") / "serve.log")
    srv.wait_ready()
    yield srv
    srv.stop()


def post(server: Server, path: str, body: object, headers: dict[str, str] | None = None) -> tuple[int, dict, dict]:
    code, text, response_headers = http("POST", server.base + path, body, AUTH if headers is None else headers)
    return code, json.loads(text) if text else {}, response_headers


def test_sentiment_explain_over_http(server: Server) -> None:
    text = "The staff were wonderful, thanks @united http://t.co/x"
    code, answer, headers = post(server, "/sentiment/explain", {"text": text})
    assert code == 200, answer
    _, (plain,), plain_headers = post(server, "/sentiment", {"texts": [text]})
    assert answer["label"] == plain["label"] and answer["scores"] == plain["scores"]  # the /sentiment answer
    assert answer["method"] == "occlusion" and answer["tokens"]
    for t in answer["tokens"]:
        assert set(t) == {"token", "start", "end", "contribution"}
        assert 0 <= t["start"] < t["end"] <= len(text) and isinstance(t["contribution"], float)
    assert headers["x-memoria-model"] == plain_headers["x-memoria-model"]
    assert headers["x-memoria-model"].startswith("sentiment/v1 sha256:")


def test_translate_explain_over_http(server: Server) -> None:
    for beam in (1, 3, None):
        body = {"text": SPANISH[1]} if beam is None else {"text": SPANISH[1], "beam_size": beam}
        code, answer, headers = post(server, "/translate/explain", body)
        assert code == 200, answer
        matrix = np.array(answer["attention"])
        assert matrix.shape == (len(answer["target_tokens"]), len(answer["source_tokens"]))
        np.testing.assert_allclose(matrix.sum(axis=1), 1.0, atol=1e-4)
        assert isinstance(answer["score"], float) and answer["score"] <= 0
        if beam is not None:
            _, (plain,), _ = post(server, "/translate", {"texts": [SPANISH[1]], "beam_size": beam})
            assert answer["translation"] == plain["translation"]
        assert headers["x-memoria-model"].startswith("translation/v1 sha256:")


def test_an_explanation_does_not_depend_on_other_requests(server: Server) -> None:
    text = TWEETS[3]
    _, alone, _ = post(server, "/sentiment/explain", {"text": text})
    others = [{"texts": TWEETS[i : i + 5]} for i in range(0, 20, 5)]

    def busy(i: int) -> tuple[int, dict, dict]:
        if i % 3 == 0:
            return post(server, "/sentiment/explain", {"text": text})
        return post(server, "/sentiment", others[i % len(others)])

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = [a for code, a, _ in pool.map(busy, range(24)) if code == 200 and isinstance(a, dict)]
    assert len(answers) == 8
    for together in answers:
        assert [t["token"] for t in together["tokens"]] == [t["token"] for t in alone["tokens"]]
        np.testing.assert_allclose(
            [t["contribution"] for t in together["tokens"]], [t["contribution"] for t in alone["tokens"]], atol=1e-5
        )


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/sentiment/explain", {}, "text"),
        ("/sentiment/explain", {"text": ""}, "text"),
        ("/sentiment/explain", {"text": "   "}, "text"),
        ("/sentiment/explain", {"text": 42}, "text"),
        ("/sentiment/explain", {"text": ["a list"]}, "text"),
        ("/sentiment/explain", {"text": "x" * 2001}, "text"),
        ("/translate/explain", {"text": "hola " * 200}, "text"),
        ("/translate/explain", {"text": "hola", "beam_size": 0}, "beam_size"),
        ("/translate/explain", {"text": "hola", "beam_size": 99}, "beam_size"),
        ("/translate/explain", {"text": "hola", "beam_size": True}, "beam_size"),
        ("/translate/explain", {"text": "hola", "beam_size": None}, "beam_size"),
    ],
)
def test_bad_input_gets_400_naming_the_field(server: Server, path: str, body: dict, field: str) -> None:
    code, answer, _ = post(server, path, body)
    assert code == 400, (code, answer)
    assert answer["detail"][0]["loc"][0] == field and answer["detail"][0]["msg"], answer


def test_explanations_need_the_api_token_when_it_is_on(server: Server) -> None:
    for path, body in (("/sentiment/explain", {"text": "great"}), ("/translate/explain", {"text": "hola"})):
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            code, answer, response_headers = post(server, path, body, headers)
            assert code == 401 and list(answer) == ["error"], (path, code, answer)
            assert response_headers["www-authenticate"].startswith("Bearer")
    assert http("GET", server.base + "/docs.json")[0] == 200  # the document stays open


def test_explanations_are_counted_apart_from_predictions(server: Server) -> None:
    assert post(server, "/sentiment/explain", {"text": TWEETS[0]})[0] == 200
    assert post(server, "/translate/explain", {"text": SPANISH[0], "beam_size": 1})[0] == 200
    metrics = http("GET", server.base + "/metrics")[1]
    for task in ("sentiment_explain", "translation_explain"):
        assert any(
            line.startswith("memoria_requests_total") and f'task="{task}"' in line for line in metrics.splitlines()
        ), task
