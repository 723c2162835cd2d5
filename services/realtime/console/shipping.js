/*
 * Shipping zones (pricing's): where the shop ships, and each zone's methods with their rates.
 *
 * A zone is saved whole (POST, or PUT with its methods: a method sent with its id is kept, one
 * left out is removed), so the form holds the zone and every method row. Kept live by
 * shippingZone:added|updated|deleted: another admin's change shows here at once.
 */
"use strict";

const shipping = screen({
  name: "shipping",
  zones: new Map(),

  boot() {
    const form = $("#zone-form");
    $("#zone-add-method").addEventListener("click", () => addMethodRow().querySelector("input").focus());
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      saveZone(form);
    });
    form.querySelector('[data-role="cancel"]').addEventListener("click", () => editZone(null));
    editZone(null);
  },

  async load() {
    try {
      const zones = await api("/admin/shipping-zones");
      shipping.zones.clear();
      for (const z of zones) shipping.zones.set(z.id, z);
      $("#zones-error").textContent = "";
    } catch (err) {
      $("#zones-error").textContent = "Could not load the shipping zones: " + err.message;
      return false;
    } finally {
      shipping.render();
    }
    return true;
  },

  reset() {
    shipping.zones.clear();
  },

  end() {
    editZone(null);
  },

  apply(name, d) {
    if (!d || !d.id) return;
    if (name === "shippingZone:added" || name === "shippingZone:updated") {
      upsertZone(d);
      shipping.render();
    } else if (name === "shippingZone:deleted") {
      shipping.zones.delete(d.id);
      if ($("#zone-form").dataset.editing === d.id) {
        editZone(null);
        $("#zones-error").textContent = "The zone you were editing was deleted meanwhile.";
      }
      shipping.render();
    }
  },

  render() {
    const zones = [...shipping.zones.values()].sort((a, b) => String(a.name).localeCompare(String(b.name)));
    $("#zones-count").textContent = zones.length ? "(" + zones.length + ")" : "";
    $("#zones-empty").hidden = zones.length > 0;
    const body = $("#zones-body");
    keepFocus(body, "zoneId", () => body.replaceChildren(...zones.map(zoneRow)));
  },
});

// a newer version wins: an event may arrive after the answer to this admin's own save
function upsertZone(z) {
  const known = shipping.zones.get(z.id);
  if (known && typeof known.version === "number" && typeof z.version === "number" && known.version > z.version) return;
  shipping.zones.set(z.id, z);
}

function reach(z) {
  const parts = [(z.countries || []).join(", ")];
  if ((z.regions || []).length) parts.push("regions " + z.regions.join(", "));
  if ((z.postal_prefixes || []).length) parts.push("postal codes " + z.postal_prefixes.map((p) => p + "\u2026").join(", "));
  return parts.join(" \u00b7 ");
}

function methodText(m) {
  const parts = [m.name, m.amount === 0 ? "free" : money(m.amount, m.currency)];
  if (m.free_over != null) parts.push("free from " + money(m.free_over, m.currency));
  if (m.estimate) parts.push(m.estimate.min_days + "\u2013" + m.estimate.max_days + " days");
  if (m.is_active === false) parts.push("off");
  return parts.join(" \u00b7 ");
}

function zoneRow(z) {
  const edit = el("button", { type: "button", className: "small quiet zone-edit", text: "Edit",
    "aria-label": "Edit zone " + z.name });
  edit.addEventListener("click", () => editZone(z));
  const remove = armedButton("Delete", "Confirm delete", async () => {
    try {
      await api("/admin/shipping-zones/" + encodeURIComponent(z.id), { method: "DELETE" });
    } catch (err) {
      $("#zones-error").textContent = "Could not delete " + z.name + ": " + err.message;
      return false;
    }
    $("#zones-error").textContent = "";
    shipping.zones.delete(z.id);
    if ($("#zone-form").dataset.editing === z.id) editZone(null);
    shipping.render();
    return true;
  });
  remove.setAttribute("aria-label", "Delete zone " + z.name);
  remove.classList.add("zone-delete");
  return el("tr", { dataset: { zoneId: z.id } },
    el("td", { "data-label": "Zone", text: z.name }),
    el("td", { "data-label": "Reaches", text: reach(z) }),
    el("td", { "data-label": "Methods" }, (z.methods || []).length
      ? el("ul", { className: "plain" }, ...z.methods.map((m) => el("li", { dataset: { methodId: m.id }, text: methodText(m) })))
      : el("span", { className: "muted", text: "no methods: nothing ships here" })),
    el("td", { className: "num" }, edit, " ", remove));
}

// ---- the form: the zone's fields, then one row per method (its inputs named method_*: the zone's
// own "name" must stay the only one, or the form's elements answer a list for it) -----------------
const METHOD_FIELDS = [
  ["name", "Method", "e.g. Standard"], ["amount", "Price", "e.g. 4.90"], ["currency", "Currency", "e.g. EUR"],
  ["free_over", "Free from (optional)", "e.g. 50.00"], ["min_days", "Days, at least", "e.g. 2"], ["max_days", "Days, at most", "e.g. 4"],
];

