/*
 * Dashboard: today's orders, revenue, average order value, orders per hour and low stock.
 *
 * Loaded once over REST (today's orders, the catalog's low-stock variants and the shop's threshold),
 * then kept by the socket's events alone: order:created adds to today, a cancellation takes its total
 * out, stock:updated moves a listed variant or (one newly low) reads the list again, and
 * settings:stockUpdated (an admin changed the threshold, here or in another console) reads it at the
 * new threshold. No polling.
 */
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const LOW_STOCK_SHOWN = 50;

const dashboard = screen({
  name: "dashboard",
  day: "", // the local day the figures are for
  today: new Map(), // order id -> { total, currency, status, created_at }
  threshold: null, // the shop's low-stock threshold (catalog's setting), once read
  low: [], // the low-stock variants, fewest units first (catalog's list)
  lowTotal: 0,

  boot() {
    const input = $("#dash-threshold");
    input.addEventListener("change", () => saveThreshold(input));
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
    loadLowStock();
    // events heard while loading are kept (they are newer)
    for (const [id, o] of dashboard.today) if (!seen.has(id) || seen.get(id).status !== o.status) seen.set(id, o);
    dashboard.today = seen;
    dashboard.render();
    $("#dashboard").dataset.loaded = "true"; // the figures are the server's now, not the empty start
    return true;
  },

  end() {
    dashboard.today.clear();
    Object.assign(dashboard, { threshold: null, low: [], lowTotal: 0 });
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
      case "settings:stockUpdated":
        if (typeof d.low_stock_threshold === "number") showThreshold(d.low_stock_threshold);
        loadLowStockSoon();
        break;
      case "stock:updated":
        stockMoved(d);
        break;
      case "product:added": case "product:updated": case "product:deleted":
        productMoved(d);
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

// ---- low stock: the catalog's list at the shop's threshold, moved by stock and product events ----
async function loadLowStock() {
  try {
    const [settings, page] = await Promise.all([
      api("/admin/settings/stock"), api("/admin/low-stock?page_size=" + LOW_STOCK_SHOWN),
    ]);
    showThreshold(page.threshold ?? settings.low_stock_threshold);
    dashboard.low = page.items;
    dashboard.lowTotal = page.total;
    $("#dash-lowstock").dataset.loaded = "true";
  } catch (err) {
    $("#dash-threshold-error").textContent = "Could not read the low stock: " + err.message;
  }
  renderLowStock();
}

// many events in a burst (an order of ten lines) make one read
let lowStockTimer = null;
function loadLowStockSoon() {
  clearTimeout(lowStockTimer);
  lowStockTimer = setTimeout(loadLowStock, 200);
}

function showThreshold(n) {
  dashboard.threshold = n;
  const input = $("#dash-threshold");
  if (document.activeElement !== input) input.value = String(n);
}

async function saveThreshold(input) {
  const error = $("#dash-threshold-error");
  error.textContent = "";
  input.removeAttribute("aria-invalid");
  try {
    const saved = await api("/admin/settings/stock", { method: "PATCH", body: { low_stock_threshold: integer(input.value.trim()) } });
    showThreshold(saved.low_stock_threshold);
    loadLowStock();
  } catch (err) {
    const problem = problemOf(err);
    error.textContent = (problem.errors || []).length ? problem.errors.map(humanMessage).join(" ") : problem.detail || problem.title;
    input.setAttribute("aria-invalid", "true");
  }
}

// a listed variant moves in place (or leaves the list); one not listed that fell low needs its name: read again
function stockMoved(d) {
  if (dashboard.threshold === null) return;
  const moved = (d.variants || []).length ? d.variants : [{ id: null, stock: d.stock }];
  let changed = false;
  for (const v of moved) {
    const i = dashboard.low.findIndex((x) => (v.id ? x.variant_id === v.id : x.product_id === d.product_id));
    if (i >= 0) {
      changed = true;
      if (v.stock > dashboard.threshold) {
        dashboard.low.splice(i, 1);
        dashboard.lowTotal -= 1;
      } else dashboard.low[i] = { ...dashboard.low[i], stock: v.stock };
    } else if (v.stock <= dashboard.threshold) {
      return loadLowStockSoon();
    }
  }
  if (changed) {
    dashboard.low.sort((a, b) => a.stock - b.stock || String(a.name).localeCompare(String(b.name)));
    // the page is short of what the catalog has: the next ones come with a read
    if (dashboard.low.length < Math.min(dashboard.lowTotal, LOW_STOCK_SHOWN)) return loadLowStockSoon();
    renderLowStock();
  }
}

// a product renamed, hidden, deleted or given new variants: read again if it is (or may now be) listed
function productMoved(d) {
  if (dashboard.threshold === null) return;
  const listed = dashboard.low.some((x) => x.product_id === d.id);
  const mayBeLow = (d.variants || []).some((v) => v.stock <= dashboard.threshold) || (!(d.variants || []).length && d.stock <= dashboard.threshold);
  if (listed || mayBeLow) loadLowStockSoon();
}

function renderLowStock() {
  const low = dashboard.low;
  $("#dash-lowstock").replaceChildren(...low.map((x) => el("li", { dataset: { productId: x.product_id, variantId: x.variant_id, sku: x.sku } },
    el("span", { className: "name", text: x.name + (x.title ? " \u00b7 " + x.title : "") }), el("span", { className: "mono muted", text: x.sku }),
    el("span", { className: "badge" + (x.stock === 0 ? " out" : ""), text: x.stock === 0 ? "out of stock" : x.stock + " left" }))));
  const empty = $("#dash-lowstock-empty");
  empty.hidden = low.length > 0;
  empty.textContent = dashboard.threshold === null ? "" : "Nothing is at or below " + dashboard.threshold + (dashboard.threshold === 1 ? " unit." : " units.");
  $("#dash-lowstock-count").textContent = dashboard.lowTotal ? "(" + dashboard.lowTotal + ")" : "";
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
