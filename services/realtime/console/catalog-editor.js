/*
 * Catalog: the product editor, a dialog over the catalog screen (options, variants, images).
 *
 * - A new product is one `product:add` carrying its options and every variant: all or nothing.
 * - An existing product is changed by the smallest requests that say what the admin changed, so a
 *   sale made while the editor was open is never undone by a stale number: one variant's price or
 *   stock is a PATCH of that variant with the fields changed, a new size a POST of the variant (its
 *   value joins the option), a retired colour a DELETE per variant, and the product's own fields and
 *   the options' values one `product:update`. Changing which options a product has (adding, removing
 *   or renaming one) rebuilds its variants in one `product:update` with the whole list; no old
 *   variant fits the new options then, so every one is retired and no stale stock is sent either.
 *   A refusal stops nothing else; what was refused keeps what the admin typed, next to its message.
 * - Images need the product to exist: files picked or dropped go as multipart to the catalog's admin
 *   route (type read from the bytes there), then are ordered (drag or buttons), described, linked to
 *   a variant or deleted over REST.
 * - What another admin or a sale changes arrives by `product:updated` / `stock:updated` and shows at
 *   once; what this admin typed and has not saved stays as typed (inputs marked data-dirty).
 */
"use strict";

const MAX_OPTIONS = 3;
const MAX_IMAGE_BYTES = 10 * 1024 * 1024;
const ROW_FIELDS = ["sku", "price", "compare_at_price", "stock", "is_active"];
const PRICE_FIELDS = new Set(["price", "compare_at_price"]);
const BASICS = ["name", "sku", "category_id", "currency", "description", "is_active"];
const IMAGE_DRAG = "text/x-shop-image";

const editor = screen({
  name: "product-editor",
  id: null, // the product edited; null while adding a new one
  base: null, // the product as the catalog last told it (kept live)
  marks: new Map(), // row key -> "skip" (a new combination not to add) | "retire" (a variant to stop selling)
  rowErrors: new Map(), // row key -> [[field, message]]: said again when a live change re-renders the rows
  saving: false,
  opener: null,

  boot() {
    buildEditor();
    const dialog = $("#product-editor");
    dialog.querySelector('[data-role="close"]').addEventListener("click", () => dialog.close());
    dialog.addEventListener("close", () => {
      // closed by mistake (Escape) with changes typed: they are there again when it reopens
      editor.closed = editorForm().querySelector("[data-dirty]") ? editor.id || "new" : null;
      Object.assign(editor, { id: null, base: null });
      if (editor.opener && document.contains(editor.opener)) editor.opener.focus();
    });
    $("#product-new").addEventListener("click", (event) => openEditor(null, event.currentTarget));
  },

  end() {
    const dialog = $("#product-editor");
    if (dialog.open) dialog.close();
    editor.closed = null; // signed out: nothing typed is kept for whoever signs in next
    forgetDrafts();
  },

  apply(name, d) {
    if (!editor.id || !$("#product-editor").open) return;
    const base = editor.base;
    if ((name === "product:updated" || name === "product:added") && d.id === editor.id) {
      if (base && typeof base.version === "number" && typeof d.version === "number" && base.version > d.version) return;
      editor.base = { ...base, ...d };
      refreshEditor();
    } else if (name === "stock:updated" && d.product_id === editor.id && base) {
      if (typeof base.version === "number" && base.version > d.version) return;
      Object.assign(base, { stock: d.stock, version: d.version });
      for (const moved of d.variants || []) {
        const v = (base.variants || []).find((x) => x.id === moved.id);
        if (v) v.stock = moved.stock;
      }
      refreshEditor();
    } else if (name === "product:deleted" && d.id === editor.id) {
      editorForm().querySelector('[data-error-for="_form"]').textContent = "Another admin deleted this product.";
      editorForm().querySelector('[data-role="submit"]').disabled = true;
    }
  },
});

const editorForm = () => $("#product-form");
// the product's own fields (variant rows have inputs of the same names: sku, is_active)
const basic = (name) => editorForm().querySelector('[data-basic="' + name + '"]');
const variantsBody = () => $("#product-variants");

// ---- building the dialog once --------------------------------------------------------------
function labelled(text, control, slot, className) {
  return el("label", { className: "field" + (className ? " " + className : "") }, el("span", { text }), control,
    el("small", { className: "field-error", "data-error-for": slot }));
}

