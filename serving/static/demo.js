// memoria's demo page: plain JavaScript, no build step, nothing loaded from elsewhere.
// Calls (all relative to the page, so a proxy's path prefix keeps working):
//   POST sentiment/explain, POST translate/explain  (Bearer token when the service answers 401)
//   GET models   (the served models' cards)          GET metrics  (Prometheus text, for the live signals)
"use strict";

(() => {
  const SVG = "http://www.w3.org/2000/svg";
  const TOKEN_KEY = "memoria.apiToken";
  const POLL_MS = 5000;
  const TASKS = ["sentiment", "translation"];

  const state = {
    token: sessionStorage.getItem(TOKEN_KEY) || "",
    cards: {}, // task -> card from /models
    pendingToken: null, // {resolve, reject} while the token form is open
  };

  const $ = (id) => document.getElementById(id);

  // -- small DOM helpers ------------------------------------------------------------------------------------
  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === "text") node.textContent = v;
      else if (k === "class") node.className = v;
      else node.setAttribute(k, v);
    }
    for (const child of children) node.append(child);
    return node;
  }

  function svg(tag, attrs = {}, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function titled(node, text) {
    node.append(svg("title", {}, text));
    return node;
  }

  const fmt = (x, digits = 3) => (typeof x === "number" && Number.isFinite(x) ? x.toFixed(digits) : String(x));
  const signed = (x, digits = 3) => (x > 0 ? "+" : x < 0 ? "−" : "±") + Math.abs(x).toFixed(digits);

  function showError(id, message) {
    const node = $(id);
    node.textContent = message;
    node.hidden = !message;
  }

  // -- the API token ------------------------------------------------------------------------------------------
  function askForToken(message) {
    $("token-message").textContent = message;
    $("token-panel").hidden = false;
    $("token-input").value = "";
    $("token-input").focus();
    if (!state.pendingToken) {
      // one question at a time: a second call that needs a token while the form is open waits for the same answer
      let settle;
      const promise = new Promise((resolve, reject) => {
        settle = { resolve, reject };
      });
      state.pendingToken = { ...settle, promise };
    }
    return state.pendingToken.promise;
  }

  function closeTokenForm() {
    $("token-panel").hidden = true;
    state.pendingToken = null;
  }

  function setToken(token) {
    state.token = token;
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    else sessionStorage.removeItem(TOKEN_KEY);
    $("token-state").hidden = !token;
  }

  // POST JSON; on 401 ask for a token (again, if the one sent was refused) and retry with it.
  async function postJson(path, body) {
    for (;;) {
      const headers = { "Content-Type": "application/json" };
      if (state.token) headers.Authorization = `Bearer ${state.token}`;
      const response = await fetch(path, { method: "POST", headers, body: JSON.stringify(body) });
      if (response.status !== 401) return response;
      const refused = Boolean(state.token);
      setToken("");
      const token = await askForToken(
        refused
          ? "That token was refused. Enter the service's API token (its MEMORIA_API_TOKEN)."
          : "This service asks for an API token (its MEMORIA_API_TOKEN) on the explain endpoints.",
      );
      setToken(token);
    }
  }

  async function errorText(response) {
    let body = "";
    try {
      body = await response.text();
      const parsed = JSON.parse(body);
      if (Array.isArray(parsed.detail) && parsed.detail.length) {
        return parsed.detail.map((d) => `${(d.loc || []).join(".")}: ${d.msg}`).join("; ");
      }
      if (parsed.error) return parsed.error;
    } catch (_) {
      // not JSON: show the text as it came
    }
    return `${response.status} ${response.statusText} ${body}`.trim();
  }

  function answeredBy(response, task) {
    const model = response.headers.get("X-Memoria-Model");
    const card = state.cards[task];
    if (model && card && card.model && card.model !== model) loadCards(); // the champion moved: show its card
    return el("p", { class: "answered-by", text: model ? `Answered by ${model}` : "" });
  }

  // -- sentiment ----------------------------------------------------------------------------------------------
  const LABEL_COLOURS = { negative: "#b3261e", neutral: "#5f6368", positive: "#1e7b34" };

  function probabilityChart(scores, predicted) {
    const labels = Object.keys(scores);
    const rowHeight = 34;
    const labelWidth = 90;
    const barWidth = 300;
    const height = labels.length * rowHeight + 8;
    const chart = svg("svg", {
      class: "probability-chart",
      viewBox: `0 0 ${labelWidth + barWidth + 70} ${height}`,
      role: "img",
      "aria-label": "Probability of each label: " + labels.map((l) => `${l} ${fmt(scores[l])}`).join(", "),
    });
    labels.forEach((label, i) => {
      const y = 4 + i * rowHeight;
      const p = scores[label];
      chart.append(svg("text", { x: labelWidth - 8, y: y + 19, "text-anchor": "end", class: "axis-label" }, label));
      chart.append(svg("rect", { x: labelWidth, y, width: barWidth, height: 24, class: "bar-track" }));
      const bar = svg("rect", {
        x: labelWidth,
        y,
        width: Math.max(0, Math.min(1, p)) * barWidth,
        height: 24,
        fill: LABEL_COLOURS[label] || "#3b6ea8",
        class: "bar" + (label === predicted ? " predicted" : ""),
        "data-label": label,
        "data-probability": String(p),
      });
      chart.append(titled(bar, `${label}: ${fmt(p)}`));
      chart.append(svg("text", { x: labelWidth + barWidth + 8, y: y + 19, class: "bar-value" }, fmt(p)));
    });
    return chart;
  }

  // Background for a contribution: green when the token raised the predicted label's probability, red when it
  // lowered it; the strength is relative to the strongest token of this text.
  function shade(contribution, strongest) {
    const t = strongest > 0 ? Math.min(1, Math.abs(contribution) / strongest) : 0;
    const [r, g, b] = contribution >= 0 ? [30, 140, 60] : [200, 40, 30];
    return { background: `rgba(${r}, ${g}, ${b}, ${(0.08 + 0.72 * t).toFixed(3)})`, dark: t > 0.6 };
  }

  function shadedText(text, tokens, label) {
    const strongest = Math.max(0, ...tokens.map((t) => Math.abs(t.contribution)));
    const paragraph = el("p", { class: "shaded-text", lang: "en" });
    const ordered = [...tokens].sort((a, b) => a.start - b.start);
    let at = 0;
    for (const token of ordered) {
      if (token.start < at) continue; // overlapping spans cannot be drawn inline; the table below lists them all
      if (token.start > at) paragraph.append(document.createTextNode(text.slice(at, token.start)));
      const { background, dark } = shade(token.contribution, strongest);
      const span = el("span", {
        class: "token" + (dark ? " dark" : ""),
        tabindex: "0",
        "data-contribution": String(token.contribution),
        title: `“${token.token}”: ${signed(token.contribution)} to p(${label})`,
        text: text.slice(token.start, token.end),
      });
      span.style.backgroundColor = background; // CSSOM, which the page's Content-Security-Policy allows
      paragraph.append(span);
      at = token.end;
    }
    if (at < text.length) paragraph.append(document.createTextNode(text.slice(at)));
    return paragraph;
  }

  function contributionTable(tokens, label) {
    const rows = [...tokens].sort((a, b) => Math.abs(b.contribution) - Math.abs(a.contribution));
    const table = el(
      "table",
      { class: "contributions" },
      el("caption", { text: `Tokens by how much they moved p(${label}), strongest first` }),
      el(
        "thead",
        {},
        el("tr", {}, el("th", { scope: "col", text: "token" }), el("th", { scope: "col", text: "characters" }),
          el("th", { scope: "col", text: "contribution" })),
      ),
    );
    const body = el("tbody");
    for (const t of rows) {
      body.append(el("tr", {}, el("td", { text: t.token }), el("td", { text: `${t.start}–${t.end}` }),
        el("td", { class: "number", text: signed(t.contribution) })));
    }
    table.append(body);
    return el("details", {}, el("summary", { text: "The contributions as a table" }), table);
  }

  function renderSentiment(text, answer, response) {
    const p = answer.scores[answer.label];
    const out = $("sentiment-result");
    out.replaceChildren(
      el("p", { class: "verdict" }, "Label: ", el("strong", { class: `label-${answer.label}`, text: answer.label }),
        ` (probability ${fmt(p)})`),
      probabilityChart(answer.scores, answer.label),
      el("h3", { text: `Which words moved “${answer.label}”` }),
      shadedText(text, answer.tokens, answer.label),
      el("p", { class: "legend" },
        el("span", { class: "swatch up" }), ` raised p(${answer.label})  `,
        el("span", { class: "swatch down" }), ` lowered it  (method: ${answer.method || "unknown"}; `
          + "hover or focus a word for its number)"),
      contributionTable(answer.tokens, answer.label),
      answeredBy(response, "sentiment"),
    );
  }

  async function onSentiment(event) {
    event.preventDefault();
    const text = $("sentiment-text").value;
    showError("sentiment-error", "");
    const button = event.submitter || event.target.querySelector("button");
    button.disabled = true;
    try {
      const response = await postJson("sentiment/explain", { text });
      if (!response.ok) return showError("sentiment-error", await errorText(response));
      renderSentiment(text, await response.json(), response);
      refreshSignals();
    } catch (e) {
      showError("sentiment-error", e && e.message ? e.message : String(e));
    } finally {
      button.disabled = false;
    }
  }

  // -- translation --------------------------------------------------------------------------------------------
  function attentionHeatmap(answer) {
    const source = answer.source_tokens;
    const target = answer.target_tokens;
    const cell = 30;
    const charWidth = 7.5;
    const left = Math.ceil(Math.max(4, ...target.map((t) => t.length)) * charWidth) + 14;
    const top = Math.ceil(Math.max(4, ...source.map((t) => t.length)) * charWidth * 0.75) + 18;
    const width = left + source.length * cell + 4;
    // Shade = sqrt(weight), on the absolute scale: a row spread evenly over 20 tokens (0.05 each) stays pale but
    // visible, and a model that attends nowhere in particular never looks as sure as one that does.
    const strongest = Math.max(0, ...answer.attention.flat());
    const height = top + target.length * cell + 4;
    const map = svg("svg", {
      class: "heatmap",
      width,
      height,
      viewBox: `0 0 ${width} ${height}`,
      role: "img",
      "aria-label": `Attention: ${target.length} English tokens (rows) by ${source.length} Spanish tokens (columns)`,
      "data-rows": target.length,
      "data-cols": source.length,
    });
    source.forEach((token, j) => {
      const x = left + j * cell + cell / 2;
      map.append(svg("text", { x, y: top - 6, transform: `rotate(-50 ${x} ${top - 6})`, class: "axis-label source-token" }, token));
    });
    target.forEach((token, i) => {
      const y = top + i * cell + cell / 2 + 4;
      map.append(svg("text", { x: left - 6, y, "text-anchor": "end", class: "axis-label target-token" }, token));
      answer.attention[i].forEach((weight, j) => {
        const rect = svg("rect", {
          x: left + j * cell,
          y: top + i * cell,
          width: cell - 1,
          height: cell - 1,
          class: "cell",
          fill: `rgba(37, 99, 235, ${Math.max(0.03, Math.sqrt(Math.min(1, Math.max(0, weight)))).toFixed(3)})`,
          "data-row": i,
          "data-col": j,
          "data-weight": String(weight),
        });
        map.append(titled(rect, `“${token}” looked at “${source[j]}”: ${fmt(weight)}`));
      });
    });
    const legend = el("p", { class: "legend" }, el("span", { class: "swatch attention" }),
      ` weight 1 (shade grows with the square root of the weight; the largest here is ${fmt(strongest, 2)}; `
        + "hover a cell for its number)");
    return el("div", {}, el("div", { class: "heatmap-scroll" }, map), legend);
  }

  function strongestAlignments(answer) {
    const list = el("ol", { class: "alignments" });
    answer.target_tokens.forEach((token, i) => {
      const row = answer.attention[i];
      const j = row.indexOf(Math.max(...row));
      list.append(el("li", { text: `${token} ← ${answer.source_tokens[j]} (${fmt(row[j], 2)})` }));
    });
    return el("details", {}, el("summary", { text: "Where each English token looked most" }), list);
  }

  function renderTranslation(answer, response) {
    const out = $("translation-result");
    out.replaceChildren(
      el("p", { class: "verdict" }, "English: ", el("strong", { lang: "en", class: "translation", text: answer.translation })),
      el("p", { class: "hint", text: `score (log-probability per token): ${fmt(answer.score)}` }),
      el("h3", { text: "Attention: where the decoder looked for each English token" }),
      el("p", { class: "hint", text: "Rows: the English tokens it wrote; columns: the Spanish tokens it read. Each row sums to 1." }),
      attentionHeatmap(answer),
      strongestAlignments(answer),
      answeredBy(response, "translation"),
    );
  }

  async function onTranslation(event) {
    event.preventDefault();
    const text = $("translation-text").value;
    const beam = $("translation-beam").value;
    showError("translation-error", "");
    const body = beam ? { text, beam_size: Number(beam) } : { text };
    const button = event.submitter || event.target.querySelector("button");
    button.disabled = true;
    try {
      const response = await postJson("translate/explain", body);
      if (!response.ok) return showError("translation-error", await errorText(response));
      renderTranslation(await response.json(), response);
      refreshSignals();
    } catch (e) {
      showError("translation-error", e && e.message ? e.message : String(e));
    } finally {
      button.disabled = false;
    }
  }

  // -- model cards ----------------------------------------------------------------------------------------------
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
      [task === "sentiment" ? "training classes" : "training domains", counts(data.classes || data.domains)],
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

  async function loadCards() {
    try {
      const response = await fetch("models", { headers: { Accept: "application/json" } });
      if (!response.ok) throw new Error(await errorText(response));
      state.cards = await response.json();
    } catch (e) {
      $("cards").replaceChildren(el("p", { class: "error", text: `Could not load the model cards: ${e.message || e}` }));
      return;
    }
    $("cards").replaceChildren(...TASKS.map((task) => renderCard(task, state.cards[task] || {})));
    for (const task of TASKS) {
      const card = state.cards[task] || {};
      const link = $(`version-${task}`);
      link.textContent = card.model || `not loaded (${card.reason || "unknown"})`;
      link.title = "Open this model's card";
    }
    setBeamOptions(state.cards.translation);
    refreshSignals();
  }

  // -- live input signals ----------------------------------------------------------------------------------
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

  function labelMixFigure(classes, samples, model) {
    const labels = Object.keys(classes || {});
    if (!labels.length) return el("p", { class: "hint", text: "label mix: no training classes in the card" });
    const trainTotal = labels.reduce((a, l) => a + classes[l], 0);
    const live = labels.map((l) => {
      const s = samples.find((x) => x.name === "memoria_predictions_total" && x.labels.task === "sentiment"
        && x.labels.model === model && x.labels.label === l);
      return s ? s.value : 0;
    });
    const liveTotal = live.reduce((a, b) => a + b, 0);
    return comparisonChart("Label mix (training labels · live predictions)", labels,
      labels.map((l) => classes[l] / (trainTotal || 1)), liveTotal ? live.map((v) => v / liveTotal) : null, "texts");
  }

  function renderSignals(samples) {
    const blocks = [];
    for (const task of TASKS) {
      const card = state.cards[task];
      if (!card || !card.model) continue;
      const inputs = (card.data && card.data.inputs) || {};
      const tokens = liveHistogram(samples, "memoria_input_tokens", task, card.model);
      const unknown = liveHistogram(samples, "memoria_unknown_token_share", task, card.model);
      const figure = el("figure", { class: "signals", id: `signals-${task}`, "data-live-texts": String(tokens.total) });
      figure.append(el("figcaption", {},
        el("strong", { text: task }),
        ` · live texts: ${tokens.total}` + (tokens.mean !== null ? `, mean ${fmt(tokens.mean, 1)} tokens` : "")
          + (unknown.mean !== null ? `, ${fmt(unknown.mean * 100, 1)}% unknown` : "")
          + (inputs.texts ? ` · training texts: ${inputs.texts}, mean ${fmt(inputs.mean_tokens, 1)} tokens, `
            + `${fmt(inputs.mean_unknown_share * 100, 1)}% unknown` : "")));
      figure.append(el("p", { class: "legend" }, el("span", { class: "swatch train" }), " training  ",
        el("span", { class: "swatch live" }), " live"));
      figure.append(histogramFigure("Input length (tokens per text)", inputs.tokens, tokens, false, "texts"));
      figure.append(histogramFigure("Unknown-token share per text", inputs.unknown_share, unknown, true, "texts"));
      if (task === "sentiment") figure.append(labelMixFigure(card.data && card.data.classes, samples, card.model));
      blocks.push(figure);
    }
    $("signals").replaceChildren(...(blocks.length ? blocks : [el("p", { text: "No model is loaded yet." })]));
    $("signals-updated").textContent = `Updated ${new Date().toLocaleTimeString()}.`;
  }

  let polling = false;
  async function refreshSignals() {
    if (polling || !Object.keys(state.cards).length) return;
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

  // -- wiring ---------------------------------------------------------------------------------------------------
  document.addEventListener("DOMContentLoaded", () => {
    $("sentiment-form").addEventListener("submit", onSentiment);
    $("translation-form").addEventListener("submit", onTranslation);
    $("token-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const token = $("token-input").value.trim();
      if (!token || !state.pendingToken) return;
      const { resolve } = state.pendingToken;
      closeTokenForm();
      resolve(token);
    });
    $("token-cancel").addEventListener("click", () => {
      const pending = state.pendingToken;
      closeTokenForm();
      if (pending) pending.reject(new Error("An API token is needed for this: none was given."));
    });
    $("token-forget").addEventListener("click", () => setToken(""));
    setToken(state.token);
    loadCards();
    setInterval(() => {
      if (document.visibilityState === "visible") refreshSignals();
    }, POLL_MS);
  });
})();
