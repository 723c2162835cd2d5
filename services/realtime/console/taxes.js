/*
 * Tax rates (pricing's): a rate per country, or per region of it (a region's rate adds to its
 * country's), on goods and optionally on shipping. Typed as a percentage ("19", "7.5"), kept as
 * basis points on the wire. Kept live by taxRate:added|updated|deleted.
 */
"use strict";

const taxes = screen({
  name: "taxes",
  rates: new Map(),

  boot() {
    const form = $("#tax-form");
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      saveRate(form);
    });
    form.querySelector('[data-role="cancel"]').addEventListener("click", () => editRate(null));
  },

  async load() {
    try {
      const rates = await api("/admin/tax-rates");
      taxes.rates.clear();
      for (const r of rates) taxes.rates.set(r.id, r);
      $("#taxes-error").textContent = "";
    } catch (err) {
      $("#taxes-error").textContent = "Could not load the tax rates: " + err.message;
      return false;
    } finally {
      taxes.render();
    }
    return true;
  },

  reset() {
    taxes.rates.clear();
  },

  end() {
    editRate(null);
  },

  apply(name, d) {
    if (!d || !d.id) return;
    if (name === "taxRate:added" || name === "taxRate:updated") {
      const known = taxes.rates.get(d.id);
      if (!(known && known.version > d.version)) taxes.rates.set(d.id, d);
      taxes.render();
    } else if (name === "taxRate:deleted") {
      taxes.rates.delete(d.id);
      if ($("#tax-form").dataset.editing === d.id) {
        editRate(null);
        $("#taxes-error").textContent = "The rate you were editing was deleted meanwhile.";
      }
      taxes.render();
    }
  },

  render() {
    const rates = [...taxes.rates.values()].sort((a, b) => String(a.country).localeCompare(String(b.country))
      || String(a.region || "").localeCompare(String(b.region || "")) || String(a.name).localeCompare(String(b.name)));
    $("#taxes-count").textContent = rates.length ? "(" + rates.length + ")" : "";
    $("#taxes-empty").hidden = rates.length > 0;
    const body = $("#taxes-body");
    keepFocus(body, "rateId", () => body.replaceChildren(...rates.map(rateRow)));
  },
});

function rateRow(r) {
  const edit = el("button", { type: "button", className: "small quiet rate-edit", text: "Edit", "aria-label": "Edit rate " + r.name });
  edit.addEventListener("click", () => editRate(r));
  const remove = armedButton("Delete", "Confirm delete", async () => {
    try {
      await api("/admin/tax-rates/" + encodeURIComponent(r.id), { method: "DELETE" });
    } catch (err) {
      $("#taxes-error").textContent = "Could not delete " + r.name + ": " + err.message;
      return false;
    }
    $("#taxes-error").textContent = "";
    taxes.rates.delete(r.id);
    taxes.render();
    return true;
  });
  remove.setAttribute("aria-label", "Delete rate " + r.name);
  remove.classList.add("rate-delete");
  return el("tr", { dataset: { rateId: r.id } },
    el("td", { "data-label": "Name", text: r.name }),
    el("td", { "data-label": "Where", text: r.country + (r.region ? " \u00b7 " + r.region : "") }),
    el("td", { "data-label": "Rate", className: "num", dataset: { role: "rate" }, text: bpToPercent(r.rate_bp) + "%" }),
    el("td", { "data-label": "Shipping", text: r.applies_to_shipping ? "taxed too" : "not taxed" }),
    el("td", { className: "num" }, edit, " ", remove));
}

function editRate(r) {
  const form = $("#tax-form");
  setMode(form, r ? r.id : null, "rate");
  if (!r) return;
  form.elements.namedItem("name").value = r.name;
  form.elements.namedItem("country").value = r.country;
  form.elements.namedItem("region").value = r.region || "";
  form.elements.namedItem("rate_bp").value = bpToPercent(r.rate_bp);
  form.elements.namedItem("applies_to_shipping").checked = r.applies_to_shipping;
  form.elements.namedItem("name").focus();
}

async function saveRate(form) {
  clearErrors(form);
  const id = form.dataset.editing;
  const body = {
    name: text(form, "name"),
    country: text(form, "country").toUpperCase(),
    region: text(form, "region") || null,
    rate_bp: percentToBp(text(form, "rate_bp")),
    applies_to_shipping: form.elements.namedItem("applies_to_shipping").checked,
  };
  const submit = form.querySelector('[data-role="submit"]');
  submit.disabled = true;
  try {
    const saved = await api(id ? "/admin/tax-rates/" + encodeURIComponent(id) : "/admin/tax-rates",
      { method: id ? "PUT" : "POST", body });
    taxes.rates.set(saved.id, saved);
    editRate(null);
    taxes.render();
  } catch (err) {
    showErrors(form, problemOf(err));
  } finally {
    submit.disabled = false;
  }
}
