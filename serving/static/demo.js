// memoria's demo page, the entry module (demo.html loads it with <script type="module">): wires the forms and
// starts the cards and the live signals. Native ES modules, no build step, nothing loaded from elsewhere:
//   dom.js (DOM helpers)  token.js (the API token)  api.js (POST with the token, error text)
//   cards.js (GET models: cards, served versions)  signals.js (GET metrics: live input signals)
//   sentiment.js (POST sentiment/explain)  translation.js (POST translate/explain)
// Every URL is relative to the page, so a proxy's path prefix keeps working.
import { loadCards, onCardsLoaded } from "./cards.js";
import { $ } from "./dom.js";
import { onSentiment } from "./sentiment.js";
import { refreshSignals } from "./signals.js";
import { wireTokenForm } from "./token.js";
import { onTranslation } from "./translation.js";

const POLL_MS = 5000;

// Module scripts are deferred: this runs once the document is parsed, so every element above exists.
$("sentiment-form").addEventListener("submit", onSentiment);
$("translation-form").addEventListener("submit", onTranslation);
wireTokenForm();
onCardsLoaded(refreshSignals); // new cards: redraw the signals against their training distributions
loadCards();
setInterval(() => {
  if (document.visibilityState === "visible") refreshSignals();
}, POLL_MS);
