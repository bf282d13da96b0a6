// Sentiment of a tweet: POST sentiment/explain, then the label, a bar per label's probability, the text with each
// token shaded by how much it moved the predicted label, and the contributions as a table.
import { errorText, postJson } from "./api.js";
import { answeredBy } from "./cards.js";
import { $, el, fmt, showError, signed, svg, titled } from "./dom.js";
import { refreshSignals } from "./signals.js";

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

export async function onSentiment(event) {
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
