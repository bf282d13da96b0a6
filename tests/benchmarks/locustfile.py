"""Locust users for `make bench`: one request = one text, like a chat or moderation client would send."""

from __future__ import annotations

import random

from locust import FastHttpUser, constant, task

SENTIMENT_TEXTS = [
    "I love this airline, great service!",
    "Worst flight ever, my bag is lost.",
    "The flight leaves at 5pm.",
    "@united thanks for the upgrade, the crew was lovely",
    "Two hours on the tarmac and no explanation. Unacceptable.",
]
SPANISH_TEXTS = ["Y lloró Jesús.", "En el principio creó Dios los cielos y la tierra.", "Jehová es mi pastor."]


class SentimentUser(FastHttpUser):
    wait_time = constant(0)  # closed loop: each user sends its next request as soon as the last one returns

    @task
    def sentiment(self) -> None:
        self.client.post("/sentiment", json={"texts": [random.choice(SENTIMENT_TEXTS)]})


class TranslationUser(FastHttpUser):
    wait_time = constant(0)

    @task
    def translate(self) -> None:
        self.client.post("/translate", json={"texts": [random.choice(SPANISH_TEXTS)], "beam_size": 4})