function buildEditor() {
  const input = (name, extra) => el("input", { name, autocomplete: "off", "data-basic": name, ...extra });
  const form = el("form", { id: "product-form", className: "editor product-form", novalidate: "" },
    labelled("Name", input("name"), "name"),
    labelled("SKU (the product's)", input("sku"), "sku"),
    labelled("Category", el("select", { name: "category_id", "data-basic": "category_id", "data-categories": "" }), "category_id"),
    labelled("Currency", input("currency", { placeholder: "USD", maxlength: "3" }), "currency"),
    labelled("Description", input("description"), "description", "wide"),
    el("label", { className: "check wide" }, el("input", { type: "checkbox", name: "is_active", "data-basic": "is_active" }),
      el("span", { text: "Active: shown in the shop" })),
    el("fieldset", { className: "wide part" }, el("legend", { text: "Options" }),
      el("p", { className: "muted hint", text: "Up to 3, like Size with the values S, M, L. "
        + "Each variant is one value of each option." }),
      el("div", { id: "product-options" }),
      el("button", { type: "button", className: "small quiet", id: "product-add-option", text: "Add option" }),
      el("small", { className: "field-error", "data-error-for": "options" })),
    el("fieldset", { className: "wide part" }, el("legend", { text: "Variants" }),
      el("div", { className: "scroll" },
        el("table", { className: "stack-on-phone variants" },
          el("thead", {}, el("tr", {}, ...["Variant", "SKU", "Price", "Compare-at price", "Stock", "Active", ""]
            .map((h) => el("th", { text: h })))),
          el("tbody", { id: "product-variants" }))),
      el("small", { className: "field-error", "data-error-for": "variants" })),
    el("p", { className: "error form-error", "data-error-for": "_form", role: "alert" }),
    el("p", { className: "muted wide", role: "status", "data-role": "saved" }),
    el("div", { className: "actions" },
      el("button", { type: "submit", "data-role": "submit", text: "Add product" }),
      el("button", { type: "button", className: "quiet", "data-role": "discard", hidden: "", text: "Discard changes",
        on: { click: (event) => {
          forgetDrafts();
          clearEditorErrors();
          editorForm().querySelector('[data-role="saved"]').textContent = "";
          event.currentTarget.hidden = true;
          refreshEditor();
          basic("name").focus();
        } } })));
  const images = el("section", { className: "images-part", "aria-labelledby": "product-images-title" },
    el("h3", { id: "product-images-title", text: "Images" }),
    el("p", { className: "muted", id: "product-images-hint", text: "Add the product first, then its images." }),
    el("div", { className: "dropzone", id: "product-dropzone" },
      el("span", { text: "Drop JPEG, PNG or WebP images here (10 MB each at most), or " }),
      el("label", { className: "file-pick" }, el("span", { text: "choose files: " }),
        el("input", { type: "file", name: "images", multiple: "", accept: "image/jpeg,image/png,image/webp" }))),
    el("p", { className: "muted", role: "status", id: "product-images-status" }),
    el("p", { className: "error", role: "alert", id: "product-images-error" }),
    el("ol", { className: "image-list", id: "product-images" }));
  $("#product-editor [data-role=body]").replaceChildren(form, images);

  form.addEventListener("input", (event) => {
    const target = event.target;
    if (!target.name) return;
    target.dataset.dirty = "1";
    // the options and the product's SKU decide which rows there are and the SKUs they suggest
    if (target.name.startsWith("option-") || target.name === "sku") renderVariants();
  });
  form.addEventListener("change", (event) => {
    if (event.target.type === "checkbox" || event.target.tagName === "SELECT") event.target.dataset.dirty = "1";
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    saveProduct();
  });
  $("#product-add-option").addEventListener("click", () => {
    $("#product-options").append(optionRow({ name: "", values: [] }, true));
    syncOptionButtons();
    $("#product-options").lastElementChild.querySelector("input").focus();
  });
  bindImageDrops(images);
}

function optionRow(option, dirty) {
  const name = el("input", { name: "option-name", autocomplete: "off", placeholder: "Size" });
  const values = el("input", { name: "option-values", autocomplete: "off", placeholder: "S, M, L" });
  name.value = option.name;
  values.value = option.values.join(", ");
  name.dataset.base = dirty ? "" : name.value;
  values.dataset.base = dirty ? "" : values.value;
  if (dirty) name.dataset.dirty = values.dataset.dirty = "1";
  const row = el("div", { className: "option-row" },
    labelled("Option", name, "option-name"),
    labelled("Values (comma-separated)", values, "option-values", "grow"),
    el("button", { type: "button", className: "small quiet remove-option", text: "Remove",
      "aria-label": "Remove the option " + (option.name || ""), on: { click: () => {
        row.remove();
        for (const other of $("#product-options").querySelectorAll("input")) other.dataset.dirty = "1";
        syncOptionButtons();
        renderVariants();
      } } }),
    el("small", { className: "field-error row-slot", "data-error-for": "option" }));
  return row;
}

function syncOptionButtons() {
  $("#product-add-option").disabled = $("#product-options").children.length >= MAX_OPTIONS;
}

