// Live input signals: reads GET metrics (Prometheus text) and draws what this service has seen (input length,
// word novelty, label mix) beside the training distribution in each served model's card, and each drift signal's
// distance from the bundle's training profile (memoria_drift_distance, serving/drift.py).
import { servedCards, TASKS } from "./cards.js";
import { $, el, fmt, svg, titled } from "./dom.js";

// Prometheus text format: `name{label="value",...} number`; comments start with #.
function parseMetrics(text) {
  const samples = [];
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const match = line.match(/^([A-Za-z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/);
    if (!match) continue;
    const labels = {};
    for (const m of (match[2] || "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) {
      labels[m[1]] = m[2].replace(/\\"/g, '"').replace(/\\n/g, "\n").replace(/\\\\/g, "\\");
    }
    samples.push({ name: match[1], labels, value: Number(match[3]) });
  }
  return samples;
}

// Cumulative `_bucket` samples of one histogram -> counts per bucket, ordered by bound.
function liveHistogram(samples, name, task, model) {
  const buckets = samples
    .filter((s) => s.name === `${name}_bucket` && s.labels.task === task && s.labels.model === model)
    .map((s) => ({ le: s.labels.le === "+Inf" ? Infinity : Number(s.labels.le), cumulative: s.value }))
    .sort((a, b) => a.le - b.le);
  const counts = buckets.map((b, i) => b.cumulative - (i ? buckets[i - 1].cumulative : 0));
  const sum = samples.find((s) => s.name === `${name}_sum` && s.labels.task === task && s.labels.model === model);
  const total = buckets.length ? buckets[buckets.length - 1].cumulative : 0;
  return { le: buckets.map((b) => b.le), counts, total, mean: total && sum ? sum.value / total : null };
}

function trainingHistogram(section) {
  if (!section) return null;
  const le = section.le.map((b) => (b === "+Inf" ? Infinity : Number(b)));
  const total = section.counts.reduce((a, b) => a + b, 0);
  return { le, counts: section.counts, total };
}

const bucketName = (le, previous, percent) => {
  const f = (x) => (percent ? `${Math.round(x * 100)}%` : String(x));
  if (le === Infinity) return `> ${f(previous)}`;
  return `≤ ${f(le)}`;
};

// Paired bars per bucket: training share (grey) and live share (blue).
function comparisonChart(title, names, training, live, unit) {
  const rows = names.length;
  const rowHeight = 22;
  const labelWidth = 100;
  const barWidth = 220;
  const height = rows * rowHeight + 28;
  const chart = svg("svg", {
    class: "signal-chart",
    viewBox: `0 0 ${labelWidth + barWidth + 110} ${height}`,
    role: "img",
    "aria-label": `${title}: ` + names.map((n, i) =>
      `${n} training ${fmt(training[i] * 100, 0)}%, live ${live ? fmt(live[i] * 100, 0) + "%" : "none yet"}`).join("; "),
  });
  names.forEach((name, i) => {
    const y = 24 + i * rowHeight;
    chart.append(svg("text", { x: labelWidth - 6, y: y + 13, "text-anchor": "end", class: "axis-label" }, name));
    chart.append(titled(svg("rect", { x: labelWidth, y, width: training[i] * barWidth, height: 8, class: "train-bar" }),
      `${name}: ${fmt(training[i] * 100, 1)}% of training ${unit}`));
    if (live) {
      chart.append(titled(svg("rect", { x: labelWidth, y: y + 9, width: live[i] * barWidth, height: 8, class: "live-bar" }),
        `${name}: ${fmt(live[i] * 100, 1)}% of live ${unit}`));
    }
    const text = `${fmt(training[i] * 100, 0)}% · ${live ? fmt(live[i] * 100, 0) + "%" : "–"}`;
    chart.append(svg("text", { x: labelWidth + barWidth + 6, y: y + 13, class: "bar-value" }, text));
  });
  chart.append(svg("text", { x: 0, y: 14, class: "chart-title" }, title));
  return chart;
}

function histogramFigure(title, trainingSection, live, percent, unit) {
  const training = trainingHistogram(trainingSection);
  if (!training || !training.total) {
    return el("p", { class: "hint", text: `${title}: no training distribution in the card` });
  }
  // Keep the buckets from the first to the last one that holds anything, in training or live.
  const used = training.counts.map((c, i) => c > 0 || (live.counts[i] || 0) > 0);
  const first = Math.max(0, used.indexOf(true));
  const last = Math.max(first, used.lastIndexOf(true));
  const idx = [];
  for (let i = first; i <= last; i++) idx.push(i);
  const names = idx.map((i) => bucketName(training.le[i], i ? training.le[i - 1] : 0, percent));
  const trainShares = idx.map((i) => training.counts[i] / training.total);
  const liveShares = live.total ? idx.map((i) => (live.counts[i] || 0) / live.total) : null;
  return comparisonChart(title, names, trainShares, liveShares, unit);
}

function labelMixFigure(classes, samples, model, task) {
  const labels = Object.keys(classes || {});
  if (!labels.length) return el("p", { class: "hint", text: "label mix: no training classes in the card" });
  const trainTotal = labels.reduce((a, l) => a + classes[l], 0);
  const live = labels.map((l) => {
    const s = samples.find((x) => x.name === "memoria_predictions_total" && x.labels.task === task
      && x.labels.model === model && x.labels.label === l);
    return s ? s.value : 0;
  });
  const liveTotal = live.reduce((a, b) => a + b, 0);
  return comparisonChart("Label mix (training labels · live predictions)", labels,
    labels.map((l) => classes[l] / (trainTotal || 1)), liveTotal ? live.map((v) => v / liveTotal) : null, "texts");
}

// One row per drift signal: its Jensen-Shannon distance (0 = as in training, 1 = nothing in common).
function driftFigure(samples, model, task, profile) {
  if (profile && profile.available === false) {
    return el("p", { class: "hint", id: `drift-${task}`, text: `Drift from training: unavailable (${profile.reason})` });
  }
  const rows = samples.filter((s) => s.name === "memoria_drift_distance" && s.labels.task === task
    && s.labels.model === model).sort((a, b) => a.labels.signal.localeCompare(b.labels.signal));
  if (!rows.length) {
    return el("p", { class: "hint", id: `drift-${task}`, text: "Drift from training: no distance yet (too few "
      + "texts in this worker's window)" });
  }
  const list = el("ul", { class: "drift", id: `drift-${task}` });
  for (const r of rows) {
    list.append(el("li", { "data-signal": r.labels.signal, "data-distance": String(r.value),
      text: `${r.labels.signal.replace("_", " ")}: ${fmt(r.value, 2)}` + (r.value > 0.3 ? " (over the alert threshold)" : "") }));
  }
  return el("div", {}, el("p", { class: "chart-title", text: "Drift from training (Jensen-Shannon distance)" }), list);
}

function renderSignals(samples) {
  const blocks = [];
  for (const task of TASKS) {
    const card = servedCards()[task];
    if (!card || !card.model) continue;
    const inputs = (card.data && card.data.inputs) || {};
    const tokens = liveHistogram(samples, "memoria_input_tokens", task, card.model);
    const novelty = liveHistogram(samples, "memoria_input_novelty", task, card.model);
    const figure = el("figure", { class: "signals", id: `signals-${task}`, "data-live-texts": String(tokens.total) });
    figure.append(el("figcaption", {},
      el("strong", { text: task }),
      ` · live texts: ${tokens.total}` + (tokens.mean !== null ? `, mean ${fmt(tokens.mean, 1)} tokens` : "")
        + (novelty.mean !== null ? `, ${fmt(novelty.mean * 100, 1)}% new words` : "")
        + (inputs.texts ? ` · training texts: ${inputs.texts}, mean ${fmt(inputs.mean_tokens, 1)} tokens` : "")));
    figure.append(el("p", { class: "legend" }, el("span", { class: "swatch train" }), " training  ",
      el("span", { class: "swatch live" }), " live"));
    figure.append(histogramFigure("Input length (tokens per text)", inputs.tokens, tokens, false, "texts"));
    figure.append(driftFigure(samples, card.model, task, card.drift_profile));
    // a model whose card lists training classes (a classifier) gets the label mix, live against training
    if (card.data && card.data.classes) figure.append(labelMixFigure(card.data.classes, samples, card.model, task));
    blocks.push(figure);
  }
  $("signals").replaceChildren(...(blocks.length ? blocks : [el("p", { text: "No model is loaded yet." })]));
  $("signals-updated").textContent = `Updated ${new Date().toLocaleTimeString()}.`;
}

let polling = false;
export async function refreshSignals() {
  if (polling || !Object.keys(servedCards()).length) return;
  polling = true;
  try {
    const response = await fetch("metrics");
    if (!response.ok) throw new Error(`${response.status} ${response.statusText}`);
    renderSignals(parseMetrics(await response.text()));
  } catch (e) {
    $("signals").replaceChildren(el("p", { class: "error", text: `Could not read /metrics: ${e.message || e}` }));
  } finally {
    polling = false;
  }
}
