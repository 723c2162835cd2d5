/* Catalog: categories and products, edited in place and kept live from the catalog's events. */
"use strict";

const catalog = screen({
  name: "catalog",
  categories: new Map(),
  products: new Map(), // every product the console has read (the newest hundred, the pages shown)
  total: 0,
  view: { q: "", page: 1, ids: [], total: 0 }, // the page of the products table
  viewLoading: 0,

  boot() {
    const search = $("#products-search");
    search.addEventListener("submit", (event) => {
      event.preventDefault();
      Object.assign(catalog.view, { q: text(search, "q"), page: 1 });
      loadProductPage();
    });
    search.querySelector('[data-role="clear"]').addEventListener("click", () => {
      search.reset();
      Object.assign(catalog.view, { q: "", page: 1 });
      loadProductPage();
    });
    $("#products-prev").addEventListener("click", () => { catalog.view.page -= 1; loadProductPage(); });
    $("#products-next").addEventListener("click", () => { catalog.view.page += 1; loadProductPage(); });
    bindForm($("#category-form"), "category", categoryPayload, (c) => { upsertCategory(c); renderCategories(); });
    bindForm($("#product-form"), "product", productPayload, (p) => { upsertProduct(p); renderProducts(); });
  },

  async load() {
    $("#catalog-error").textContent = "";
    const [categories, products] = await Promise.allSettled([
      api("/categories?flat=true"), api("/products?page_size=100&sort=newest"),
    ]);
    if (categories.status === "fulfilled") for (const c of categories.value) upsertCategory(c);
    if (products.status === "fulfilled") {
      for (const p of products.value.items) upsertProduct(p);
      catalog.total = Math.max(products.value.total, catalog.products.size);
    }
    const failed = [categories, products].find((r) => r.status === "rejected");
    if (failed) $("#catalog-error").textContent = "Could not load the catalog: " + failed.reason.message;
    const paged = await loadProductPage();
    catalog.render();
    return !failed && paged;
  },

  reset() {
    catalog.categories.clear();
    catalog.products.clear();
    catalog.total = 0;
  },

  end() {
    Object.assign(catalog.view, { q: "", page: 1, ids: [], total: 0 });
    $("#products-search").reset();
  },

  render() {
    renderCategories();
    renderProducts();
  },

  apply(name, d) {
    switch (name) {
      case "category:added": case "category:updated":
        upsertCategory(d);
        renderCategories();
        renderProducts();
        break;
      case "category:deleted":
        catalog.categories.delete(d.id);
        renderCategories();
        break;
      case "product:added": case "product:updated":
        upsertProduct(d);
        // a new product tops the unsearched first page
        if (name === "product:added" && !catalog.view.q && catalog.view.page === 1 && !catalog.view.ids.includes(d.id)) {
          catalog.view.ids.unshift(d.id);
          catalog.view.total += 1;
          if (catalog.view.ids.length > PRODUCTS_PAGE) catalog.view.ids.pop();
        }
        renderProducts();
        break;
      case "product:deleted":
        removeProduct(d.id);
        if (catalog.view.ids.includes(d.id)) {
          catalog.view.ids = catalog.view.ids.filter((id) => id !== d.id);
          catalog.view.total = Math.max(0, catalog.view.total - 1);
        }
        renderProducts();
        break;
      case "stock:updated": {
        const p = catalog.products.get(d.product_id);
        if (p && !(typeof p.version === "number" && p.version > d.version)) {
          Object.assign(p, { stock: d.stock, version: d.version });
          for (const moved of d.variants || []) {
            const v = (p.variants || []).find((x) => x.id === moved.id);
            if (v) v.stock = moved.stock;
          }
          renderProducts();
        }
        break;
      }
    }
  },
});

const PRODUCTS_PAGE = 20;