// ---- opening, and following the product live -----------------------------------------------
async function openEditor(id, opener) {
  const dialog = $("#product-editor");
  const form = editorForm();
  Object.assign(editor, { id, base: id ? catalog.products.get(id) || null : null, opener: opener || null });
  const resumed = editor.closed === (id || "new");
  editor.closed = null;
  if (!resumed) forgetDrafts();
  form.querySelector('[data-role="discard"]').hidden = !resumed;
  clearEditorErrors();
  form.querySelector('[data-role="saved"]').textContent = "";
  form.querySelector('[data-role="submit"]').disabled = false;
  $("#product-images-error").textContent = "";
  $("#product-images-status").textContent = "";
  refreshEditor();
  if (resumed) form.querySelector('[data-role="saved"]').textContent = "Your unsaved changes are still here.";
  showDialog(dialog);
  basic("name").focus();
  if (!id) return;
  try {
    const fresh = await api("/admin/products/" + id);
    if (editor.id !== id) return; // closed or another opened meanwhile
    if (!editor.base || !(editor.base.version > fresh.version)) editor.base = fresh;
    refreshEditor();
  } catch (err) {
    form.querySelector('[data-error-for="_form"]').textContent = "Could not load the product: " + err.message;
  }
}

function forgetDrafts() {
  editor.marks.clear();
  for (const input of editorForm().querySelectorAll("[data-dirty]")) delete input.dataset.dirty;
  $("#product-options").replaceChildren();
}

// everything shown again from the product as last told, keeping what the admin typed
function refreshEditor() {
  const form = editorForm();
  const p = editor.base;
  renderCategories(); // the category choices, in tree order, before one is chosen
  $("#product-editor-title").textContent = p ? "Edit " + p.name : "New product";
  form.querySelector('[data-role="submit"]').textContent = editor.id ? "Save product" : "Add product";
  for (const name of BASICS) {
    const input = basic(name);
    const value = !p ? (name === "is_active" ? true : "") : name === "is_active" ? p.is_active !== false : String(p[name] ?? "");
    if (input.type === "checkbox") {
      input.dataset.base = String(value);
      if (!input.dataset.dirty) input.checked = value;
    } else {
      input.dataset.base = value;
      if (!input.dataset.dirty) input.value = value;
    }
  }
  const options = $("#product-options");
  const drafted = options.querySelector("[data-dirty]");
  if (!drafted) {
    const rows = ((p && p.options) || []).map((o) => optionRow(o, false));
    options.replaceChildren(...rows);
  }
  if (!options.children.length && !p) options.append(optionRow({ name: "", values: [] }, false));
  syncOptionButtons();
  renderVariants();
  renderImages();
}

// ---- options and the variant rows they make -------------------------------------------------
// the options as typed (values split on commas); rows with no name and no values are left out
function typedOptions() {
  const out = [];
  for (const row of $("#product-options").children) {
    const name = row.querySelector('[name="option-name"]').value.trim();
    const values = row.querySelector('[name="option-values"]').value.split(",").map((v) => v.trim()).filter(Boolean);
    if (name || values.length) out.push({ name, values, row });
  }
  return out;
}

const comboKey = (combo) => JSON.stringify(Object.keys(combo).sort().map((k) => [k, combo[k]]));

function combinations(options) {
  const usable = options.filter((o) => o.name && o.values.length);
  let combos = [{}];
  for (const o of usable) {
    combos = combos.flatMap((c) => [...new Set(o.values)].map((v) => ({ ...c, [o.name]: v })));
  }
  return { combos, names: usable.map((o) => o.name) };
}

const comboTitle = (names, combo) => names.map((n) => combo[n]).join(" / ") || "Default";

function suggestedSku(combo, names) {
  const base = basic("sku").value.trim() || "SKU";
  const tail = names.map((n) => combo[n]).join("-");
  return (tail ? base + "-" + tail : base).toUpperCase().replace(/[^A-Z0-9._/-]+/g, "-");
}

// every row: the options' combinations (a live variant's or a new one's) and the live variants
// no combination names any more (retired on save)
function variantRows() {
  const p = editor.base;
  const { combos, names } = combinations(typedOptions());
  const live = new Map(((p && p.variants) || []).map((v) => [comboKey(v.options || {}), v]));
  const rows = combos.map((combo) => {
    const key = comboKey(combo);
    const variant = live.get(key) || null;
    live.delete(key);
    const mark = editor.marks.get(key);
    const state = variant ? (mark === "retire" ? "retire" : "live") : mark === "skip" ? "skip" : "new";
    return { key, combo, variant, state, title: comboTitle(names, combo) };
  });
  for (const [key, variant] of live) rows.push({ key, combo: variant.options || {}, variant, state: "gone", title: variant.title });
  return { rows, names };
}

function rowBase(row, names, first) {
  const v = row.variant;
  const cur = currencyOf();
  if (v) {
    return { sku: v.sku, price: fromMinor(v.price, cur), compare_at_price: fromMinor(v.compare_at_price, cur),
      stock: String(v.stock ?? 0), is_active: v.is_active !== false };
  }
  return { sku: suggestedSku(row.combo, names), price: first ? fromMinor(first.price, cur) : "", compare_at_price: "",
    stock: "0", is_active: true };
}

const currencyOf = () => (basic("currency").value.trim() || (editor.base && editor.base.currency) || "USD").toUpperCase();
const valueOf = (input) => (input.type === "checkbox" ? String(input.checked) : input.value);

function same(field, a, b) {
  if (PRICE_FIELDS.has(field)) return String(toMinor(String(a), currencyOf())) === String(toMinor(String(b), currencyOf()));
  return String(a).trim() === String(b).trim();
}

