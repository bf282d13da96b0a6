// Calls to the service: POST JSON with the API token (asking for one on 401), and an error response as one line.
// Paths are relative (resolved against the page, not this file), so a proxy's path prefix keeps working.
import { askForToken, currentToken, setToken } from "./token.js";

// POST JSON; on 401 ask for a token (again, if the one sent was refused) and retry with it.
export async function postJson(path, body) {
  for (;;) {
    const headers = { "Content-Type": "application/json" };
    if (currentToken()) headers.Authorization = `Bearer ${currentToken()}`;
    const response = await fetch(path, { method: "POST", headers, body: JSON.stringify(body) });
    if (response.status !== 401) return response;
    const refused = Boolean(currentToken());
    setToken("");
    const token = await askForToken(
      refused
        ? "That token was refused. Enter the service's API token (its MEMORIA_API_TOKEN)."
        : "This service asks for an API token (its MEMORIA_API_TOKEN) on the explain endpoints.",
    );
    setToken(token);
  }
}

export async function errorText(response) {
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
