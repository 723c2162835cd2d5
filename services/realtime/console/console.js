/*
 * The admin console: plain JavaScript on the official socket.io-client.
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
(function () {
  "use strict";

  const REFRESH_KEY = "shop.console.refresh";
  const NOTIFICATIONS = [
    "order:created", "order:statusUpdated", "order:fulfilled", "return:updated",
    "payment:succeeded", "payment:failed", "payment:refunded",
    "category:added", "category:updated", "category:deleted", "product:added", "product:updated",
    "product:deleted", "stock:updated", "user:registered",
    "promotion:added", "promotion:updated", "promotion:deleted", "promotion:claimed", "promotion:released",
    "shippingZone:added", "shippingZone:updated", "shippingZone:deleted",
    "taxRate:added", "taxRate:updated", "taxRate:deleted",
  ];
  // mirrors the orders service's status machine to offer the right buttons; the service decides
  const NEXT = {
    pending_payment: ["paid", "cancelled"], paid: ["processing", "cancelled"],
    processing: ["shipped", "cancelled"], shipped: ["delivered"], delivered: [], cancelled: [],
  };
  const FEED_MAX = 300;
  const ORDERS_MAX = 200;

  const $ = (sel, root) => (root || document).querySelector(sel);
  const state = {
    access: null, refresh: sessionStorage.getItem(REFRESH_KEY), user: null,
    socket: null, renewAt: 0, refreshing: null, authFailures: 0, loaded: false,
    lastSeq: {}, seen: new Set(), seenOrder: [],
    orders: new Map(), categories: new Map(), products: new Map(), productsTotal: 0, promotions: new Map(),
    emails: [], emailsTotal: 0, emailsTimer: null,
  };
  // the events after which notifications mails a customer: the e-mail list is reloaded shortly after
  const MAILING = new Set(["user:registered", "order:statusUpdated", "order:fulfilled", "return:updated", "payment:refunded"]);

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
      authFailures: 0, productsTotal: 0 });
    sessionStorage.removeItem(REFRESH_KEY);
    for (const map of [state.orders, state.categories, state.products, state.promotions]) map.clear();
    $("#feed").replaceChildren();
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
    renderAll();
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
      for (const map of [state.orders, state.categories, state.products, state.promotions]) map.clear();
      state.productsTotal = 0;
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
  async function loadAll() {
    state.loaded = true;
    $("#orders-error").textContent = "";
    $("#catalog-error").textContent = "";
    $("#promotions-error").textContent = "";
    const [orders, categories, products, promotions] = await Promise.allSettled([
      api("/admin/orders?page_size=50"), api("/categories?flat=true"), api("/products?page_size=100&sort=newest"),
      api("/admin/promotions?page_size=100"),
    ]);
    if (promotions.status === "fulfilled") for (const p of promotions.value.items) upsertPromotion(p);
    else $("#promotions-error").textContent = "Could not load the promotions: " + promotions.reason.message;
    if (orders.status === "fulfilled") for (const o of orders.value.items) upsertOrder(fromRest(o));
    else $("#orders-error").textContent = "Could not load the orders: " + orders.reason.message;
    if (categories.status === "fulfilled") for (const c of categories.value) upsertCategory(c);
    if (products.status === "fulfilled") {
      for (const p of products.value.items) upsertProduct(p);
      state.productsTotal = Math.max(products.value.total, state.products.size);
    }
    const failed = [categories, products].find((r) => r.status === "rejected");
    if (failed) $("#catalog-error").textContent = "Could not load the catalog: " + failed.reason.message;
    if (orders.status === "rejected" || failed) state.loaded = false; // try again at the next connect
    renderAll();
    loadEmails();
  }

  async function loadEmails() {
    try {
      const page = await api("/admin/emails?page_size=20");
      state.emails = page.items || [];
      state.emailsTotal = page.total || 0;
      $("#emails-error").textContent = "";
    } catch (err) {
      $("#emails-error").textContent = "Could not load the e-mails: " + err.message;
    }
    renderEmails();
  }

  function reloadEmailsSoon() {
    // the mail is made when notifications handles the same event, a moment after this socket hears it
    clearTimeout(state.emailsTimer);
    state.emailsTimer = setTimeout(loadEmails, 1500);
  }

  function renderEmails() {
    const items = state.emails;
    $("#emails-count").textContent = state.emailsTotal ? "(" + state.emailsTotal + ")" : "";
    $("#emails-empty").hidden = items.length > 0;
    $("#emails-body").replaceChildren(...items.map((m) => el("tr", { dataset: { emailId: m.id } },
      el("td", { text: new Date(m.created_at).toLocaleString() }),
      el("td", { title: m.to_name || "", text: m.to }),
      el("td", { text: m.subject }),
      el("td", { dataset: { role: "status" }, title: m.last_error || "", text: m.status }),
      el("td", { className: "num", text: m.attempts }))));
  }

  function fromRest(o) {
    return { id: o.id, user_id: o.user_id, status: o.status, items: o.items || [], total: o.total,
      currency: o.currency, created_at: o.created_at, changed: Date.parse(o.updated_at) || 0 };
  }

  // newer wins: a REST answer may be older than a notification that overtook it
  function upsertOrder(order) {
    const known = state.orders.get(order.id);
    if (known && known.changed > order.changed) return known;
    state.orders.set(order.id, { ...known, ...order });
    if (state.orders.size > ORDERS_MAX) {
      const oldest = [...state.orders.values()].sort((a, b) => Date.parse(a.created_at) - Date.parse(b.created_at))[0];
      state.orders.delete(oldest.id);
    }
    return state.orders.get(order.id);
  }
  function upsertCategory(c) {
    state.categories.set(c.id, { ...state.categories.get(c.id), ...c });
  }
  function upsertProduct(p) {
    const known = state.products.get(p.id);
    if (known && typeof known.version === "number" && typeof p.version === "number" && known.version > p.version) return;
    if (p.deleted || p.deleted_at) return removeProduct(p.id);
    if (!known) state.productsTotal += 1;
    state.products.set(p.id, { ...known, ...p });
  }
  function upsertPromotion(p) {
    const known = state.promotions.get(p.id);
    if (known && typeof known.version === "number" && typeof p.version === "number" && known.version > p.version) return;
    if (p.deleted) return state.promotions.delete(p.id);
    state.promotions.set(p.id, { ...known, ...p });
  }
  function removeProduct(id) {
    if (state.products.delete(id)) state.productsTotal = Math.max(0, state.productsTotal - 1);
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
    apply(name, data);
    addToFeed(name, data, payload);
    if (MAILING.has(name)) reloadEmailsSoon();
  }

  function apply(name, d) {
    switch (name) {
      case "order:created":
        upsertOrder({ id: d.order_id, user_id: d.user_id, status: d.status || "pending_payment", items: d.items || [],
          total: d.total, currency: d.currency, created_at: d.created_at, changed: Date.parse(d.created_at) || 0 });
        renderOrders(d.order_id);
        break;
      case "order:statusUpdated": {
        const known = state.orders.get(d.order_id);
        if (known) {
          upsertOrder({ ...known, status: d.to, changed: Date.parse(d.at) || Date.now() });
          renderOrders(d.order_id);
        } else {
          api("/admin/orders/" + encodeURIComponent(d.order_id))
            .then((o) => { upsertOrder(fromRest(o)); renderOrders(o.id); }).catch(() => {});
        }
        break;
      }
      case "payment:refunded": {
        const known = state.orders.get(d.order_id);
        if (known) { known.refunded = true; renderOrders(d.order_id); }
        break;
      }
      case "category:added": case "category:updated":
        upsertCategory(d);
        renderCategories();
        renderProducts();
        break;
      case "category:deleted":
        state.categories.delete(d.id);
        renderCategories();
        break;
      case "product:added": case "product:updated":
        upsertProduct(d);
        renderProducts();
        break;
      case "product:deleted":
        removeProduct(d.id);
        renderProducts();
        break;
      case "promotion:added": case "promotion:updated":
        upsertPromotion(d);
        renderPromotions();
        break;
      case "promotion:deleted":
        state.promotions.delete(d.id);
        renderPromotions();
        break;
      case "promotion:claimed": case "promotion:released": {
        const p = state.promotions.get(d.promotion_id);
        if (p && typeof d.times_used === "number") {
          p.times_used = d.times_used;
          renderPromotions();
        }
        break;
      }
      case "stock:updated": {
        const p = state.products.get(d.product_id);
        if (p && !(typeof p.version === "number" && p.version > d.version)) {
          Object.assign(p, { stock: d.stock, version: d.version });
          renderProducts();
        }
        break;
      }
    }
  }

  function productName(id) {
    const p = state.products.get(id);
    return p ? "\u201c" + p.name + "\u201d" : "product " + shortId(id);
  }

  function sentence(name, d) {
    const order = "order " + shortId(d.order_id);
    switch (name) {
      case "order:created": {
        const count = (d.items || []).reduce((n, i) => n + (i.quantity || 0), 0);
        return "New " + order + ": " + count + (count === 1 ? " item, " : " items, ") + money(d.total, d.currency) + ".";
      }
      case "order:statusUpdated":
        return "Order " + shortId(d.order_id) + " moved from " + label(d.from) + " to " + label(d.to)
          + (d.reason ? " (" + d.reason + ")" : "") + ".";
      case "order:fulfilled": {
        const f = d.fulfillment || {};
        return "Order " + shortId(d.order_id) + " shipped" + (f.carrier ? " with " + f.carrier : "")
          + (f.tracking_number ? " (tracking " + f.tracking_number + ")" : "") + ".";
      }
      case "return:updated": {
        const units = (d.items || []).reduce((n, i) => n + (i.quantity || 0), 0);
        return "Return of " + units + (units === 1 ? " item" : " items") + " from " + order + " " + label(d.status)
          + (d.refund_amount != null && (d.status === "received" || d.status === "refunded")
            ? " (" + money(d.refund_amount, d.currency) + ")" : "") + ".";
      }
      case "payment:succeeded": return "Payment of " + money(d.amount, d.currency) + " received for " + order + ".";
      case "payment:failed": return "Payment failed for " + order + (d.reason ? ": " + d.reason : "") + ".";
      case "payment:refunded": return "Refunded " + money(d.amount, d.currency) + " for " + order + ".";
      case "category:added": return "Category \u201c" + d.name + "\u201d added.";
      case "category:updated": return "Category \u201c" + d.name + "\u201d updated.";
      case "category:deleted": return "Category \u201c" + (d.name || shortId(d.id)) + "\u201d deleted.";
      case "product:added": return "Product \u201c" + d.name + "\u201d added at " + money(d.price, d.currency) + ".";
      case "product:updated": return "Product \u201c" + d.name + "\u201d updated.";
      case "product:deleted": return "Product \u201c" + (d.name || shortId(d.id)) + "\u201d deleted.";
      case "stock:updated": return "Stock of " + productName(d.product_id) + " is now " + d.stock + ".";
      case "user:registered": return "New customer " + (d.name || "") + " <" + (d.email || "?") + "> registered.";
      case "promotion:added": return "Promotion \u201c" + d.name + "\u201d added" + (d.code ? " (code " + d.code + ")." : ".");
      case "promotion:updated": return "Promotion \u201c" + d.name + "\u201d updated.";
      case "promotion:deleted": return "Promotion \u201c" + d.name + "\u201d deleted.";
      case "promotion:claimed":
        return (d.code ? "Code " + d.code : "A promotion") + " took " + money(d.amount, d.currency) + " off " + order
          + " (" + d.times_used + (d.usage_limit ? " of " + d.usage_limit : "") + " used).";
      case "promotion:released": return (d.code ? "Code " + d.code : "A promotion") + " given back by " + order + ".";
      case "shippingZone:added": case "shippingZone:updated": case "shippingZone:deleted":
        return "Shipping zone \u201c" + d.name + "\u201d " + name.split(":")[1] + ".";
      case "taxRate:added": case "taxRate:updated": case "taxRate:deleted":
        return "Tax rate \u201c" + d.name + "\u201d (" + (d.rate_bp / 100) + "%, " + d.country
          + (d.region ? "-" + d.region : "") + ") " + name.split(":")[1] + ".";
      default: return name;
    }
  }

  function addToFeed(name, data, payload) {
    const feed = $("#feed");
    feed.prepend(el("li", { className: "fresh", dataset: { event: name, eventId: payload.event_id || "" } },
      el("time", { datetime: payload.occurred_at, title: payload.occurred_at, text: clock(payload.occurred_at) }),
      el("span", { className: "tag", text: name }),
      el("span", { className: "text", text: sentence(name, data) })));
    while (feed.children.length > FEED_MAX) feed.lastElementChild.remove();
    $("#feed-empty").hidden = true;
  }

  function note(tag, text) {
    addToFeed(tag, {}, { occurred_at: new Date().toISOString() });
    $("#feed").firstElementChild.lastElementChild.textContent = text;
  }

  // ---- rendering --------------------------------------------------------------------------
  function renderAll() {
    renderOrders();
    renderCategories();
    renderProducts();
    renderPromotions();
    $("#feed-empty").hidden = $("#feed").children.length > 0;
  }

  function renderOrders(flashId) {
    const rows = [...state.orders.values()].sort((a, b) => Date.parse(b.created_at) - Date.parse(a.created_at));
    $("#orders-body").replaceChildren(...rows.map((o) => orderRow(o, o.id === flashId)));
    $("#orders-empty").hidden = rows.length > 0;
    $("#orders-count").textContent = rows.length ? "(" + rows.length + ")" : "";
  }

  function orderRow(o, flash) {
    const items = (o.items || []).map((i) => i.quantity + " \u00d7 " + i.name).join(", ");
    const problem = el("span", { className: "row-error", role: "alert" });
    const moves = el("div", { className: "moves" });
    for (const to of NEXT[o.status] || []) {
      const button = el("button", { type: "button", className: "small" + (to === "cancelled" ? " danger" : ""),
        dataset: { status: to }, text: to === "cancelled" ? "cancel" : label(to) });
      button.addEventListener("click", async () => {
        // cancelling may refund: it takes a second click
        if (to === "cancelled" && !button.classList.contains("armed")) {
          button.classList.add("armed");
          button.textContent = "confirm cancel";
          setTimeout(() => { button.classList.remove("armed"); button.textContent = "cancel"; }, 4000);
          return;
        }
        for (const b of moves.querySelectorAll("button")) b.disabled = true;
        problem.textContent = "";
        const ack = await command("order:updateStatus", { order_id: o.id, status: to });
        if (ack.ok) {
          upsertOrder(fromRest(ack.data));
          renderOrders(o.id);
        } else {
          for (const b of moves.querySelectorAll("button")) b.disabled = false;
          problem.textContent = ack.error.detail || ack.error.title || "Refused.";
        }
      });
      moves.append(button);
    }
    if (!moves.children.length) moves.append(el("span", { className: "muted", text: "final" }));
    const status = el("span", { className: "status status-" + o.status, text: label(o.status) });
    return el("tr", { className: flash ? "flash" : "", dataset: { orderId: o.id } },
      el("td", { text: when(o.created_at), title: o.created_at }),
      el("td", { className: "mono", text: shortId(o.id), title: o.id }),
      el("td", { className: "mono", text: shortId(o.user_id), title: o.user_id }),
      el("td", { text: items }),
      el("td", { className: "num", text: money(o.total, o.currency) }),
      el("td", {}, status, o.refunded ? el("span", { className: "badge", text: "refunded" }) : null),
      el("td", {}, moves, problem));
  }

  function renderCategories() {
    const cats = [...state.categories.values()].sort((a, b) => String(a.name).localeCompare(String(b.name)));
    $("#categories-list").replaceChildren(...cats.map((c) => el("li", { dataset: { categoryId: c.id } },
      el("span", { className: "name", text: c.name }),
      el("span", { className: "badge", text: (c.product_count ?? 0) + " products" }),
      el("button", { type: "button", className: "small quiet", text: "Edit", on: { click: () => editCategory(c.id) } }),
      deleteButton("category:delete", c.id))));
    for (const select of document.querySelectorAll("select[data-categories]")) {
      const current = select.value;
      const none = select.name === "parent_id" ? "(top level)" : "Choose a category";
      select.replaceChildren(new Option(none, ""), ...cats.map((c) => new Option(c.name, c.id)));
      select.value = state.categories.has(current) ? current : "";
    }
  }

  function renderProducts() {
    const items = [...state.products.values()]
      .sort((a, b) => Date.parse(b.created_at || 0) - Date.parse(a.created_at || 0));
    // the page shows the newest hundred; say so when the catalog holds more
    $("#products-count").textContent = state.productsTotal > items.length
      ? "(newest " + items.length + " of " + state.productsTotal + ")" : items.length ? "(" + items.length + ")" : "";
    $("#products-body").replaceChildren(...items.map((p) => {
      const cat = state.categories.get(p.category_id);
      return el("tr", { dataset: { productId: p.id } },
        el("td", {}, el("span", { text: p.name }),
          p.is_active === false ? el("span", { className: "badge", text: "inactive" }) : null),
        el("td", { className: "mono", text: p.sku }),
        el("td", { className: "num", text: money(p.price, p.currency) }),
        el("td", { className: "num", text: p.stock }),
        el("td", { text: cat ? cat.name : "" }),
        el("td", { className: "num" },
          el("button", { type: "button", className: "small quiet", text: "Edit", on: { click: () => editProduct(p.id) } }),
          deleteButton("product:delete", p.id)));
    }));
  }

  function discountText(p) {
    const a = p.action || {};
    if (a.type === "percent_off") return (a.value / 100) + "% off";
    if (a.type === "amount_off") return money(a.value, p.currency) + " off";
    if (a.type === "free_shipping") return "free shipping";
    if (a.type === "buy_x_get_y") return "buy " + a.buy + " get " + a.get;
    return a.type || "";
  }

  function renderPromotions() {
    const items = [...state.promotions.values()].sort((a, b) => String(a.name).localeCompare(String(b.name)));
    $("#promotions-count").textContent = items.length ? "(" + items.length + ")" : "";
    $("#promotions-empty").hidden = items.length > 0;
    $("#promotions-body").replaceChildren(...items.map((p) => {
      const limit = p.rules && p.rules.usage_limit;
      return el("tr", { dataset: { promotionId: p.id } },
        el("td", {}, el("span", { text: p.name }),
          p.is_active === false ? el("span", { className: "badge", text: "inactive" }) : null),
        el("td", { className: "mono", text: p.code || "automatic" }),
        el("td", { text: discountText(p) }),
        el("td", { className: "num", dataset: { role: "used" }, text: (p.times_used ?? 0) + (limit ? " / " + limit : "") }),
        el("td", { className: "num" }, deleteButton("promotion:delete", p.id)));
    }));
  }

  function deleteButton(name, id) {
    const button = el("button", { type: "button", className: "small danger", text: "Delete" });
    button.addEventListener("click", async () => {
      if (!button.classList.contains("armed")) {
        button.classList.add("armed");
        button.textContent = "Confirm";
        setTimeout(() => { button.classList.remove("armed"); button.textContent = "Delete"; }, 4000);
        return;
      }
      button.disabled = true;
      const ack = await command(name, { id });
      const line = $(name === "promotion:delete" ? "#promotions-error" : "#catalog-error");
      if (ack.ok) {
        line.textContent = "";
        if (name === "product:delete") removeProduct(id);
        else if (name === "promotion:delete") state.promotions.delete(id);
        else state.categories.delete(id);
        renderCategories();
        renderProducts();
        renderPromotions();
      } else {
        button.disabled = false;
        line.textContent = ack.error.detail || ack.error.title || "Refused.";
      }
    });
    return button;
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
        slot.textContent = slot.textContent ? slot.textContent + " " + e.message : e.message;
        const input = form.elements.namedItem(field);
        if (input) input.setAttribute("aria-invalid", "true");
      } else {
        general.push((e.field ? e.field + ": " : "") + e.message);
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

  function categoryPayload(form, editing) {
    const out = { name: text(form, "name") };
    const parent = text(form, "parent_id");
    if (parent || editing) out.parent_id = parent || null;
    if (text(form, "position")) out.position = integer(text(form, "position"));
    if (text(form, "description") || editing) out.description = text(form, "description") || null;
    return out;
  }

  function productPayload(form, editing) {
    const currency = text(form, "currency").toUpperCase();
    const out = { name: text(form, "name"), sku: text(form, "sku"), price: toMinor(text(form, "price"), currency || "USD") };
    if (text(form, "category_id") || !editing) out.category_id = text(form, "category_id");
    if (currency) out.currency = currency;
    if (text(form, "stock")) out.stock = integer(text(form, "stock"));
    if (text(form, "description") || editing) out.description = text(form, "description") || null;
    return out;
  }

  function promotionPayload(form) {
    const kind = text(form, "kind");
    const currency = text(form, "currency").toUpperCase();
    const out = { name: text(form, "name"), action: { type: kind } };
    if (text(form, "code")) out.code = text(form, "code");
    if (currency) out.currency = currency;
    const value = text(form, "value");
    // percent in the form, basis points on the wire; money as typed ("5.00"), minor units on the wire
    if (kind === "percent_off") out.action.value = /^\d+(\.\d{1,2})?$/.test(value) ? Math.round(Number(value) * 100) : value;
    else if (kind === "amount_off") out.action.value = toMinor(value, currency || "USD");
    if (text(form, "usage_limit")) out.rules = { usage_limit: integer(text(form, "usage_limit")) };
    return out;
  }

  function editCategory(id) {
    const c = state.categories.get(id);
    const form = $("#category-form");
    if (!c) return;
    setMode(form, id, "category");
    form.elements.namedItem("name").value = c.name || "";
    form.elements.namedItem("parent_id").value = c.parent_id || "";
    form.elements.namedItem("position").value = c.position ?? "";
    form.elements.namedItem("description").value = c.description || "";
    form.elements.namedItem("name").focus();
  }

  function editProduct(id) {
    const p = state.products.get(id);
    const form = $("#product-form");
    if (!p) return;
    setMode(form, id, "product");
    for (const name of ["name", "sku", "currency", "category_id", "description"]) {
      form.elements.namedItem(name).value = p[name] || "";
    }
    form.elements.namedItem("price").value = fromMinor(p.price, p.currency);
    form.elements.namedItem("stock").value = p.stock ?? "";
    form.elements.namedItem("name").focus();
  }

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
    $("#emails-reload").addEventListener("click", () => loadEmails());
    $("#signout").addEventListener("click", async () => {
      await api("/auth/logout", { method: "POST", retry: false }).catch(() => {});
      endSession("Signed out.", false);
    });
    bindForm($("#category-form"), "category", categoryPayload, (c) => { upsertCategory(c); renderCategories(); });
    bindForm($("#product-form"), "product", productPayload, (p) => { upsertProduct(p); renderProducts(); });
    bindForm($("#promotion-form"), "promotion", promotionPayload, (p) => { upsertPromotion(p); renderPromotions(); });
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

  boot();
})();