// the image a variant shows: one uploaded for it (the image names the variant), else the one the
// variant names (the seed links every variant of a colour to that colour's picture)
function imageOf(variant) {
  const media = (editor.base && editor.base.media) || [];
  return media.find((m) => m.variant_id === variant.id) || media.find((m) => m.id === variant.image_id) || null;
}

const STATE_NOTE = { new: "new", skip: "not added", retire: "will be retired", gone: "will be retired" };

function renderVariants() {
  const body = variantsBody();
  // what the admin typed per row, so a re-render (typing an option, a live change) keeps it
  const drafts = new Map();
  for (const input of body.querySelectorAll("[data-dirty]")) {
    const key = input.closest("tr").dataset.key;
    drafts.set(key, { ...drafts.get(key), [input.name]: valueOf(input) });
  }
  const { rows, names } = variantRows();
  const single = names.length === 0;
  const first = editor.base && (editor.base.variants || [])[0];
  keepFocus(body, "key", () => body.replaceChildren(...rows.map((row) => {
    const base = rowBase(row, names, first);
    const draft = drafts.get(row.key) || {};
    const off = row.state !== "live" && row.state !== "new";
    const cell = (field, label, control) => {
      control.name = field;
      control.classList.add("in-" + field); // found again after a re-render (keepFocus)
      control.setAttribute("aria-label", row.title + ": " + label);
      control.disabled = off;
      if (control.type === "checkbox") control.checked = base[field];
      else control.value = base[field];
      control.dataset.base = String(base[field]);
      if (field in draft && !off) {
        if (control.type === "checkbox") control.checked = draft[field] === "true";
        else control.value = draft[field];
        control.dataset.dirty = "1";
      }
      return el("td", { "data-label": label, className: "cell-" + field }, control,
        el("small", { className: "field-error", "data-error-for": field }));
    };
    const toggle = row.state === "live" || row.state === "retire"
      ? (row.variant && !single ? el("button", { type: "button", className: "small quiet row-toggle",
        text: row.state === "retire" ? "Keep" : "Retire", on: { click: () => toggleMark(row.key, "retire") } }) : null)
      : row.state === "new" || row.state === "skip"
        ? (single ? null : el("button", { type: "button", className: "small quiet row-toggle",
          text: row.state === "skip" ? "Add" : "Skip", on: { click: () => toggleMark(row.key, "skip") } }))
        : null;
    const skuCell = single
      ? el("td", { "data-label": "SKU", className: "muted cell-sku" }, el("span", { text: "the product's" }))
      : cell("sku", "SKU", el("input", { autocomplete: "off" }));
    return el("tr", { dataset: { key: row.key, state: row.state, variantId: row.variant ? row.variant.id : "" } },
      el("td", { "data-label": "Variant", className: "cell-title" }, thumbOf(row.variant), el("span", { text: row.title }),
        STATE_NOTE[row.state] ? el("span", { className: "badge state", text: STATE_NOTE[row.state] }) : null,
        el("small", { className: "field-error", "data-error-for": "row" })),
      skuCell,
      cell("price", "Price", el("input", { autocomplete: "off", inputmode: "decimal", placeholder: "19.99" })),
      cell("compare_at_price", "Compare-at price", el("input", { autocomplete: "off", inputmode: "decimal" })),
      cell("stock", "Stock", el("input", { autocomplete: "off", inputmode: "numeric" })),
      cell("is_active", "Active", el("input", { type: "checkbox" })),
      el("td", { className: "num" }, toggle));
  })));
  for (const tr of body.rows) {
    for (const [field, message] of editor.rowErrors.get(tr.dataset.key) || []) {
      const slot = tr.querySelector('[data-error-for="' + field + '"]') || tr.querySelector('[data-error-for="row"]');
      if (!slot.textContent.includes(message)) slot.textContent = slot.textContent ? slot.textContent + " " + message : message;
      const input = tr.querySelector('[name="' + field + '"]');
      if (input) input.setAttribute("aria-invalid", "true");
    }
  }
}

function thumbOf(variant) {
  const image = variant && imageOf(variant);
  if (!image) return null;
  return el("img", { className: "variant-thumb", src: (image.thumbnails && image.thumbnails.small) || image.url,
    alt: image.alt || "", width: "32", height: "32" });
}

function toggleMark(key, kind) {
  if (editor.marks.get(key) === kind) editor.marks.delete(key);
  else editor.marks.set(key, kind);
  renderVariants();
}

// ---- saving ---------------------------------------------------------------------------------
function clearEditorErrors() {
  editor.rowErrors.clear();
  clearErrors(editorForm());
  for (const slot of editorForm().querySelectorAll(".row-slot")) slot.textContent = "";
}

