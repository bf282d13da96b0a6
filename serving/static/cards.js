// The served models: reads GET models, draws each model card, names the served versions in the header, fills the
// beam-size choices, and says which model answered a request (reloading the cards when the champion moved).
import { errorText } from "./api.js";
import { $, el, fmt, signed } from "./dom.js";

export const TASKS = ["sentiment", "translation"];

let cards = {}; // task -> card from /models
const loadedListeners = []; // called after each successful load (the live signals redraw against the new cards)

export const servedCards = () => cards;
export const onCardsLoaded = (listener) => loadedListeners.push(listener);

export function answeredBy(response, task) {
  const model = response.headers.get("X-Memoria-Model");
  const card = cards[task];
  if (model && card && card.model && card.model !== model) loadCards(); // the champion moved: show its card
  return el("p", { class: "answered-by", text: model ? `Answered by ${model}` : "" });
}

function definitionList(entries) {
  const dl = el("dl");
  for (const [term, value] of entries) {
    if (value === undefined || value === null || value === "") continue;
    dl.append(el("dt", { text: term }), el("dd", {}, value instanceof Node ? value : String(value)));
  }
  return dl;
}

// Scalars as key=value; nested sections (cells, layout, served graph) as key (inner values), reasons left to the JSON.
function describeArchitecture(architecture) {
  return Object.entries(architecture || {})
    .map(([key, value]) => {
      if (value === null || typeof value !== "object") return `${key}=${value}`;
      const inner = Object.entries(value)
        .filter(([k, v]) => k !== "reason" && v !== null)
        .map(([k, v]) => `${k} ${Array.isArray(v) ? v.join("+") : v}`);
      return `${key} (${inner.join(", ")})`;
    })
    .join(", ");
}

const counts = (obj) => Object.entries(obj || {}).map(([k, v]) => `${k} ${v}`).join(", ");

function metricsTable(evaluation) {
  const peer = evaluation.peer || {};
  const known = peer.status === "known";
  const table = el("table", { class: "metrics" },
    el("caption", { text: known ? `Test split: this model against the peer (${peer.name})` : "Test split" }));
  const head = el("tr", {}, el("th", { scope: "col", text: "metric" }), el("th", { scope: "col", text: "model" }));
  if (known) head.append(el("th", { scope: "col", text: "peer" }), el("th", { scope: "col", text: "model − peer" }));
  table.append(el("thead", {}, head));
  const body = el("tbody");
  for (const [name, value] of Object.entries(evaluation.model || {})) {
    const row = el("tr", {}, el("th", { scope: "row", text: name }), el("td", { class: "number", text: fmt(value, 4) }));
    if (known) {
      const p = peer.metrics[name];
      row.append(el("td", { class: "number", text: p === undefined ? "–" : fmt(p, 4) }),
        el("td", { class: "number", text: p === undefined ? "–" : signed(value - p, 4) }));
    }
    body.append(row);
  }
  table.append(body);
  const note = known ? `peer run ${peer.run_id}` : `peer: unknown (${peer.reason || "no peer run"})`;
  return el("div", {}, table, el("p", { class: "hint", text: note }));
}

function renderCard(task, card) {
  const section = el("article", { class: "card", id: `card-${task}`, "aria-labelledby": `card-${task}-title` });
  section.append(el("h3", { id: `card-${task}-title`, text: task }));
  if (card.status === "not loaded") {
    section.append(el("p", { class: "error", text: `Not loaded: ${card.reason}` }));
    return section;
  }
  const champion = card.champion || {};
  const data = card.data || {};
  const parity = typeof card.parity === "object" ? card.parity : {};
  section.append(definitionList([
    ["model", card.model],
    ["registry version", card.registry_version],
    ["served from", card.origin],
    ["bundle sha256", el("code", { class: "digest", text: card.bundle_digest })],
    ["exported", card.bundle_created_at],
    ["source run", card.source_run_id],
    ["architecture", describeArchitecture(card.architecture)],
    ["champion since", champion.since],
    ["why", [champion.reason, champion.gate || champion.note].filter(Boolean).join(": ")],
    ["training data", data.available
      ? `${data.source}, fingerprint ${String(data.fingerprint).slice(0, 12)}; splits: ${counts(data.splits)}`
      : `unknown (${data.reason || "no summary"})`],
    [data.classes ? "training classes" : "training domains", counts(data.classes || data.domains)],
    ["parity", parity.max_abs_diff === undefined ? "unknown"
      : `onnxruntime vs PyTorch, max |diff| ${parity.max_abs_diff.toExponential(2)}` + (parity.tolerance ? ` (tolerance ${parity.tolerance})` : "")],
  ]));
  section.append(metricsTable(card.evaluation || {}));
  section.append(el("details", {}, el("summary", { text: "The whole card (JSON)" }),
    el("pre", { text: JSON.stringify(card, null, 2) })));
  return section;
}

function setBeamOptions(card) {
  const limits = (card && card.limits) || {};
  const select = $("translation-beam");
  const max = Number(limits.max_beam_size) || 0;
  if (!max || select.options.length > 1) return;
  select.options[0].textContent = `the model's default (${limits.default_beam_size ?? "?"})`;
  for (let b = 1; b <= max; b++) select.append(el("option", { value: String(b), text: String(b) }));
}

export async function loadCards() {
  try {
    const response = await fetch("models", { headers: { Accept: "application/json" } });
    if (!response.ok) throw new Error(await errorText(response));
    cards = await response.json();
  } catch (e) {
    $("cards").replaceChildren(el("p", { class: "error", text: `Could not load the model cards: ${e.message || e}` }));
    return;
  }
  $("cards").replaceChildren(...TASKS.map((task) => renderCard(task, cards[task] || {})));
  for (const task of TASKS) {
    const card = cards[task] || {};
    const link = $(`version-${task}`);
    link.textContent = card.model || `not loaded (${card.reason || "unknown"})`;
    link.title = "Open this model's card";
  }
  setBeamOptions(cards.translation);
  for (const listener of loadedListeners) listener();
}
