// Spanish to English: POST translate/explain, then the translation, the decoder's attention as a heatmap (English
// tokens by Spanish tokens) and where each English token looked most.
import { errorText, postJson } from "./api.js";
import { answeredBy } from "./cards.js";
import { $, el, fmt, showError, svg, titled } from "./dom.js";
import { refreshSignals } from "./signals.js";

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

export async function onTranslation(event) {
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