// the row's inputs as the catalog's variant fields ("19.99" -> 1999; anything else as typed)
function rowValues(tr) {
  const cur = currencyOf();
  const get = (name) => tr.querySelector('[name="' + name + '"]');
  const out = {
    price: toMinor(get("price").value, cur),
    stock: integer(get("stock").value.trim()),
    is_active: get("is_active").checked,
  };
  if (get("sku")) out.sku = get("sku").value.trim();
  const compare = get("compare_at_price").value.trim();
  out.compare_at_price = compare ? toMinor(compare, cur) : null;
  return out;
}

// the product's own fields: all of them for a new product, the changed ones for an existing one
function basicsPayload(editing) {
  const form = editorForm();
  const out = {};
  for (const name of BASICS) {
    const input = basic(name);
    if (editing && same(name, valueOf(input), input.dataset.base)) continue;
    if (name === "is_active") out.is_active = input.checked;
    else if (name === "currency") { if (input.value.trim() || editing) out.currency = input.value.trim().toUpperCase(); }
    else out[name] = input.value.trim();
  }
  return out;
}

function optionsChanged(typed) {
  const before = (editor.base && editor.base.options) || [];
  return JSON.stringify(typed.map((o) => [o.name, o.values])) !== JSON.stringify(before.map((o) => [o.name, o.values]));
}

async function saveProduct() {
  if (editor.saving) return;
  const form = editorForm();
  const submit = form.querySelector('[data-role="submit"]');
  clearEditorErrors();
  form.querySelector('[data-role="saved"]').textContent = "";
  editor.saving = true;
  submit.disabled = true;
  const problems = []; // [target, error]
  try {
    if (editor.id) await saveChanges(problems);
    else await addProduct(problems);
  } finally {
    editor.saving = false;
    submit.disabled = false;
  }
  for (const [target, error] of problems) showProblem(target, error);
  const saved = form.querySelector('[data-role="saved"]');
  if (!problems.length) {
    form.querySelector('[data-role="discard"]').hidden = true;
    if (!saved.textContent || saved.textContent === "Your unsaved changes are still here.") saved.textContent = "Saved.";
  }
}

// the product as the catalog now holds it; what it took of the admin's typing is no longer a draft
async function settle(product) {
  if (product) editor.base = product;
  else if (editor.id) {
    try {
      const fresh = await api("/admin/products/" + editor.id);
      if (!editor.base || !(editor.base.version > fresh.version)) editor.base = fresh;
    } catch (_) { /* the next event brings it */ }
  }
  for (const [key, mark] of editor.marks) if (mark === "retire") editor.marks.delete(key);
  if (editor.base) upsertProduct(editor.base);
  // the options as typed are the product's now when they equal what it has
  const options = $("#product-options");
  if (!optionsChanged(typedOptions())) for (const input of options.querySelectorAll("[data-dirty]")) delete input.dataset.dirty;
  refreshEditor();
  for (const input of editorForm().querySelectorAll("[data-dirty]")) {
    if (input.closest("#product-options")) continue;
    if (same(input.name, valueOf(input), input.dataset.base)) delete input.dataset.dirty;
  }
  renderProducts();
}

async function addProduct(problems) {
  const typed = typedOptions();
  const trs = [...variantsBody().rows].filter((tr) => tr.dataset.state === "new");
  const payload = basicsPayload(false);
  const ctx = { rows: trs.map((tr) => tr.dataset.key), options: typed.map((o) => o.row) };
  if (!typed.length) {
    // no options: the product's one variant takes its SKU, price and stock (the first-wave shape)
    const values = trs.length ? rowValues(trs[0]) : {};
    delete values.sku;
    delete values.is_active;
    if (values.compare_at_price === null) delete values.compare_at_price;
    Object.assign(payload, values);
    ctx.single = trs.length ? trs[0].dataset.key : null;
  } else {
    payload.options = typed.map((o) => ({ name: o.name, values: o.values }));
    payload.variants = trs.map((tr) => {
      const values = rowValues(tr);
      if (values.compare_at_price === null) delete values.compare_at_price;
      return { ...values, options: Object.fromEntries(JSON.parse(tr.dataset.key)) };
    });
  }
  const ack = await command("product:add", payload, editorForm());
  if (!ack.ok) {
    problems.push(...targets(ack.error, ctx));
    return;
  }
  editor.id = ack.data.id;
  editor.marks.clear();
  await settle(ack.data);
  editorForm().querySelector('[data-role="saved"]').textContent = "Added. Its images can be added below.";
}

