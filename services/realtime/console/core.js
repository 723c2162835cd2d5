/*
 * The admin console: plain JavaScript on the official socket.io-client.
 *
 * The page is a few classic scripts, one per screen, loaded in order by index.html (the CSP allows
 * same-origin scripts only, so no bundler or module loader is needed). They share one global scope:
 * this file holds the session, the socket, REST and the DOM helpers; each screen file registers
 * itself with `screen({...})` and is called to load, render, reset and hear notifications.
 *
 * - Everything shown is set with textContent (never innerHTML): names, emails and error
 *   texts come from users and must render as text. The server's CSP forbids inline scripts.
 * - The session lives in memory (access token) and in sessionStorage (refresh token), so a
 *   reload keeps the admin signed in. Not localStorage: refresh tokens rotate with reuse
 *   detection, and two tabs sharing one would end the session the moment both refreshed.
 * - The access token is renewed before it expires (POST /auth/refresh) and handed to the live
 *   socket with `auth:refresh`; if the server ends the socket anyway (expired, refused), the
 *   console renews the token and reconnects with it.
 * - On reconnect the socket sends the last sequence number it saw per room, so the realtime
 *   service replays what was missed; `resync` (too much missed) reloads the lists over REST.
 * - Notifications are de-duplicated by event id (an admin's own order arrives in two rooms).
 */
"use strict";

const REFRESH_KEY = "shop.console.refresh";
const NOTIFICATIONS = [
  "order:created", "order:statusUpdated", "order:fulfilled", "return:updated",
  "payment:succeeded", "payment:failed", "payment:refunded",
  "category:added", "category:updated", "category:deleted", "product:added", "product:updated",
  "product:deleted", "stock:updated", "user:registered",
  "promotion:added", "promotion:updated", "promotion:deleted", "promotion:claimed", "promotion:released",
  "shippingZone:added", "shippingZone:updated", "shippingZone:deleted",
  "taxRate:added", "taxRate:updated", "taxRate:deleted", "webhook:disabled", "settings:stockUpdated",
];
// mirrors the orders service's status machine to offer the right buttons; the service decides
const $ = (sel, root) => (root || document).querySelector(sel);
const state = {
  access: null, refresh: sessionStorage.getItem(REFRESH_KEY), user: null,
  socket: null, renewAt: 0, refreshing: null, authFailures: 0, loaded: false,
  lastSeq: {}, seen: new Set(), seenOrder: [],
};
// the screens, in page order, each method optional: { name, boot(), load(), render(), apply(event, data, payload),
// reset() (what was loaded is stale: signed out, or the server said to resync), end() (signed out) }
const screens = [];
function screen(s) {
  screens.push(s);
  return s;
}
function eachScreen(method, ...args) {
  for (const s of screens) {
    if (typeof s[method] !== "function") continue;
    try {
      s[method](...args);
    } catch (err) {
      console.error("screen " + s.name + "." + method, err); // eslint-disable-line no-console
    }
  }
}
class ApiError extends Error {
  constructor(status, problem, retryAfter) {
    super((problem && (problem.detail || problem.title)) || "Request failed (" + status + ")");
    this.status = status;
    this.problem = problem || {};
    this.retryAfter = retryAfter;
  }
}
class SessionEnded extends Error {}

// ---- small DOM helpers (text only) ------------------------------------------------------
function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null) continue;
    if (key === "text") node.textContent = String(value);
    else if (key === "className") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key === "on") for (const [ev, fn] of Object.entries(value)) node.addEventListener(ev, fn);
    else node.setAttribute(key, String(value));
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}
const shortId = (id) => "#" + String(id || "").slice(0, 8);
const label = (status) => String(status || "").replace(/_/g, " ");

