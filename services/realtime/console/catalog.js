/* Catalog: the categories tree and the products table, kept live from the catalog's events; a
 * product opens in the editor (catalog-editor.js). */
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
    // leaving an edit offers every category as a parent again
    $("#category-form").addEventListener("reset", () => setTimeout(renderCategories));
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

// the categories in tree order, each with its depth: parents before their children, siblings by
// position then name (a parent the console does not know shows its children at the top level)
function categoryTree() {
  const children = new Map();
  for (const c of catalog.categories.values()) {
    const parent = catalog.categories.has(c.parent_id) ? c.parent_id : null;
    if (!children.has(parent)) children.set(parent, []);
    children.get(parent).push(c);
  }
  const out = [];
  const seen = new Set();
  const walk = (parent, depth) => {
    const kids = (children.get(parent) || []).sort((a, b) => (a.position ?? 0) - (b.position ?? 0)
      || String(a.name).localeCompare(String(b.name)));
    for (const c of kids) {
      if (seen.has(c.id)) continue;
      seen.add(c.id);
      out.push({ c, depth });
      walk(c.id, depth + 1);
    }
  };
  walk(null, 0);
  // a cycle the server would not allow is still listed rather than lost
  for (const c of catalog.categories.values()) if (!seen.has(c.id)) out.push({ c, depth: 0 });
  return out;
}

// a category and everything under it: not a parent it may be moved under
function categoryBranch(id) {
  const branch = new Set([id]);
  for (const { c } of categoryTree()) if (branch.has(c.parent_id)) branch.add(c.id);
  return branch;
}

function renderCategories() {
  const tree = categoryTree();
  const list = $("#categories-list");
  keepFocus(list, "categoryId", () => list.replaceChildren(...tree.map(({ c, depth }) => el("li",
    { dataset: { categoryId: c.id, depth: String(Math.min(depth, 5)) } },
    el("span", { className: "name", text: c.name }),
    el("span", { className: "badge", text: (c.product_count ?? 0) + " products" }),
    el("button", { type: "button", className: "small quiet add-child", text: "Add inside",
      "aria-label": "Add inside " + c.name, on: { click: () => addCategoryInside(c.id) } }),
    el("button", { type: "button", className: "small quiet edit", text: "Edit", on: { click: () => editCategory(c.id) } }),
    deleteButton("category:delete", c.id, "#catalog-error", () => catalog.categories.delete(c.id))))));
  const editing = $("#category-form").dataset.editing;
  const barred = editing ? categoryBranch(editing) : new Set();
  for (const select of document.querySelectorAll("select[data-categories]")) {
    const current = select.value;
    const parent = select.name === "parent_id";
    const none = parent ? "(top level)" : "Choose a category";
    const choices = tree.filter(({ c }) => !(parent && barred.has(c.id)))
      .map(({ c, depth }) => new Option("\u2014 ".repeat(depth) + c.name, c.id));
    select.replaceChildren(new Option(none, ""), ...choices);
    select.value = catalog.categories.has(current) && !(parent && barred.has(current)) ? current : "";
  }
}

function addCategoryInside(id) {
  const form = $("#category-form");
  setMode(form, null, "category");
  renderCategories();
  form.elements.namedItem("parent_id").value = id;
  form.elements.namedItem("name").focus();
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
        p.is_active === false ? el("span", { className: "badge", text: "inactive" }) : null,
        (p.variants || []).length > 1 ? el("span", { className: "badge variants", text: p.variants.length + " variants" }) : null,
        (p.media || []).length ? el("span", { className: "badge images", text: p.media.length + (p.media.length > 1 ? " images" : " image") }) : null),
      el("td", { "data-label": "SKU", className: "mono", text: p.sku }),
      el("td", { "data-label": "Price", className: "num", text: priceOf(p) }),
      el("td", { "data-label": "Stock", className: "num", text: p.stock }),
      el("td", { "data-label": "Category", text: cat ? cat.name : "" }),
      el("td", { className: "num" },
        el("button", { type: "button", className: "small quiet edit", text: "Edit",
          on: { click: (event) => openEditor(p.id, event.currentTarget) } }),
        deleteButton("product:delete", p.id, "#catalog-error", () => removeProduct(p.id))));
  })));
}

// a product whose variants cost different amounts starts "from" its cheapest active one (the product's price)
function priceOf(p) {
  const prices = new Set((p.variants || []).filter((v) => v.is_active !== false).map((v) => v.price));
  return (prices.size > 1 ? "from " : "") + money(p.price, p.currency);
}

function categoryPayload(form, editing) {
  const out = { name: text(form, "name") };
  const parent = text(form, "parent_id");
  if (parent || editing) out.parent_id = parent || null;
  if (text(form, "position")) out.position = integer(text(form, "position"));
  if (text(form, "description") || editing) out.description = text(form, "description") || null;
  return out;
}

function editCategory(id) {
  const c = catalog.categories.get(id);
  const form = $("#category-form");
  if (!c) return;
  setMode(form, id, "category");
  renderCategories(); // not under itself nor its own children
  form.elements.namedItem("name").value = c.name || "";
  form.elements.namedItem("parent_id").value = c.parent_id || "";
  form.elements.namedItem("position").value = c.position ?? "";
  form.elements.namedItem("description").value = c.description || "";
  form.elements.namedItem("name").focus();
}