async function saveChanges(problems) {
  const id = editor.id;
  const path = "/admin/products/" + id;
  const typed = typedOptions();
  const before = (editor.base && editor.base.options) || [];
  const trs = [...variantsBody().rows];
  const structural = JSON.stringify(typed.map((o) => o.name)) !== JSON.stringify(before.map((o) => o.name));
  const basics = basicsPayload(true);
  if (structural) {
    // other options: every variant is made anew from the rows (the old ones no combination names are retired)
    const made = trs.filter((tr) => tr.dataset.state === "new");
    const payload = { id, ...basics, options: typed.map((o) => ({ name: o.name, values: o.values })),
      variants: made.map((tr) => {
        const values = rowValues(tr);
        if (!values.sku) values.sku = basic("sku").value.trim();
        return { ...values, options: Object.fromEntries(JSON.parse(tr.dataset.key)) };
      }) };
    const ack = await command("product:update", payload, editorForm());
    if (!ack.ok) problems.push(...targets(ack.error, { rows: made.map((tr) => tr.dataset.key), options: typed.map((o) => o.row) }));
    await settle(ack.ok ? ack.data : null);
    return;
  }
  const live = trs.filter((tr) => tr.dataset.state === "live");
  const added = trs.filter((tr) => tr.dataset.state === "new");
  const retired = trs.filter((tr) => tr.dataset.state === "retire" || tr.dataset.state === "gone");
  const attempt = async (tr, request) => {
    try {
      await request();
    } catch (err) {
      problems.push(...targets({ status: err.status, detail: err.message, ...err.problem }, { row: tr.dataset.key }));
    }
  };
  for (const tr of live) {
    const values = rowValues(tr);
    const changed = {};
    for (const input of tr.querySelectorAll("input[name]")) {
      if (!same(input.name, valueOf(input), input.dataset.base)) changed[input.name] = values[input.name];
    }
    if (Object.keys(changed).length) {
      await attempt(tr, () => api(path + "/variants/" + tr.dataset.variantId, { method: "PATCH", body: changed }));
    }
  }
  const retire = () => Promise.all(retired.map((tr) => attempt(tr, () => api(path + "/variants/" + tr.dataset.variantId, { method: "DELETE" }))));
  const add = async () => {
    for (const tr of added) {
      const values = rowValues(tr);
      if (values.compare_at_price === null) delete values.compare_at_price;
      await attempt(tr, () => api(path + "/variants", { method: "POST",
        body: { ...values, options: Object.fromEntries(JSON.parse(tr.dataset.key)) } }));
    }
  };
  // a retired variant frees its SKU for a new one; but the last live one cannot go before others come
  if (retired.length >= live.length + retired.length) {
    await add();
    await retire();
  } else {
    await retire();
    await add();
  }
  const payload = { id, ...basics };
  if (optionsChanged(typed)) payload.options = typed.map((o) => ({ name: o.name, values: o.values }));
  if (Object.keys(payload).length > 1) {
    const ack = await command("product:update", payload, editorForm());
    if (!ack.ok) problems.push(...targets(ack.error, { options: typed.map((o) => o.row) }));
  }
  await settle(null);
}

// where each of a problem's errors goes: [target, error]; a target is a row key and field, an
// option row, a product field, or the form
function targets(error, ctx) {
  const errors = error.errors && error.errors.length ? error.errors : [{ field: "", message: error.detail || error.title || "Refused.", type: "" }];
  const out = [];
  for (const e of errors) {
    const parts = String(e.field || "").split(".");
    let target;
    if (ctx.row) target = { row: ctx.row, field: ROW_FIELDS.includes(parts[0]) ? parts[0] : "row" };
    else if (parts[0] === "variants" && /^\d+$/.test(parts[1] || "") && ctx.rows && ctx.rows[Number(parts[1])]) {
      target = { row: ctx.rows[Number(parts[1])], field: ROW_FIELDS.includes(parts[2]) ? parts[2] : "row" };
    } else if (parts[0] === "options" && /^\d+$/.test(parts[1] || "") && ctx.options && ctx.options[Number(parts[1])]) {
      target = { option: ctx.options[Number(parts[1])] };
    } else if (ctx.single && ["price", "compare_at_price", "stock"].includes(parts[0])) {
      target = { row: ctx.single, field: parts[0] };
    } else if (["name", "sku", "category_id", "currency", "description", "options", "variants"].includes(parts[0])) {
      target = { field: parts[0] };
    } else target = { form: true };
    // pydantic's whole-variant rule names the variant, not the field it is about
    let said = e;
    if (target.row && target.field === "row" && /compare_at_price/.test(String(e.message))) {
      target.field = "compare_at_price";
      said = { ...e, field: "compare_at_price", type: "value_error" };
    }
    out.push([target, e.field || !target.form ? said : { ...said, message: error.detail || said.message }]);
  }
  if (out.every(([t]) => !t.form) && error.errors && error.errors.length) out.push([{ form: true, head: true }, error]);
  return out;
}

function showProblem(target, e) {
  const form = editorForm();
  let slot = null;
  let input = null;
  if (target.head) {
    const line = form.querySelector('[data-error-for="_form"]');
    if (!line.textContent) {
      line.textContent = editor.id ? "Some changes were not saved: see the messages beside them."
        : "Not added: see the messages beside the fields.";
    }
    return;
  }
  const message = target.form && !e.field ? (e.message || e.detail || "Refused.") : humanMessage(e);
  if (target.row) {
    editor.rowErrors.set(target.row, [...(editor.rowErrors.get(target.row) || []), [target.field, message]]);
    const tr = [...variantsBody().rows].find((r) => r.dataset.key === target.row);
    if (tr) {
      slot = tr.querySelector('[data-error-for="' + target.field + '"]') || tr.querySelector('[data-error-for="row"]');
      input = tr.querySelector('[name="' + target.field + '"]');
    }
  } else if (target.option) {
    slot = target.option.isConnected ? target.option.querySelector(".row-slot") : null;
  } else if (target.field) {
    slot = form.querySelector('[data-error-for="' + target.field + '"]');
    input = basic(target.field);
  }
  if (!slot) slot = form.querySelector('[data-error-for="_form"]');
  if (!slot.textContent.includes(message)) slot.textContent = slot.textContent ? slot.textContent + " " + message : message;
  if (input && input.setAttribute) input.setAttribute("aria-invalid", "true");
}

