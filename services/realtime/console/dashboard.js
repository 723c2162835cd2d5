/*
 * Dashboard: today's orders, revenue, average order value, orders per hour and low stock.
 *
 * Loaded once over REST (today's orders, the catalog screen's products), then kept by the
 * socket's events alone: order:created adds to today, a cancellation takes its total out,
 * stock:updated moves the low-stock list. No polling.
 */
"use strict";

const LOW_STOCK_KEY = "shop.console.lowStock";
const SVG = "http://www.w3.org/2000/svg";

const dashboard = screen({
  name: "dashboard",
  day: "", // the local day the figures are for
  today: new Map(), // order id -> { total, currency, status, created_at }

  boot() {
    const input = $("#dash-threshold");
    input.value = localStorage.getItem(LOW_STOCK_KEY) || "5";
    input.addEventListener("change", () => {
      const n = Number(input.value);
      if (!Number.isInteger(n) || n < 0) {
        $("#dash-threshold-error").textContent = "Enter a whole number of units, like 5.";
        return;
      }
      $("#dash-threshold-error").textContent = "";
      localStorage.setItem(LOW_STOCK_KEY, String(n));
      renderLowStock();
    });
  },

  async load() {
    const start = new Date();
    start.setHours(0, 0, 0, 0);
    dashboard.day = start.toDateString();
    const seen = new Map();
    try {
      for (let page = 1; page <= 20; page++) {
        const params = new URLSearchParams({ created_from: start.toISOString(), page: String(page), page_size: "100" });
        const found = await api("/admin/orders?" + params);
        for (const o of found.items) seen.set(o.id, { total: o.total, currency: o.currency, status: o.status, created_at: o.created_at });
        if (page * 100 >= found.total) break;
      }
    } catch (err) {
      $("#dash-error").textContent = "Could not load today's orders: " + err.message;
      return false;
    }
    $("#dash-error").textContent = "";
    loadReturns();
    // events heard while loading are kept (they are newer)
    for (const [id, o] of dashboard.today) if (!seen.has(id) || seen.get(id).status !== o.status) seen.set(id, o);
    dashboard.today = seen;
    dashboard.render();
    $("#dashboard").dataset.loaded = "true"; // the figures are the server's now, not the empty start
    return true;
  },

  end() {
    dashboard.today.clear();
  },

  render() {
    renderFigures();
    renderLowStock();
  },

  apply(name, d) {
    rollDay();
    switch (name) {
      case "order:created":
        if (new Date(d.created_at || Date.now()).toDateString() !== dashboard.day) return;
        dashboard.today.set(d.order_id, { total: d.total, currency: d.currency, status: d.status || "pending_payment",
          created_at: d.created_at || new Date().toISOString() });
        renderFigures();
        break;
      case "order:statusUpdated": {
        const o = dashboard.today.get(d.order_id);
        if (o) { o.status = d.to; renderFigures(); }
        break;
      }
      case "return:updated":
        loadReturns(); // one read per change: which returns wait is the orders service's to say
        break;
      case "stock:updated": case "product:added": case "product:updated": case "product:deleted":
        queueMicrotask(renderLowStock); // after the catalog screen took the change in
        break;
    }
  },
});

// past midnight the day starts afresh
function rollDay() {
  const now = new Date().toDateString();
  if (dashboard.day && dashboard.day !== now) {
    dashboard.day = now;
    dashboard.today.clear();
  }
}

function renderFigures() {
  const live = [...dashboard.today.values()].filter((o) => o.status !== "cancelled");
  const byCurrency = new Map();
  for (const o of live) byCurrency.set(o.currency, (byCurrency.get(o.currency) || 0) + (o.total || 0));
  $("#dash-orders").textContent = String(live.length);
  const sums = [...byCurrency.entries()];
  $("#dash-revenue").textContent = sums.length ? sums.map(([cur, sum]) => money(sum, cur)).join(" + ") : money(0, "USD");
  // the average only means something in one currency
  $("#dash-aov").textContent = sums.length === 1 ? money(Math.round(sums[0][1] / live.length), sums[0][0])
    : sums.length ? "mixed currencies" : "\u2014";
  const hours = new Array(24).fill(0);
  for (const o of live) hours[new Date(o.created_at).getHours()] += 1;
  drawChart(hours);
}

function drawChart(hours) {
  const svg = $("#dash-chart");
  const max = Math.max(1, ...hours);
  const w = 240, h = 60, bar = w / 24;
  const now = new Date().getHours();
  const bars = hours.map((n, hour) => {
    const height = n ? Math.max(2, (n / max) * (h - 4)) : 0;
    const rect = document.createElementNS(SVG, "rect");
    rect.setAttribute("x", String(hour * bar + 1));
    rect.setAttribute("y", String(h - height));
    rect.setAttribute("width", String(bar - 2));
    rect.setAttribute("height", String(height));
    rect.setAttribute("class", hour === now ? "bar now" : "bar");
    rect.dataset.hour = String(hour);
    rect.dataset.count = String(n);
    const title = document.createElementNS(SVG, "title");
    title.textContent = String(hour).padStart(2, "0") + ":00 \u2013 " + n + (n === 1 ? " order" : " orders");
    rect.append(title);
    return rect;
  });
  const base = document.createElementNS(SVG, "line");
  for (const [k, v] of Object.entries({ x1: 0, x2: w, y1: h - 0.5, y2: h - 0.5, class: "axis" })) base.setAttribute(k, String(v));
  svg.replaceChildren(base, ...bars);
  const busiest = hours.indexOf(Math.max(...hours));
  svg.setAttribute("aria-label", "Orders per hour today" + (hours.some(Boolean)
    ? ", busiest " + String(busiest).padStart(2, "0") + ":00 with " + hours[busiest] : ", none yet"));
}

function renderLowStock() {
  const limit = Number(localStorage.getItem(LOW_STOCK_KEY) || "5");
  const low = [];
  for (const p of catalog.products.values()) {
    if (p.is_active === false) continue;
    const variants = (p.variants || []).filter((v) => v.is_active !== false);
    if (variants.length > 1) {
      for (const v of variants) if (v.stock <= limit) low.push({ id: p.id, name: p.name + " \u00b7 " + v.title, sku: v.sku, stock: v.stock });
    } else if (p.stock <= limit) low.push({ id: p.id, name: p.name, sku: p.sku, stock: p.stock });
  }
  low.sort((a, b) => a.stock - b.stock || String(a.name).localeCompare(String(b.name)));
  $("#dash-lowstock").replaceChildren(...low.slice(0, 50).map((x) => el("li", { dataset: { productId: x.id, sku: x.sku } },
    el("span", { className: "name", text: x.name }), el("span", { className: "mono muted", text: x.sku }),
    el("span", { className: "badge" + (x.stock === 0 ? " out" : ""), text: x.stock === 0 ? "out of stock" : x.stock + " left" }))));
  $("#dash-lowstock-empty").hidden = low.length > 0;
  $("#dash-lowstock-count").textContent = low.length ? "(" + low.length + ")" : "";
}

// returns customers asked for that nobody has approved or rejected yet
async function loadReturns() {
  try {
    const found = await api("/admin/returns?" + new URLSearchParams({ status: "requested", page_size: "1" }));
    $("#dash-returns").textContent = String(found.total);
  } catch (_) {
    $("#dash-returns").textContent = "?";
  }
}
