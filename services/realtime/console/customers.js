/*
 * Customers: search auth's accounts, open one (their orders and addresses), block or unblock
 * them, change their role. Blocking and role changes end the person's sessions (auth does that),
 * so each asks for a confirmation that says so.
 */
"use strict";

const CUSTOMERS_PAGE = 20;

const customers = screen({
  name: "customers",
  page: 1,
  total: 0,
  rows: [],
  filters: { q: "", role: "", is_active: "" },
  detail: null, // { id, confirm: "block" | "unblock" | "admin" | "user" | null }
  loading: 0,

  boot() {
    const form = $("#customers-search");
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      customers.filters = { q: text(form, "q"), role: text(form, "role"), is_active: text(form, "is_active") };
      customers.page = 1;
      customers.load();
    });
    form.querySelector('[data-role="clear"]').addEventListener("click", () => {
      form.reset();
      customers.filters = { q: "", role: "", is_active: "" };
      customers.page = 1;
      customers.load();
    });
    $("#customers-prev").addEventListener("click", () => { customers.page -= 1; customers.load(); });
    $("#customers-next").addEventListener("click", () => { customers.page += 1; customers.load(); });
    const dialog = $("#customer-detail");
    dialog.querySelector('[data-role="close"]').addEventListener("click", () => dialog.close());
    dialog.addEventListener("close", () => {
      const id = customers.detail && customers.detail.id;
      customers.detail = null;
      const link = id && document.querySelector('#customers-body tr[data-user-id="' + CSS.escape(id) + '"] .customer-link');
      if (link) link.focus();
    });
  },

  async load() {
    const ticket = ++customers.loading;
    $("#customers-error").textContent = "";
    const params = new URLSearchParams({ page: String(customers.page), page_size: String(CUSTOMERS_PAGE) });
    for (const [key, value] of Object.entries(customers.filters)) if (value) params.set(key, value);
    try {
      const page = await api("/admin/users?" + params);
      if (ticket !== customers.loading) return true;
      customers.rows = page.items;
      customers.total = page.total;
      for (const u of page.items) people.set(u.id, u);
    } catch (err) {
      if (ticket === customers.loading) $("#customers-error").textContent = "Could not load the customers: " + err.message;
      return false;
    } finally {
      if (ticket === customers.loading) renderCustomers();
    }
    return true;
  },

  reset() {},

  end() {
    customers.rows = [];
    customers.total = 0;
    customers.page = 1;
    customers.filters = { q: "", role: "", is_active: "" };
    $("#customers-search").reset();
    const dialog = $("#customer-detail");
    if (dialog.open) dialog.close();
  },

  render() {
    renderCustomers();
  },

  apply(name, d) {
    if (name === "user:registered" && customers.page === 1 && !Object.values(customers.filters).some(Boolean)) {
      // the newest first: a new account tops the unfiltered first page (read in full from auth)
      customers.load();
    }
    if ((name === "order:created" || name === "order:statusUpdated") && customers.detail
      && d.user_id === customers.detail.id) openCustomer(d.user_id);
  },
});

function renderCustomers(flashId) {
  const body = $("#customers-body");
  keepFocus(body, "userId", () => body.replaceChildren(...customers.rows.map((u) => {
    const open = el("button", { type: "button", className: "link customer-link", text: u.name || u.email,
      "aria-label": "Open customer " + (u.name || u.email) });
    open.addEventListener("click", () => openCustomer(u.id));
    return el("tr", { className: u.id === flashId ? "flash" : "", dataset: { userId: u.id } },
      el("td", { "data-label": "Name" }, open),
      el("td", { "data-label": "E-mail", text: u.email }),
      el("td", { "data-label": "Role", dataset: { role: "role" }, text: u.role === "admin" ? "admin" : "customer" }),
      el("td", { "data-label": "State", dataset: { role: "state" } },
        el("span", { className: "status " + (u.is_active ? "status-paid" : "status-cancelled"), text: u.is_active ? "active" : "blocked" })),
      el("td", { "data-label": "Joined", text: new Date(u.created_at).toLocaleDateString() }));
  })));
  $("#customers-empty").hidden = customers.rows.length > 0;
  $("#customers-count").textContent = customers.total ? "(" + customers.total + ")" : "";
  const pages = Math.max(1, Math.ceil(customers.total / CUSTOMERS_PAGE));
  $("#customers-page").textContent = "Page " + customers.page + " of " + pages;
  $("#customers-prev").disabled = customers.page <= 1;
  $("#customers-next").disabled = customers.page >= pages;
}