// one page of the products table: newest first, or by relevance when searched
async function loadProductPage() {
  const ticket = ++catalog.viewLoading;
  const v = catalog.view;
  const params = new URLSearchParams({ page: String(v.page), page_size: String(PRODUCTS_PAGE) });
  if (v.q) params.set("q", v.q);
  else params.set("sort", "newest");
  try {
    const page = await api("/products?" + params);
    if (ticket !== catalog.viewLoading) return true;
    for (const p of page.items) upsertProduct(p, false);
    v.ids = page.items.map((p) => p.id);
    v.total = page.total;
  } catch (err) {
    if (ticket === catalog.viewLoading) $("#catalog-error").textContent = "Could not load the products: " + err.message;
    return false;
  } finally {
    if (ticket === catalog.viewLoading) renderProducts();
  }
  return true;
}

function upsertCategory(c) {
  catalog.categories.set(c.id, { ...catalog.categories.get(c.id), ...c });
}
function upsertProduct(p, counted = true) {
  const known = catalog.products.get(p.id);
  if (known && typeof known.version === "number" && typeof p.version === "number" && known.version > p.version) return;
  if (p.deleted || p.deleted_at) return removeProduct(p.id);
  if (!known && counted) catalog.total += 1;
  catalog.products.set(p.id, { ...known, ...p });
}
function removeProduct(id) {
  if (catalog.products.delete(id)) catalog.total = Math.max(0, catalog.total - 1);
}

function renderCategories() {
  const cats = [...catalog.categories.values()].sort((a, b) => String(a.name).localeCompare(String(b.name)));
  $("#categories-list").replaceChildren(...cats.map((c) => el("li", { dataset: { categoryId: c.id } },
    el("span", { className: "name", text: c.name }),
    el("span", { className: "badge", text: (c.product_count ?? 0) + " products" }),
    el("button", { type: "button", className: "small quiet", text: "Edit", on: { click: () => editCategory(c.id) } }),
    deleteButton("category:delete", c.id, "#catalog-error", () => catalog.categories.delete(c.id)))));
  for (const select of document.querySelectorAll("select[data-categories]")) {
    const current = select.value;
    const none = select.name === "parent_id" ? "(top level)" : "Choose a category";
    select.replaceChildren(new Option(none, ""), ...cats.map((c) => new Option(c.name, c.id)));
    select.value = catalog.categories.has(current) ? current : "";
  }
}

function renderProducts() {
  const v = catalog.view;
  const items = v.ids.map((id) => catalog.products.get(id)).filter(Boolean);
  $("#products-count").textContent = v.total ? "(" + v.total + ")" : "";
  const pages = Math.max(1, Math.ceil(v.total / PRODUCTS_PAGE));
  $("#products-page").textContent = "Page " + v.page + " of " + pages;
  $("#products-prev").disabled = v.page <= 1;
  $("#products-next").disabled = v.page >= pages;
  $("#products-empty").hidden = items.length > 0 || !v.q;
  const body = $("#products-body");
  keepFocus(body, "productId", () => body.replaceChildren(...items.map((p) => {
    const cat = catalog.categories.get(p.category_id);
    return el("tr", { dataset: { productId: p.id } },
      el("td", { "data-label": "Name" }, el("span", { text: p.name }),
        p.is_active === false ? el("span", { className: "badge", text: "inactive" }) : null),
      el("td", { "data-label": "SKU", className: "mono", text: p.sku }),
      el("td", { "data-label": "Price", className: "num", text: money(p.price, p.currency) }),
      el("td", { "data-label": "Stock", className: "num", text: p.stock }),
      el("td", { "data-label": "Category", text: cat ? cat.name : "" }),
      el("td", { className: "num" },
        el("button", { type: "button", className: "small quiet edit", text: "Edit", on: { click: () => editProduct(p.id) } }),
        deleteButton("product:delete", p.id, "#catalog-error", () => removeProduct(p.id))));
  })));
}

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

function editCategory(id) {
  const c = catalog.categories.get(id);
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
  const p = catalog.products.get(id);
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