function fractionDigits(currency) {
  try {
    return new Intl.NumberFormat("en", { style: "currency", currency: currency || "USD" })
      .resolvedOptions().maximumFractionDigits;
  } catch (_) {
    return 2;
  }
}
function money(amount, currency) {
  if (typeof amount !== "number") return "";
  const cur = String(currency || "USD").toUpperCase();
  try {
    return new Intl.NumberFormat(undefined, { style: "currency", currency: cur })
      .format(amount / 10 ** fractionDigits(cur));
  } catch (_) {
    return amount + " " + cur;
  }
}
// "19.99" -> 1999 in minor units; anything else goes to the server as typed, which says what is wrong
function toMinor(text, currency) {
  const digits = fractionDigits(currency);
  const m = /^(\d+)(?:[.,](\d+))?$/.exec(text.trim());
  if (!m || (m[2] || "").length > digits) return text.trim();
  return Number(m[1]) * 10 ** digits + Number((m[2] || "").padEnd(digits, "0") || 0);
}
function fromMinor(amount, currency) {
  const digits = fractionDigits(currency);
  return typeof amount === "number" ? (amount / 10 ** digits).toFixed(digits) : "";
}
function clock(iso) {
  const d = iso ? new Date(iso) : new Date();
  return isNaN(d) ? "" : d.toLocaleTimeString();
}
function when(iso) {
  const d = new Date(iso);
  if (isNaN(d)) return "";
  return d.toDateString() === new Date().toDateString() ? d.toLocaleTimeString() : d.toLocaleString();
}
function requestId() {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// ---- people: customers' names and e-mails by id, from auth's admin list, asked in batches ----
const people = new Map();
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
async function knowPeople(ids) {
  const wanted = [...new Set(ids)].filter((id) => UUID.test(String(id || "")) && !people.has(id));
  for (let i = 0; i < wanted.length; i += 100) {
    const params = new URLSearchParams({ page_size: "100" });
    for (const id of wanted.slice(i, i + 100)) params.append("id", id);
    const page = await api("/admin/users?" + params);
    for (const u of page.items) people.set(u.id, u);
  }
}
// a person as the console shows them: name and e-mail (the id until auth has answered)
function personCell(id) {
  const u = people.get(id);
  if (!u) return el("span", { className: "mono", title: id, text: UUID.test(String(id || "")) ? shortId(id) : id });
  return el("span", { className: "person", title: id },
    el("span", { className: "person-name", text: u.name }), el("span", { className: "muted person-email", text: u.email }));
}

// ---- dialogs: the detail views, stacked (an order opened from a customer); Escape closes the top one.
// Handled here rather than left to the browser, whose Escape may be ignored after a re-render moved focus.
let dialogsOpened = 0;
function showDialog(dialog) {
  if (dialog.open) return;
  dialog.dataset.opened = String(++dialogsOpened);
  dialog.showModal();
}
document.addEventListener("keydown", (event) => {
  if (event.key !== "Escape") return;
  const top = [...document.querySelectorAll("dialog[open]")]
    .sort((a, b) => Number(b.dataset.opened || 0) - Number(a.dataset.opened || 0))[0];
  if (!top) return;
  event.preventDefault();
  top.close();
});

// re-renders a list without losing the keyboard's place: the focused control of a row (found
// again by the row's data key and the control's class) is focused again in the new row
function keepFocus(container, key, render) {
  const active = document.activeElement;
  const row = active && container.contains(active) ? active.closest("tr, li") : null;
  const id = row && row.dataset[key];
  const cls = active && active.classList && active.classList[active.classList.length - 1];
  render();
  if (!id || !cls || container.contains(active)) return;
  const again = container.querySelector("[data-" + key.replace(/[A-Z]/g, (m) => "-" + m.toLowerCase()) + '="'
    + CSS.escape(id) + '"] .' + CSS.escape(cls));
  if (again) again.focus();
}

// ---- REST -------------------------------------------------------------------------------
async function api(path, { method = "GET", body, token, retry = true } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const bearer = token === undefined ? state.access : token;
  if (bearer) headers.Authorization = "Bearer " + bearer;
  let resp;
  try {
    resp = await fetch(path, {
      method, headers, cache: "no-store", credentials: "omit",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (_) {
    throw new ApiError(0, { title: "Network error", detail: "The shop could not be reached; check the connection." });
  }
  if (resp.status === 401 && token === undefined && bearer && retry) {
    await refreshTokens();
    return api(path, { method, body, retry: false });
  }
  const text = await resp.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch (_) { data = null; }
  }
  if (!resp.ok) throw new ApiError(resp.status, data, resp.headers.get("Retry-After"));
  return data;
}

// ---- session ----------------------------------------------------------------------------
function setTokens(tokens) {
  state.access = tokens.access_token;
  state.refresh = tokens.refresh_token;
  sessionStorage.setItem(REFRESH_KEY, tokens.refresh_token);
  const life = Number(tokens.expires_in) || 900;
  // renew a minute early (a fifth early for short-lived tokens)
  state.renewAt = Date.now() + Math.max(1, life - Math.min(60, life / 5)) * 1000;
}

function refreshTokens() {
  if (!state.refreshing) {
    state.refreshing = (async () => {
      if (!state.refresh) throw new SessionEnded("Sign in to continue.");
      try {
        setTokens(await api("/auth/refresh", { method: "POST", body: { refresh_token: state.refresh }, token: null }));
      } catch (err) {
        if (err.status >= 400 && err.status < 500 && err.status !== 429) {
          throw new SessionEnded("Your session has ended; sign in again.");
        }
        throw err;
      }
    })().finally(() => { state.refreshing = null; });
  }
  return state.refreshing;
}

async function renewSession() {
  try {
    await refreshTokens();
  } catch (err) {
    if (err instanceof SessionEnded) return endSession(err.message);
    state.renewAt = Date.now() + 10000; // shop unreachable: try again soon
    return;
  }
  const socket = state.socket;
  if (socket && socket.connected) {
    const id = socket.id;
    const ack = await socket.timeout(10000).emitWithAck("auth:refresh", { token: state.access }).catch(() => null);
    // a connection made meanwhile (e.g. after a laptop slept) already carried the fresh token
    if ((!ack || !ack.ok) && socket.id === id) {
      socket.disconnect();
      socket.connect(); // the auth callback hands over the fresh token
    }
  }
}

async function signIn(email, password) {
  const error = $("#signin-error");
  error.textContent = "";
  error.className = "error";
  if (!email || !password) {
    error.textContent = "Enter your email and password.";
    return;
  }
  let tokens;
  try {
    tokens = await api("/auth/login", { method: "POST", body: { email, password }, token: null });
  } catch (err) {
    error.textContent = {
      401: "Wrong email or password.",
      404: "Sign-in is not available here: open the console through the gateway (port 8000), at /console/.",
      422: "Enter a valid email address and your password.",
      429: "Too many attempts; try again in " + (err.retryAfter || "a few") + " seconds.",
    }[err.status] || err.message;
    return;
  }
  let me;
  try {
    me = await api("/users/me", { token: tokens.access_token });
  } catch (err) {
    error.textContent = err.message;
    return;
  }
  if (me.role !== "admin") {
    // do not leave a session behind that the console will never use
    api("/auth/logout", { method: "POST", token: tokens.access_token }).catch(() => {});
    error.textContent = "This account is not an admin: the console is for shop admins only.";
    return;
  }
  setTokens(tokens);
  start(me);
}

async function resume() {
  try {
    await refreshTokens();
    const me = await api("/users/me");
    if (me.role !== "admin") throw new SessionEnded("This account is no longer an admin.");
    start(me);
  } catch (err) {
    if (err instanceof SessionEnded) return endSession(err.message);
    // the shop is unreachable for now: keep the session and try again
    showBanner("Cannot reach the shop (" + err.message + "); trying again in a few seconds.");
    setTimeout(resume, 5000);
  }
}

function showBanner(...parts) {
  const banner = $("#banner");
  banner.replaceChildren(...parts);
  banner.hidden = false;
}

function endSession(message, isError = true) {
  if (state.socket) {
    state.socket.removeAllListeners();
    state.socket.io.removeAllListeners();
    state.socket.disconnect();
    state.socket = null;
  }
  Object.assign(state, { access: null, refresh: null, user: null, renewAt: 0, loaded: false, lastSeq: {},
    authFailures: 0 });
  sessionStorage.removeItem(REFRESH_KEY);
  eachScreen("reset");
  eachScreen("end");
  setConn("offline");
  $("#app-view").hidden = true;
  $("#signout").hidden = true;
  $("#who").textContent = "";
  $("#signin-view").hidden = false;
  const line = $("#signin-error");
  line.textContent = message || "";
  line.className = isError ? "error" : "muted";
}

function start(me) {
  state.user = me;
  $("#banner").hidden = true;
  $("#signin-view").hidden = true;
  $("#app-view").hidden = false;
  $("#signout").hidden = false;
  $("#who").textContent = me.email;
  eachScreen("render");
  openSocket();
}

// ---- socket -----------------------------------------------------------------------------
function setConn(status) {
  const box = $("#conn");
  box.className = "conn conn-" + status;
  $("#conn-text").textContent = status;
}

function openSocket() {
  const socket = io({
    path: "/socket.io/",
    // called at every (re)connect: always the current token and what was seen so far
    auth: (cb) => cb(Object.keys(state.lastSeq).length
      ? { token: state.access, last_seq: { ...state.lastSeq } } : { token: state.access }),
    reconnectionDelay: 1000, reconnectionDelayMax: 10000, timeout: 10000,
  });
  state.socket = socket;
  setConn("reconnecting");
  socket.on("connect", () => {
    state.authFailures = 0;
    setConn("connected");
    if (!state.loaded) loadAll();
  });
  socket.on("disconnect", (reason) => {
    if (reason === "io client disconnect") return;
    setConn(navigator.onLine ? "reconnecting" : "offline");
    if (reason === "io server disconnect") recover(true); // the server does not want this token any more
  });
  socket.on("connect_error", (err) => {
    const status = err && err.data && err.data.status;
    if (status === 401) return recover(true);
    setConn(navigator.onLine ? "reconnecting" : "offline");
    // refused for another reason (e.g. 503 while the token cannot be checked): the client
    // does not retry a refusal by itself
    if (!socket.active) setTimeout(() => { if (state.socket === socket && !socket.active) socket.connect(); }, 5000);
  });
  socket.io.on("reconnect_attempt", () => setConn("reconnecting"));
  socket.io.on("reconnect_failed", () => setConn("offline"));
  socket.on("session:ended", (p) => note("session", (p && p.reason) || "The server ended the live connection."));
  // more was missed than the server keeps: start the lists afresh
  socket.on("resync", () => {
    eachScreen("reset");
    loadAll();
  });
  // where each room stood when this connection joined it: resumable after a drop before anything was heard there
  socket.on("rooms:joined", (p) => {
    for (const [room, seq] of Object.entries((p && p.rooms) || {})) {
      if (Number.isInteger(seq)) state.lastSeq[room] = Math.max(state.lastSeq[room] || 0, seq);
    }
  });
  for (const name of NOTIFICATIONS) socket.on(name, (payload) => onNotification(name, payload));
}

// a fresh token, then connect again; `refused`: the server turned this token away
async function recover(refused = false) {
  const socket = state.socket;
  if (!socket) return;
  setConn("reconnecting");
  if (refused && ++state.authFailures > 3) {
    return endSession("The live connection keeps being refused; sign in again.");
  }
  try {
    await refreshTokens();
  } catch (err) {
    if (err instanceof SessionEnded) return endSession(err.message);
    setTimeout(recover, 5000);
    return;
  }
  if (state.socket === socket && !socket.connected) socket.connect();
}

async function command(name, payload, form) {
  const socket = state.socket;
  if (!socket || !socket.connected) {
    return { ok: false, error: { status: 0, title: "Offline", detail: "Not connected: wait for the connection to come back." } };
  }
  // a resend of the same unanswered form keeps its request id: the server answers it once
  let id = requestId();
  if (form) {
    const key = name + JSON.stringify(payload);
    if (form.pending && form.pending.key === key) id = form.pending.id;
    form.pending = { key, id };
  }
  try {
    const ack = await socket.timeout(15000).emitWithAck(name, { ...payload, request_id: id });
    if (form) form.pending = null;
    return ack && typeof ack === "object" ? ack : { ok: false, error: { status: 0, detail: "Unexpected answer." } };
  } catch (_) {
    return { ok: false, error: { status: 504, title: "No answer", detail: "No answer from the server yet; press again to retry safely." } };
  }
}


// ---- loading ----------------------------------------------------------------------------
// every screen loads side by side; one that fails is loaded again at the next connect
async function loadAll() {
  state.loaded = true;
  const results = await Promise.allSettled(screens.map((s) => (s.load ? s.load() : null)));
  if (results.some((r) => r.status === "rejected" || r.value === false)) state.loaded = false;
}

// ---- notifications ----------------------------------------------------------------------
function onNotification(name, payload) {
  if (!payload || typeof payload !== "object") return;
  if (typeof payload.room === "string" && Number.isInteger(payload.seq)) {
    state.lastSeq[payload.room] = Math.max(state.lastSeq[payload.room] || 0, payload.seq);
  }
  if (payload.event_id) {
    if (state.seen.has(payload.event_id)) return;
    state.seen.add(payload.event_id);
    state.seenOrder.push(payload.event_id);
    if (state.seenOrder.length > 5000) state.seen.delete(state.seenOrder.shift());
  }
  const data = payload.data && typeof payload.data === "object" ? payload.data : {};
  eachScreen("apply", name, data, payload);
}

// a danger button that acts only on a second click within four seconds (deleting, revoking,
// refunding): the first arms it and says what the second will do. `act` answers whether it went
// through; when it did not, the button is usable again and back to what it said, so trying again
// takes two clicks again
function armedButton(idle, confirm, act) {
  const button = el("button", { type: "button", className: "small danger", text: idle });
  let timer = null;
  const disarm = () => {
    clearTimeout(timer);
    button.classList.remove("armed");
    button.textContent = idle;
  };
  button.addEventListener("click", async () => {
    if (!button.classList.contains("armed")) {
      button.classList.add("armed");
      button.textContent = confirm;
      timer = setTimeout(disarm, 4000);
      return;
    }
    clearTimeout(timer);
    button.disabled = true;
    if (!(await act())) {
      button.disabled = false;
      disarm();
    }
  });
  return button;
}

// `forget` drops the item from its screen once the server agreed
function deleteButton(name, id, errorLine, forget) {
  return armedButton("Delete", "Confirm", async () => {
    const ack = await command(name, { id });
    const line = $(errorLine);
    if (!ack.ok) {
      line.textContent = ack.error.detail || ack.error.title || "Refused.";
      return false;
    }
    line.textContent = "";
    forget();
    eachScreen("render");
    return true;
  });
}

// ---- forms ------------------------------------------------------------------------------
function clearErrors(form) {
  for (const slot of form.querySelectorAll("[data-error-for]")) slot.textContent = "";
  for (const input of form.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
}

// each validation error goes next to its field; what has no field goes under the form
function showErrors(form, error) {
  const general = [];
  for (const e of error.errors || []) {
    const field = String(e.field || "").split(".")[0];
    const slot = field && form.querySelector('[data-error-for="' + CSS.escape(field) + '"]');
    if (slot && field !== "_form") {
      const message = humanMessage(e);
      // one line per problem: the same words twice (two rules on one field) read as one
      if (!slot.textContent.includes(message)) slot.textContent = slot.textContent ? slot.textContent + " " + message : message;
      const input = form.elements.namedItem(field);
      if (input) input.setAttribute("aria-invalid", "true");
    } else {
      general.push(humanMessage(e));
    }
  }
  const head = error.detail || error.title || "Refused.";
  form.querySelector('[data-error-for="_form"]').textContent = [head, ...general].join(" ");
}

function setMode(form, id, noun) {
  form.dataset.editing = id || "";
  form.classList.toggle("editing", Boolean(id));
  form.querySelector('[data-role="submit"]').textContent = (id ? "Save " : "Add ") + noun;
  form.querySelector('[data-role="cancel"]').hidden = !id;
  clearErrors(form);
  if (!id) form.reset();
}

function bindForm(form, noun, payloadOf, onSaved) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    const id = form.dataset.editing;
    const payload = payloadOf(form, Boolean(id));
    const submit = form.querySelector('[data-role="submit"]');
    submit.disabled = true;
    const ack = await command(noun + (id ? ":update" : ":add"), id ? { id, ...payload } : payload, form);
    submit.disabled = false;
    if (!ack.ok) return showErrors(form, ack.error);
    onSaved(ack.data);
    setMode(form, null, noun);
  });
  form.querySelector('[data-role="cancel"]').addEventListener("click", () => setMode(form, null, noun));
}

const text = (form, name) => form.elements.namedItem(name).value.trim();
// numbers typed as numbers; anything else is sent as typed and the server says what is wrong
const integer = (value) => (/^-?\d+$/.test(value) ? Number(value) : value);

// ---- start ------------------------------------------------------------------------------
function boot() {
  if (typeof window.io !== "function") {
    showBanner("The live client (socket.io-client) is not built, so the console cannot connect. Build it with ",
      el("code", { text: "make console" }), " (it runs ", el("code", { text: "npm install" }),
      " in services/realtime/console), then reload this page.");
    $("#signin-view").hidden = false;
    for (const control of $("#signin-form").elements) control.disabled = true;
    return;
  }
  $("#signin-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.currentTarget;
    const button = form.querySelector('button[type="submit"]');
    button.disabled = true;
    try {
      await signIn(text(form, "email"), form.elements.namedItem("password").value);
    } finally {
      button.disabled = false;
    }
  });
  $("#signout").addEventListener("click", async () => {
    await api("/auth/logout", { method: "POST", retry: false }).catch(() => {});
    endSession("Signed out.", false);
  });
  eachScreen("boot");
  window.addEventListener("offline", () => setConn("offline"));
  window.addEventListener("online", () => { if (state.socket && !state.socket.connected) state.socket.connect(); });
  // a hidden tab's timers run late: catch up when the admin comes back to it
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && state.socket && !state.socket.active) state.socket.connect();
  });
  // the renewal is checked against the wall clock every few seconds rather than set as one long
  // timer: a sleeping laptop or a throttled background tab would fire that one too late
  setInterval(() => {
    if (state.access && state.renewAt && Date.now() >= state.renewAt && !state.refreshing) renewSession();
  }, 5000);
  if (state.refresh) resume();
  else $("#signin-view").hidden = false;
}

// after every screen's script has run (they come after this one in index.html)
document.addEventListener("DOMContentLoaded", boot);