// ---- images ---------------------------------------------------------------------------------
const sortedMedia = () => [...((editor.base && editor.base.media) || [])]
  .sort((a, b) => a.position - b.position || 0);

function renderImages() {
  const list = $("#product-images");
  const enabled = Boolean(editor.id);
  $("#product-images-hint").hidden = enabled;
  $("#product-dropzone").hidden = !enabled;
  const alts = new Map([...list.querySelectorAll('[name="alt"][data-dirty]')].map((i) => [i.closest("li").dataset.imageId, i.value]));
  const media = enabled ? sortedMedia() : [];
  const variants = (editor.base && editor.base.variants) || [];
  keepFocus(list, "imageId", () => list.replaceChildren(...media.map((img, index) => {
    const alt = el("input", { name: "alt", autocomplete: "off", placeholder: "What the picture shows" });
    alt.value = alts.has(img.id) ? alts.get(img.id) : img.alt || "";
    if (alts.has(img.id)) alt.dataset.dirty = "1";
    alt.addEventListener("input", () => { alt.dataset.dirty = "1"; });
    alt.addEventListener("change", () => patchImage(img.id, { alt: alt.value.trim() }, alt));
    const shows = el("select", { name: "variant_id" }, new Option("Every variant", ""),
      ...variants.map((v) => new Option(v.title, v.id)));
    const shown = variants.find((v) => v.id === img.variant_id) || variants.find((v) => v.image_id === img.id);
    shows.value = shown ? shown.id : "";
    shows.addEventListener("change", () => patchImage(img.id, { variant_id: shows.value || null }, shows));
    const card = el("li", { className: "image-card", draggable: "true", dataset: { imageId: img.id } },
      el("img", { src: img.thumbnails && img.thumbnails.small ? img.thumbnails.small : img.url, alt: img.alt || "",
        width: "96", height: "96" }),
      el("div", { className: "image-fields" },
        labelled("Alt text", alt, "alt"),
        labelled("Shows", shows, "variant_id")),
      el("div", { className: "image-actions" },
        el("span", { className: "muted", text: (index + 1) + " of " + media.length }),
        el("button", { type: "button", className: "small quiet earlier", text: "Earlier", disabled: index === 0 ? "" : null,
          "aria-label": "Move image " + (index + 1) + " earlier", on: { click: () => moveImage(img.id, -1) } }),
        el("button", { type: "button", className: "small quiet later", text: "Later",
          disabled: index === media.length - 1 ? "" : null,
          "aria-label": "Move image " + (index + 1) + " later", on: { click: () => moveImage(img.id, 1) } }),
        imageDeleteButton(img.id)));
    card.addEventListener("dragstart", (event) => {
      event.dataTransfer.setData(IMAGE_DRAG, img.id);
      event.dataTransfer.effectAllowed = "move";
    });
    return card;
  })));
}

function imageDeleteButton(imageId) {
  return armedButton("Delete", "Confirm", async () => {
    const id = editor.id;
    try {
      await api("/admin/products/" + id + "/images/" + imageId, { method: "DELETE" });
      if (editor.id === id && editor.base) editor.base.media = (editor.base.media || []).filter((m) => m.id !== imageId);
      renderImages();
    } catch (err) {
      $("#product-images-error").textContent = err.message;
      return false;
    }
    return true;
  });
}

async function patchImage(imageId, body, control) {
  const id = editor.id;
  const card = control && control.closest("li");
  const slot = card && card.querySelector('[data-error-for="' + control.name + '"]');
  if (slot) slot.textContent = "";
  try {
    const image = await api("/admin/products/" + id + "/images/" + imageId, { method: "PATCH", body });
    if (control) delete control.dataset.dirty;
    if (editor.id === id && editor.base) {
      editor.base.media = (editor.base.media || []).map((m) => (m.id === imageId ? image : m));
    }
    return true;
  } catch (err) {
    const e = (err.problem.errors || [])[0];
    if (slot) slot.textContent = e ? humanMessage(e) : err.message;
    else $("#product-images-error").textContent = err.message;
    return false;
  }
}

// the images in a new order: each whose place changed is told its index
async function reorderImages(ids) {
  const id = editor.id;
  const media = sortedMedia();
  const byId = new Map(media.map((m) => [m.id, m]));
  const moves = ids.map((imageId, index) => [byId.get(imageId), index]).filter(([m, index]) => m && m.position !== index);
  for (const [m, index] of moves) m.position = index; // shown at once, then confirmed by the catalog
  renderImages();
  $("#product-images-error").textContent = "";
  for (const [m, index] of moves) {
    try {
      await api("/admin/products/" + id + "/images/" + m.id, { method: "PATCH", body: { position: index } });
    } catch (err) {
      $("#product-images-error").textContent = "Could not move an image: " + err.message;
      break;
    }
  }
}

