/* Orders: the newest orders, kept live from the orders and payments events. */
"use strict";

// mirrors the orders service's status machine to offer the right buttons; the service decides
const NEXT = {
  pending_payment: ["paid", "cancelled"], paid: ["processing", "cancelled"],
  processing: ["shipped", "cancelled"], shipped: ["delivered"], delivered: [], cancelled: [],
};
const ORDERS_MAX = 200;

const orders = screen({
  name: "orders",
  items: new Map(),

  async load() {
    $("#orders-error").textContent = "";
    try {
      const page = await api("/admin/orders?page_size=50");
      for (const o of page.items) upsertOrder(fromRest(o));
    } catch (err) {
      $("#orders-error").textContent = "Could not load the orders: " + err.message;
      return false;
    } finally {
      renderOrders();
    }
    return true;
  },

  reset() {
    orders.items.clear();
  },

  render() {
    renderOrders();
  },

  apply(name, d) {
    switch (name) {
      case "order:created":
        upsertOrder({ id: d.order_id, user_id: d.user_id, status: d.status || "pending_payment", items: d.items || [],
          total: d.total, currency: d.currency, created_at: d.created_at, changed: Date.parse(d.created_at) || 0 });
        renderOrders(d.order_id);
        break;
      case "order:statusUpdated": {
        const known = orders.items.get(d.order_id);
        if (known) {
          upsertOrder({ ...known, status: d.to, changed: Date.parse(d.at) || Date.now() });
          renderOrders(d.order_id);
        } else {
          api("/orders/" + encodeURIComponent(d.order_id))
            .then((o) => { upsertOrder(fromRest(o)); renderOrders(o.id); }).catch(() => {});
        }
        break;
      }
      case "order:fulfilled": {
        const known = orders.items.get(d.order_id);
        if (known) { known.fulfillment = d.fulfillment; renderOrders(d.order_id); }
        break;
      }
      case "payment:refunded": {
        const known = orders.items.get(d.order_id);
        if (known) { known.refunded = true; renderOrders(d.order_id); }
        break;
      }
    }
  },
});

function fromRest(o) {
  return { id: o.id, user_id: o.user_id, status: o.status, items: o.items || [], total: o.total,
    currency: o.currency, created_at: o.created_at, changed: Date.parse(o.updated_at) || 0,
    fulfillment: o.fulfillment || null };
}

// newer wins: a REST answer may be older than a notification that overtook it
function upsertOrder(order) {
  const known = orders.items.get(order.id);
  if (known && known.changed > order.changed) return known;
  orders.items.set(order.id, { ...known, ...order });
  if (orders.items.size > ORDERS_MAX) {
    const oldest = [...orders.items.values()].sort((a, b) => Date.parse(a.created_at) - Date.parse(b.created_at))[0];
    orders.items.delete(oldest.id);
  }
  return orders.items.get(order.id);
}

function renderOrders(flashId) {
  const rows = [...orders.items.values()].sort((a, b) => Date.parse(b.created_at) - Date.parse(a.created_at));
  $("#orders-body").replaceChildren(...rows.map((o) => orderRow(o, o.id === flashId)));
  $("#orders-empty").hidden = rows.length > 0;
  $("#orders-count").textContent = rows.length ? "(" + rows.length + ")" : "";
}
function orderRow(o, flash) {
  const items = (o.items || []).map((i) => i.quantity + " \u00d7 " + i.name).join(", ");
  const problem = el("span", { className: "row-error", role: "alert" });
  const moves = el("div", { className: "moves" });
  // shipping takes how it travels (each optional): the first click opens these, the second ships
  const tracking = el("div", { className: "tracking", hidden: "hidden" },
    el("input", { name: "carrier", placeholder: "carrier", "aria-label": "Carrier", autocomplete: "off" }),
    el("input", { name: "tracking_number", placeholder: "tracking number", "aria-label": "Tracking number", autocomplete: "off" }),
    el("input", { name: "tracking_url", placeholder: "https://tracking link", "aria-label": "Tracking URL", autocomplete: "off" }));
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
      if (to === "shipped" && !button.classList.contains("armed")) {
        button.classList.add("armed");
        button.textContent = "ship now";
        tracking.hidden = false;
        tracking.querySelector("input").focus();
        return;
      }
      for (const b of moves.querySelectorAll("button")) b.disabled = true;
      problem.textContent = "";
      const body = { order_id: o.id, status: to };
      if (to === "shipped") {
        for (const input of tracking.querySelectorAll("input")) if (input.value.trim()) body[input.name] = input.value.trim();
      }
      const ack = await command("order:updateStatus", body);
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
    el("td", {}, status, o.refunded ? el("span", { className: "badge", text: "refunded" }) : null,
      shipment(o.fulfillment)),
    el("td", {}, moves, tracking, problem));
}

function shipment(f) {
  if (!f || !(f.carrier || f.tracking_number)) return null;
  // text only, the link as a title: an admin copies it rather than following a URL someone typed
  return el("div", { className: "muted shipment", title: f.tracking_url || "",
    text: [f.carrier, f.tracking_number].filter(Boolean).join(" ") });
}
