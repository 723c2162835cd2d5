/*
 * Orders: search (number or customer), filter (status, dates), pages, and one order's detail.
 *
 * The moves offered are the order's `allowed_moves` as the orders service answers them: the
 * console keeps no copy of the status machine. A page stays live: a new order that fits the
 * search appears on the first page, a moved one is read again (with its new moves).
 */
"use strict";

const PAGE_SIZE = 20;
// what an order number looks like when typed ("#1a2b3c4d"); anything else searches customers
const ORDER_NUMBER = /^#?[0-9a-f-]{1,36}$/i;

const orders = screen({
  name: "orders",
  page: 1,
  total: 0,
  rows: [], // the orders shown, newest first
  filters: { q: "", status: "", from: "", to: "" },
  userIds: null, // the customers a text search matched (null: no customer search)
  flash: null,
  detail: null, // the order open in the detail view
  loading: 0,

  boot() {
    const form = $("#orders-search");
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      orders.filters = { q: text(form, "q"), status: text(form, "status"), from: text(form, "from"), to: text(form, "to") };
      orders.page = 1;
      orders.load();
    });
    form.querySelector('[data-role="clear"]').addEventListener("click", () => {
      form.reset();
      orders.filters = { q: "", status: "", from: "", to: "" };
      orders.page = 1;
      orders.load();
    });
    $("#orders-prev").addEventListener("click", () => { orders.page -= 1; orders.load(); });
    $("#orders-next").addEventListener("click", () => { orders.page += 1; orders.load(); });
    const dialog = $("#order-detail");
    dialog.querySelector('[data-role="close"]').addEventListener("click", () => dialog.close());
    dialog.addEventListener("close", () => {
      const id = orders.detail && orders.detail.id;
      orders.detail = null;
      // back to where the admin was
      const row = id && document.querySelector('#orders-body tr[data-order-id="' + CSS.escape(id) + '"] .order-link');
      if (row) row.focus();
    });
  },

  async load() {
    const ticket = ++orders.loading;
    $("#orders-error").textContent = "";
    try {
      const params = await orderQuery();
      const page = params ? await api("/admin/orders?" + params) : { items: [], total: 0 };
      if (ticket !== orders.loading) return true; // a newer search answered first
      orders.rows = page.items.map(fromRest);
      orders.total = page.total;
      if (orders.detail) refreshOrder(orders.detail.id);
      await knowPeople(orders.rows.map((o) => o.user_id)).catch(() => {});
    } catch (err) {
      if (ticket === orders.loading) $("#orders-error").textContent = "Could not load the orders: " + err.message;
      return false;
    } finally {
      if (ticket === orders.loading) renderOrders();
    }
    return true;
  },

  // a resync keeps the search and the open order: load() reads both again
  reset() {},

  end() {
    orders.rows = [];
    orders.total = 0;
    orders.page = 1;
    orders.filters = { q: "", status: "", from: "", to: "" };
    $("#orders-search").reset();
    const dialog = $("#order-detail");
    if (dialog.open) dialog.close();
  },

  render() {
    renderOrders();
  },

  apply(name, d) {
    switch (name) {
      case "order:created": {
        const o = { id: d.order_id, user_id: d.user_id, status: d.status || "pending_payment", items: d.items || [],
          total: d.total, currency: d.currency, created_at: d.created_at, changed: Date.parse(d.created_at) || 0,
          allowed_moves: null };
        if (!fitsSearch(o) || orders.rows.some((r) => r.id === o.id)) break;
        orders.total += 1;
        if (orders.page !== 1) { renderOrders(); break; }
        orders.rows.unshift(o);
        if (orders.rows.length > PAGE_SIZE) orders.rows.pop();
        renderOrders(o.id);
        refreshOrder(o.id); // its allowed moves, from the service
        knowPeople([o.user_id]).then(() => renderOrders()).catch(() => {});
        break;
      }
      case "order:statusUpdated": case "order:fulfilled": case "payment:refunded": case "payment:succeeded":
      case "return:updated":
        if (orders.rows.some((r) => r.id === d.order_id) || (orders.detail && orders.detail.id === d.order_id)) {
          refreshOrder(d.order_id, true);
        }
        break;
    }
  },
});