function moveImage(imageId, step) {
  const ids = sortedMedia().map((m) => m.id);
  const from = ids.indexOf(imageId);
  const to = from + step;
  if (from < 0 || to < 0 || to >= ids.length) return;
  ids.splice(to, 0, ids.splice(from, 1)[0]);
  reorderImages(ids).then(() => {
    const again = $('#product-images [data-image-id="' + CSS.escape(imageId) + '"] .' + (step < 0 ? "earlier" : "later"));
    if (again && !again.disabled) again.focus();
  });
}

function bindImageDrops(section) {
  const zone = section.querySelector("#product-dropzone");
  const picker = zone.querySelector('input[type="file"]');
  picker.addEventListener("change", () => {
    uploadImages([...picker.files]);
    picker.value = "";
  });
  const hasFiles = (event) => [...(event.dataTransfer ? event.dataTransfer.types : [])].includes("Files");
  // files dropped anywhere on the editor are uploaded, never opened by the browser in place of the console
  const dialog = $("#product-editor");
  for (const type of ["dragenter", "dragover"]) {
    dialog.addEventListener(type, (event) => {
      if (!hasFiles(event) && ![...event.dataTransfer.types].includes(IMAGE_DRAG)) return;
      event.preventDefault();
      event.dataTransfer.dropEffect = hasFiles(event) && editor.id ? "copy" : hasFiles(event) ? "none" : "move";
      zone.classList.toggle("over", hasFiles(event) && Boolean(editor.id));
    });
  }
  dialog.addEventListener("dragleave", (event) => {
    if (!dialog.contains(event.relatedTarget)) zone.classList.remove("over");
  });
  dialog.addEventListener("drop", (event) => {
    zone.classList.remove("over");
    const dragged = event.dataTransfer.getData(IMAGE_DRAG);
    if (dragged) {
      event.preventDefault();
      const onto = event.target.closest && event.target.closest("#product-images li");
      if (!onto || onto.dataset.imageId === dragged) return;
      const ids = sortedMedia().map((m) => m.id).filter((x) => x !== dragged);
      const at = ids.indexOf(onto.dataset.imageId);
      const box = onto.getBoundingClientRect();
      // dropped on the lower or right half of a card: after it
      const after = event.clientY > box.top + box.height / 2 || (box.width > box.height * 2 && event.clientX > box.left + box.width / 2);
      ids.splice(after ? at + 1 : at, 0, dragged);
      reorderImages(ids);
      return;
    }
    if (!hasFiles(event)) return;
    event.preventDefault();
    if (editor.id) uploadImages([...event.dataTransfer.files]);
  });
}

function uploadProblem(file, err) {
  const name = file.name || "The file";
  if (err.status === 413) return name + " is larger than 10 MB: choose a smaller image.";
  if (err.status === 415) return name + " is not a JPEG, PNG or WebP image.";
  if (err.status === 503) return name + " was not stored: image storage is unavailable right now; try again shortly.";
  return name + ": " + err.message;
}

async function sendImage(productId, file) {
  const request = () => {
    const body = new FormData();
    body.append("file", file, file.name || "image");
    return fetch("/admin/products/" + productId + "/images", {
      method: "POST", body, cache: "no-store", credentials: "omit",
      headers: { Accept: "application/json", Authorization: "Bearer " + state.access },
    });
  };
  let resp;
  try {
    resp = await request();
    if (resp.status === 401) {
      await refreshTokens();
      resp = await request();
    }
  } catch (err) {
    if (err instanceof SessionEnded) throw err;
    throw new ApiError(0, { title: "Network error", detail: "The shop could not be reached; check the connection." });
  }
  const answer = await resp.json().catch(() => null);
  if (!resp.ok) throw new ApiError(resp.status, answer);
  return answer;
}

async function uploadImages(files) {
  const id = editor.id;
  if (!id || !files.length) return;
  const status = $("#product-images-status");
  const problems = [];
  for (const [i, file] of files.entries()) {
    if (file.size > MAX_IMAGE_BYTES) {
      problems.push(uploadProblem(file, { status: 413 }));
      continue;
    }
    status.textContent = "Uploading " + (i + 1) + " of " + files.length + ": " + file.name + "…";
    try {
      const image = await sendImage(id, file);
      if (editor.id === id && editor.base && !(editor.base.media || []).some((m) => m.id === image.id)) {
        editor.base.media = [...(editor.base.media || []), image];
        renderImages();
      }
    } catch (err) {
      problems.push(uploadProblem(file, err));
    }
  }
  status.textContent = problems.length < files.length ? "Uploaded " + (files.length - problems.length) + " of " + files.length + "." : "";
  $("#product-images-error").textContent = problems.join(" ");
}