async function openCustomer(id, confirm) {
  const dialog = $("#customer-detail");
  const error = dialog.querySelector('[data-role="error"]');
  error.textContent = "";
  let user;
  let placed = { items: [], total: 0 };
  const refreshing = Boolean(customers.detail && customers.detail.id === id);
  try {
    const [found, orderPage] = await Promise.all([
      api("/admin/users?" + new URLSearchParams({ id, page_size: "1" })),
      api("/admin/orders?" + new URLSearchParams({ user_id: id, page_size: "10" })).catch(() => placed),
    ]);
    user = found.items[0];
    placed = orderPage;
  } catch (err) {
    $("#customers-error").textContent = "Could not open the customer: " + err.message;
    return;
  }
  if (!user) {
    $("#customers-error").textContent = "That account no longer exists.";
    return;
  }
  people.set(user.id, user);
  if (refreshing && !(customers.detail && customers.detail.id === id)) return; // closed meanwhile
  customers.detail = { id, confirm: confirm || null };
  dialog.dataset.userId = id;
  $("#customer-detail-title").textContent = user.name || user.email;
  dialog.querySelector('[data-role="body"]').replaceChildren(...customerDetail(user, placed, customers.detail.confirm));
  if (!dialog.open) {
    showDialog(dialog);
    dialog.querySelector('[data-role="close"]').focus();
  } else if (customers.detail.confirm) {
    const yes = dialog.querySelector(".confirm button");
    if (yes) yes.focus();
  }
}

function customerDetail(u, placed, confirm) {
  const parts = [facts([
    ["E-mail", u.email + (u.email_verified ? " (verified)" : " (not verified)")],
    ["Phone", u.phone],
    ["Role", u.role === "admin" ? "admin" : "customer"],
    ["State", u.is_active ? "active" : "blocked"],
    ["Joined", new Date(u.created_at).toLocaleString()],
  ])];
  parts.push(customerActions(u, confirm));
  const book = u.addresses || [];
  parts.push(section("Addresses", book.length
    ? el("ul", { className: "plain addresses" }, ...book.map((a) => el("li", {},
      el("address", {}, ...[a.name, a.line1, a.line2, [a.postal_code, a.city].filter(Boolean).join(" "), a.region, a.country, a.phone]
        .filter(Boolean).map((line) => el("div", { text: line }))),
      a.is_default ? el("span", { className: "badge", text: "default" }) : null)))
    : el("p", { className: "muted", text: "No saved addresses." })));
  const list = placed.items || [];
  parts.push(section("Orders" + (placed.total ? " (" + placed.total + ")" : ""), list.length
    ? el("ul", { className: "plain customer-orders" }, ...list.map((o) => {
      const open = el("button", { type: "button", className: "link mono", text: shortId(o.id), "aria-label": "Open order " + shortId(o.id) });
      open.addEventListener("click", () => openOrder(o.id));
      return el("li", { dataset: { orderId: o.id } }, open, " ",
        el("span", { className: "status status-" + o.status, text: label(o.status) }), " ",
        el("span", { text: money(o.total, o.currency) }), " ",
        el("span", { className: "muted", text: when(o.created_at) }));
    }))
    : el("p", { className: "muted", text: "No orders yet." })));
  return parts;
}

const CONFIRMS = {
  block: { body: { is_active: false }, yes: "Yes, block",
    warn: (u) => "Block " + u.email + "? They are signed out everywhere at once and cannot sign in or order until unblocked. Their orders stay as they are." },
  unblock: { body: { is_active: true }, yes: "Yes, unblock",
    warn: (u) => "Unblock " + u.email + "? They can sign in and order again." },
  admin: { body: { role: "admin" }, yes: "Yes, make admin",
    warn: (u) => "Make " + u.email + " an admin? They get the whole back office: every order, every customer, "
      + "the catalog and prices. Their current sessions end; they sign in again as an admin." },
  user: { body: { role: "user" }, yes: "Yes, make customer",
    warn: (u) => "Take the admin role from " + u.email + "? They lose the back office at once and are signed out." },
};

function customerActions(u, confirm) {
  const problem = el("p", { className: "error", role: "alert" });
  if (confirm && CONFIRMS[confirm]) {
    const c = CONFIRMS[confirm];
    const form = el("form", { className: "confirm", "aria-label": "Confirm" },
      el("p", { className: "warning", text: c.warn(u) }),
      el("div", { className: "actions" },
        el("button", { type: "submit", className: "danger-solid", text: c.yes }),
        el("button", { type: "button", className: "quiet", dataset: { role: "back" }, text: "Never mind" })));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      for (const b of form.querySelectorAll("button")) b.disabled = true;
      try {
        const updated = await api("/admin/users/" + encodeURIComponent(u.id), { method: "PATCH", body: c.body });
        people.set(updated.id, updated);
        const i = customers.rows.findIndex((r) => r.id === updated.id);
        if (i >= 0) customers.rows[i] = updated;
        renderCustomers(updated.id);
        openCustomer(u.id);
      } catch (err) {
        for (const b of form.querySelectorAll("button")) b.disabled = false;
        problem.textContent = err.message;
      }
    });
    form.querySelector('[data-role="back"]').addEventListener("click", () => openCustomer(u.id));
    return section("Account", form, problem);
  }
  const box = el("div", { className: "detail-actions" });
  const offer = (what, textOf, className) => {
    const button = el("button", { type: "button", className, text: textOf });
    button.addEventListener("click", () => openCustomer(u.id, what));
    box.append(button);
  };
  if (u.is_active) offer("block", "Block", "danger");
  else offer("unblock", "Unblock", "");
  if (u.role === "admin") offer("user", "Make customer", "quiet");
  else offer("admin", "Make admin", "quiet");
  return section("Account", box, problem);
}