// the query string for the current search; null when a customer search matched nobody
async function orderQuery() {
  const f = orders.filters;
  const params = new URLSearchParams({ page: String(orders.page), page_size: String(PAGE_SIZE) });
  orders.userIds = null;
  if (f.q && ORDER_NUMBER.test(f.q)) params.set("q", f.q);
  else if (f.q) {
    const found = await api("/admin/users?" + new URLSearchParams({ q: f.q, page_size: "100" }));
    for (const u of found.items) people.set(u.id, u);
    orders.userIds = found.items.map((u) => u.id);
    if (!orders.userIds.length) return null;
    for (const id of orders.userIds) params.append("user_id", id);
  }
  if (f.status) params.set("status", f.status);
  if (f.from) params.set("created_from", dayStart(f.from).toISOString());
  if (f.to) params.set("created_to", new Date(dayStart(f.to).getTime() + 86400000 - 1).toISOString());
  return params;
}

// "2026-12-03" from a date field: that day's midnight where the admin is
function dayStart(value) {
  const [y, m, d] = value.split("-").map(Number);
  return new Date(y, m - 1, d);
}

function fitsSearch(o) {
  const f = orders.filters;
  if (f.status && o.status !== f.status) return false;
  if (f.q && ORDER_NUMBER.test(f.q) && !o.id.startsWith(f.q.replace(/^#/, "").toLowerCase())) return false;
  if (f.q && !ORDER_NUMBER.test(f.q) && !(orders.userIds || []).includes(o.user_id)) return false;
  const at = Date.parse(o.created_at);
  if (f.from && at < dayStart(f.from).getTime()) return false;
  if (f.to && at >= dayStart(f.to).getTime() + 86400000) return false;
  return true;
}

function fromRest(o) {
  return { ...o, items: o.items || [], changed: Date.parse(o.updated_at) || 0 };
}

// read one order again (its moves, payment, fulfillment) and show it where it is shown
async function refreshOrder(id, flash) {
  let o;
  try {
    o = fromRest(await api("/admin/orders/" + encodeURIComponent(id)));
  } catch (_) {
    return;
  }
  showOrder(o, flash);
}

function showOrder(o, flash) {
  const i = orders.rows.findIndex((r) => r.id === o.id);
  if (i >= 0 && !(orders.rows[i].changed > o.changed)) {
    orders.rows[i] = o;
    renderOrders(flash ? o.id : null);
  }
  if (orders.detail && orders.detail.id === o.id) openOrder(o.id, o);
}

function renderOrders(flashId) {
  const rows = orders.rows;
  const body = $("#orders-body");
  keepFocus(body, "orderId", () => body.replaceChildren(...rows.map((o) => orderRow(o, o.id === flashId))));
  const filtered = Object.values(orders.filters).some(Boolean);
  const empty = $("#orders-empty");
  empty.hidden = rows.length > 0;
  empty.textContent = filtered ? "No orders match this search." : "No orders yet.";
  $("#orders-count").textContent = orders.total ? "(" + orders.total + ")" : "";
  const pages = Math.max(1, Math.ceil(orders.total / PAGE_SIZE));
  $("#orders-page").textContent = "Page " + orders.page + " of " + pages;
  $("#orders-prev").disabled = orders.page <= 1;
  $("#orders-next").disabled = orders.page >= pages;
}

async function moveOrder(o, to, extra, problem, buttons) {
  for (const b of buttons) b.disabled = true;
  problem.textContent = "";
  const ack = await command("order:updateStatus", { order_id: o.id, status: to, ...extra });
  if (ack.ok) {
    showOrder(fromRest(ack.data), true);
    return true;
  }
  for (const b of buttons) b.disabled = false;
  problem.textContent = ack.error.detail || ack.error.title || "Refused.";
  return false;
}

function orderRow(o, flash) {
  const items = (o.items || []).map((i) => i.quantity + " \u00d7 " + i.name + (i.title ? " (" + i.title + ")" : "")).join(", ");
  const problem = el("span", { className: "row-error", role: "alert" });
  const moves = el("div", { className: "moves" });
  // shipping takes how it travels (each optional): the first click opens these, the second ships
  const tracking = el("div", { className: "tracking", hidden: "hidden" },
    el("input", { name: "carrier", placeholder: "carrier", "aria-label": "Carrier", autocomplete: "off" }),
    el("input", { name: "tracking_number", placeholder: "tracking number", "aria-label": "Tracking number", autocomplete: "off" }),
    el("input", { name: "tracking_url", placeholder: "https://tracking link", "aria-label": "Tracking URL", autocomplete: "off" }));
  for (const to of o.allowed_moves || []) {
    // cancelling may refund: it takes a second click
    if (to === "cancelled") {
      const cancel = armedButton("cancel", "confirm cancel", () => moveOrder(o, to, {}, problem, moves.querySelectorAll("button")));
      cancel.dataset.status = to;
      moves.append(cancel);
      continue;
    }
    const button = el("button", { type: "button", className: "small", dataset: { status: to }, text: label(to) });
    button.addEventListener("click", async () => {
      // marking paid by hand needs more than a click: the detail asks, naming the risk
      if (to === "paid") return openOrder(o.id, null, to);
      if (to === "shipped" && !button.classList.contains("armed")) {
        button.classList.add("armed");
        button.textContent = "ship now";
        tracking.hidden = false;
        tracking.querySelector("input").focus();
        return;
      }
      const extra = {};
      if (to === "shipped") {
        for (const input of tracking.querySelectorAll("input")) if (input.value.trim()) extra[input.name] = input.value.trim();
      }
      await moveOrder(o, to, extra, problem, moves.querySelectorAll("button"));
    });
    moves.append(button);
  }
  if (!moves.children.length && o.allowed_moves) moves.append(el("span", { className: "muted", text: "final" }));
  const status = el("span", { className: "status status-" + o.status, text: label(o.status) });
  const open = el("button", { type: "button", className: "link order-link mono", text: shortId(o.id),
    title: "Open order " + o.id, "aria-label": "Open order " + shortId(o.id) });
  open.addEventListener("click", () => openOrder(o.id));
  return el("tr", { className: flash ? "flash" : "", dataset: { orderId: o.id } },
    el("td", { "data-label": "Placed", text: when(o.created_at), title: o.created_at }),
    el("td", { "data-label": "Order" }, open),
    el("td", { "data-label": "Customer" }, personCell(o.user_id)),
    el("td", { "data-label": "Items", text: items }),
    el("td", { "data-label": "Total", className: "num", text: money(o.total, o.currency) }),
    el("td", { "data-label": "Status" }, status, o.refunded_at || o.refunded ? el("span", { className: "badge", text: "refunded" }) : null,
      shipment(o.fulfillment)),
    el("td", { "data-label": "Move to" }, moves, tracking, problem));
}

function shipment(f) {
  if (!f || !(f.carrier || f.tracking_number)) return null;
  // text only, the link as a title: an admin copies it rather than following a URL someone typed
  return el("div", { className: "muted shipment", title: f.tracking_url || "",
    text: [f.carrier, f.tracking_number].filter(Boolean).join(" ") });
}

// ---- the detail -------------------------------------------------------------------------
// `known`: the order as just read; `intent`: a move the admin asked for that needs a form ("paid", "shipped")
async function openOrder(id, known, intent) {
  const dialog = $("#order-detail");
  const error = dialog.querySelector('[data-role="error"]');
  error.textContent = "";
  let o = known;
  let returns = [];
  // a refresh of the open order (an event) must not reopen it if the admin closed it meanwhile
  const refreshing = Boolean(orders.detail && orders.detail.id === id);
  try {
    if (!o) o = fromRest(await api("/admin/orders/" + encodeURIComponent(id)));
    const [found] = await Promise.all([
      api("/admin/returns?" + new URLSearchParams({ order_id: id, page_size: "100" })).catch(() => ({ items: [] })),
      knowPeople([o.user_id, ...(o.status_history || []).map((h) => h.by)]).catch(() => {}),
    ]);
    returns = found.items || [];
  } catch (err) {
    if (!o) {
      $("#orders-error").textContent = "Could not open the order: " + err.message;
      return;
    }
  }
  if (refreshing && !(orders.detail && orders.detail.id === id)) return;
  const keepIntent = intent || (orders.detail && orders.detail.id === id ? orders.detail.intent : null);
  orders.detail = { id, intent: keepIntent && (o.allowed_moves || []).includes(keepIntent) ? keepIntent : null };
  dialog.dataset.orderId = id;
  $("#order-detail-title").textContent = "Order " + shortId(o.id);
  dialog.querySelector('[data-role="body"]').replaceChildren(...orderDetail(o, returns, orders.detail.intent));
  if (!dialog.open) {
    showDialog(dialog);
    dialog.querySelector('[data-role="close"]').focus();
  }
  const first = dialog.querySelector("form [autofocus], form button");
  if (orders.detail.intent && first) first.focus();
}

function facts(pairs) {
  return el("dl", { className: "facts" }, ...pairs.filter(([, v]) => v !== null && v !== undefined && v !== "")
    .flatMap(([k, v]) => [el("dt", { text: k }), el("dd", {}, v instanceof Node ? v : document.createTextNode(String(v)))]));
}

function section(title, ...children) {
  return el("section", { className: "detail-part" }, el("h3", { text: title }), ...children);
}

function orderDetail(o, returns, intent) {
  const cur = o.currency;
  const b = o.breakdown || {};
  const parts = [];
  const status = el("span", { className: "status status-" + o.status, text: label(o.status) });
  parts.push(el("div", { className: "detail-summary" }, status,
    el("span", { text: "Placed " + new Date(o.created_at).toLocaleString() }),
    el("strong", { className: "num", text: money(o.total, cur) })));
  parts.push(section("Customer", personCell(o.user_id)));
  parts.push(orderActions(o, intent));

  const lines = el("table", { className: "lines stack-on-phone" },
    el("thead", {}, el("tr", {}, el("th", { text: "Item" }), el("th", { text: "SKU" }),
      el("th", { className: "num", text: "Qty" }), el("th", { className: "num", text: "Price" }),
      el("th", { className: "num", text: "Total" }))),
    el("tbody", {}, ...(o.items || []).map((i) => el("tr", {},
      el("td", { "data-label": "Item" }, el("span", { text: i.name }),
        i.title ? el("span", { className: "muted", text: " \u00b7 " + i.title }) : null),
      el("td", { "data-label": "SKU", className: "mono", text: i.sku || "" }),
      el("td", { "data-label": "Qty", className: "num", text: i.quantity }),
      el("td", { "data-label": "Price", className: "num", text: money(i.unit_price, cur) }),
      el("td", { "data-label": "Total", className: "num", text: money(i.line_total, cur) })))));
  parts.push(section("Lines", lines));

  const price = [["Subtotal", money(b.subtotal ?? o.subtotal, cur)]];
  for (const d of b.discounts || []) {
    price.push(["Discount: " + (d.code ? d.code + " \u00b7 " : "") + d.label, "\u2212" + money(d.amount, cur)]);
  }
  if (!(b.discounts || []).length && b.discount_total) price.push(["Discounts", "\u2212" + money(b.discount_total, cur)]);
  const ship = b.shipping_method || o.shipping_method;
  price.push(["Shipping" + (ship && ship.name ? " (" + ship.name + ")" : ""), money(b.shipping_total || 0, cur)]);
  for (const t of b.tax_lines || []) price.push(["Tax " + (t.name || "") + (b.prices_include_tax ? " (included)" : ""), money(t.amount, cur)]);
  if (!(b.tax_lines || []).length) price.push(["Tax" + (b.prices_include_tax ? " (included)" : ""), money(b.tax_total || 0, cur)]);
  price.push(["Total", money(o.total, cur)]);
  parts.push(section("Price", facts(price)));

  const a = o.shipping_address || {};
  parts.push(section("Ship to", el("address", {}, ...[a.name, a.line1, a.line2,
    [a.postal_code, a.city].filter(Boolean).join(" "), a.region, a.country, a.phone].filter(Boolean)
    .map((line) => el("div", { text: line })))));

  // an admin's move to paid records no payment (money that came another way): say so, not "not paid"
  const markedPaid = (o.status_history || []).find((h) => h.to === "paid" && h.by !== "payments");
  parts.push(section("Payment", facts([
    ["Paid", o.paid_at ? new Date(o.paid_at).toLocaleString()
      : markedPaid ? "marked paid by hand " + new Date(markedPaid.at).toLocaleString() + ", no payment recorded"
        : "not paid"],
    ["Payment", o.payment_id || null],
    ["Pay by", !o.paid_at && o.status === "pending_payment" ? new Date(o.payment_due_at).toLocaleString() : null],
    ["Last failure", o.last_payment_error ? o.last_payment_error + " (" + when(o.last_payment_error_at) + ")" : null],
    ["Refunded", o.refunded_at ? money(o.refund_amount, cur) + " on " + new Date(o.refunded_at).toLocaleString() : null],
  ])));

  const f = o.fulfillment;
  if (f) {
    // text, not a link: an admin copies it rather than following a URL someone typed
    const url = f.tracking_url || null;
    parts.push(section("Fulfillment", facts([["Shipped", new Date(f.shipped_at).toLocaleString()],
      ["Carrier", f.carrier], ["Tracking number", f.tracking_number], ["Tracking", url]])));
  }

  if (returns.length) {
    parts.push(section("Returns", el("ul", { className: "plain" }, ...returns.map((r) => el("li", { dataset: { returnId: r.id } },
      el("span", { className: "status", text: label(r.status) }), " ",
      el("span", { text: (r.items || []).map((i) => i.quantity + " \u00d7 " + (i.name || "line " + i.line_id)
        + (i.reason ? " (" + i.reason + ")" : "")).join(", ") }),
      r.refund_amount != null ? el("span", { className: "muted", text: " \u00b7 refund " + money(r.refund_amount, cur) }) : null,
      returnActions(r, o))))));
  }

  const history = [...(o.status_history || [])].sort((x, y) => Date.parse(x.at) - Date.parse(y.at));
  parts.push(section("Timeline", el("ol", { className: "timeline" }, ...history.map((h) => el("li", {},
    el("time", { datetime: h.at, text: new Date(h.at).toLocaleString() }),
    el("span", { text: (h.from ? label(h.from) + " \u2192 " : "") + label(h.to) }),
    el("span", { className: "muted" }, document.createTextNode(" by "), actor(h.by, o.user_id)),
    h.reason ? el("span", { className: "muted", text: " \u00b7 " + h.reason }) : null)))));
  return parts;
}

// who made a move: a person (the customer or an admin) or one of the shop's own parts
function actor(by, customerId) {
  if (by === customerId) return document.createTextNode("the customer");
  if (people.has(by)) return document.createTextNode(people.get(by).name + " <" + people.get(by).email + ">");
  return document.createTextNode(UUID.test(String(by || "")) ? shortId(by) : String(by || "the shop"));
}

function orderActions(o, intent) {
  const problem = el("p", { className: "error", role: "alert" });
  const box = el("div", { className: "detail-actions" });
  const moves = o.allowed_moves || [];
  if (!moves.length) return section("Status", el("p", { className: "muted", text: "This order is " + label(o.status) + ": no further moves." }));
  if (intent === "paid") {
    const form = el("form", { className: "confirm", "aria-label": "Mark as paid" },
      el("p", { className: "warning", text: "Mark this order as paid without a payment through the shop? "
        + "No money has been received for it here: only do this if the customer paid another way "
        + "(bank transfer, cash) and you have checked the money arrived. It will then be fulfilled "
        + "as paid, and the shop will not refund it for you." }),
      el("div", { className: "actions" },
        el("button", { type: "submit", className: "danger-solid", text: "Yes, mark as paid" }),
        el("button", { type: "button", className: "quiet", dataset: { role: "back" }, text: "Keep it unpaid" })));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      orders.detail.intent = null;
      await moveOrder(o, "paid", { reason: "marked paid by hand in the console" }, problem, form.querySelectorAll("button"));
    });
    form.querySelector('[data-role="back"]').addEventListener("click", () => { orders.detail.intent = null; openOrder(o.id, o); });
    return section("Status", form, problem);
  }
  if (intent === "shipped") {
    const form = el("form", { className: "editor", "aria-label": "Ship the order" },
      el("label", { className: "field" }, el("span", { text: "Carrier" }), el("input", { name: "carrier", autocomplete: "off", autofocus: "" })),
      el("label", { className: "field" }, el("span", { text: "Tracking number" }), el("input", { name: "tracking_number", autocomplete: "off" })),
      el("label", { className: "field wide" }, el("span", { text: "Tracking link (optional)" }),
        el("input", { name: "tracking_url", type: "url", autocomplete: "off", placeholder: "https://" })),
      el("div", { className: "actions" },
        el("button", { type: "submit", text: "Ship it" }),
        el("button", { type: "button", className: "quiet", dataset: { role: "back" }, text: "Not yet" })));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const extra = {};
      for (const name of ["carrier", "tracking_number", "tracking_url"]) if (text(form, name)) extra[name] = text(form, name);
      orders.detail.intent = null;
      if (!(await moveOrder(o, "shipped", extra, problem, form.querySelectorAll("button")))) orders.detail.intent = "shipped";
    });
    form.querySelector('[data-role="back"]').addEventListener("click", () => { orders.detail.intent = null; openOrder(o.id, o); });
    return section("Ship", form, problem);
  }
  for (const to of moves) {
    const button = el("button", { type: "button", className: to === "cancelled" ? "danger" : "",
      dataset: { status: to }, text: to === "cancelled" ? "Cancel order" : "Move to " + label(to) });
    button.addEventListener("click", async () => {
      if (to === "paid" || to === "shipped") { orders.detail.intent = to; return openOrder(o.id, o, to); }
      if (to === "cancelled" && !button.classList.contains("armed")) {
        button.classList.add("armed");
        button.textContent = "Confirm: cancel" + (o.paid_at ? " and refund" : "");
        return;
      }
      await moveOrder(o, to, {}, problem, box.querySelectorAll("button"));
    });
    box.append(button);
  }
  return section("Status", box, problem);
}