function addMethodRow(m) {
  const row = el("div", { className: "method-row", dataset: { methodId: (m && m.id) || "" } });
  const values = m ? {
    name: m.name, amount: fromMinor(m.amount, m.currency), currency: m.currency,
    free_over: m.free_over == null ? "" : fromMinor(m.free_over, m.currency),
    min_days: m.estimate ? m.estimate.min_days : "", max_days: m.estimate ? m.estimate.max_days : "",
  } : {};
  for (const [name, caption, example] of METHOD_FIELDS) {
    row.append(el("label", { className: "field" }, el("span", { text: caption }),
      el("input", { name: "method_" + name, placeholder: example, autocomplete: "off", value: values[name] ?? "",
        inputmode: name === "name" || name === "currency" ? null : "decimal", maxlength: name === "currency" ? 3 : null }),
      el("small", { className: "field-error", dataset: { methodErrorFor: name } })));
  }
  const remove = el("button", { type: "button", className: "small quiet", text: "Remove method" });
  remove.addEventListener("click", () => {
    row.remove();
    renumberMethods();
  });
  row.append(el("div", { className: "actions" }, remove));
  $("#zone-methods").append(row);
  renumberMethods();
  return row;
}

// each row is a group named by its place, so a screen reader says which method a field belongs to
function renumberMethods() {
  [...$("#zone-methods").children].forEach((row, i) => {
    row.setAttribute("role", "group");
    row.setAttribute("aria-label", "Method " + (i + 1));
  });
}

function editZone(z) {
  const form = $("#zone-form");
  setMode(form, z ? z.id : null, "zone");
  $("#zone-methods").replaceChildren();
  if (z) {
    form.elements.namedItem("name").value = z.name;
    form.elements.namedItem("countries").value = (z.countries || []).join(", ");
    form.elements.namedItem("regions").value = (z.regions || []).join(", ");
    form.elements.namedItem("postal_prefixes").value = (z.postal_prefixes || []).join(", ");
    for (const m of z.methods || []) addMethodRow(m);
    form.elements.namedItem("name").focus();
  }
  if (!$("#zone-methods").children.length) addMethodRow();
}

function methodPayload(row) {
  const v = (name) => row.querySelector('[name="method_' + name + '"]').value.trim();
  const currency = v("currency").toUpperCase();
  const digitsOf = currency || "USD";
  const m = { name: v("name"), amount: toMinor(v("amount"), digitsOf), currency };
  if (row.dataset.methodId) m.id = row.dataset.methodId;
  if (v("free_over")) m.free_over = toMinor(v("free_over"), digitsOf);
  if (v("min_days") || v("max_days")) m.estimate = { min_days: integer(v("min_days")), max_days: integer(v("max_days")) };
  return m;
}

function zonePayload(form) {
  const list = (name) => text(form, name).split(",").map((s) => s.trim()).filter(Boolean);
  return {
    name: text(form, "name"),
    countries: codes(text(form, "countries")),
    regions: list("regions"),
    postal_prefixes: codes(text(form, "postal_prefixes")),
    methods: [...$("#zone-methods").children].map(methodPayload),
  };
}

async function saveZone(form) {
  clearErrors(form);
  for (const slot of form.querySelectorAll("[data-method-error-for]")) slot.textContent = "";
  const id = form.dataset.editing;
  const submit = form.querySelector('[data-role="submit"]');
  submit.disabled = true;
  try {
    const saved = await api(id ? "/admin/shipping-zones/" + encodeURIComponent(id) : "/admin/shipping-zones",
      { method: id ? "PUT" : "POST", body: zonePayload(form) });
    upsertZone(saved);
    editZone(null);
    shipping.render();
  } catch (err) {
    showZoneErrors(form, problemOf(err));
  } finally {
    submit.disabled = false;
  }
}

// a method's errors ("methods.1.amount") go beside that method's field; the rest as any form's
function showZoneErrors(form, problem) {
  const rows = [...$("#zone-methods").children];
  const rest = [];
  for (const e of problem.errors || []) {
    const m = /^methods\.(\d+)\.(\w+)(?:\.(\w+))?/.exec(String(e.field || ""));
    const field = m && (m[2] === "estimate" ? m[3] || "max_days" : m[2]);
    const slot = m && rows[Number(m[1])] && rows[Number(m[1])].querySelector('[data-method-error-for="' + field + '"]');
    if (!slot) {
      rest.push(e);
      continue;
    }
    const message = humanMessage(e);
    if (!slot.textContent.includes(message)) slot.textContent = (slot.textContent + " " + message).trim();
    const input = rows[Number(m[1])].querySelector('[name="method_' + field + '"]');
    if (input) input.setAttribute("aria-invalid", "true");
  }
  showErrors(form, { ...problem, errors: rest });
}
