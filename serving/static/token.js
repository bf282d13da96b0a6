// The API token: kept in this tab's session storage, asked for (one question at a time) when the service answers
// 401, and the token panel's buttons (use, cancel, forget).
import { $ } from "./dom.js";

const TOKEN_KEY = "memoria.apiToken";

let token = sessionStorage.getItem(TOKEN_KEY) || "";
let pendingToken = null; // {resolve, reject, promise} while the token form is open

export const currentToken = () => token;

export function askForToken(message) {
  $("token-message").textContent = message;
  $("token-panel").hidden = false;
  $("token-input").value = "";
  $("token-input").focus();
  if (!pendingToken) {
    // one question at a time: a second call that needs a token while the form is open waits for the same answer
    let settle;
    const promise = new Promise((resolve, reject) => {
      settle = { resolve, reject };
    });
    pendingToken = { ...settle, promise };
  }
  return pendingToken.promise;
}

function closeTokenForm() {
  $("token-panel").hidden = true;
  pendingToken = null;
}

export function setToken(value) {
  token = value;
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
  $("token-state").hidden = !value;
}

// The token panel's controls; shows "Using an API token" when this tab already holds one.
export function wireTokenForm() {
  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const value = $("token-input").value.trim();
    if (!value || !pendingToken) return;
    const { resolve } = pendingToken;
    closeTokenForm();
    resolve(value);
  });
  $("token-cancel").addEventListener("click", () => {
    const pending = pendingToken;
    closeTokenForm();
    if (pending) pending.reject(new Error("An API token is needed for this: none was given."));
  });
  $("token-forget").addEventListener("click", () => setToken(""));
  setToken(token);
}
