/* Promotions and coupons (pricing's), with their uses counted live. */
"use strict";

const promotions = screen({
  name: "promotions",
  items: new Map(),

  boot() {
    bindForm($("#promotion-form"), "promotion", promotionPayload, (p) => { upsertPromotion(p); promotions.render(); });
  },

  async load() {
    $("#promotions-error").textContent = "";
    try {
      const page = await api("/admin/promotions?page_size=100");
      for (const p of page.items) upsertPromotion(p);
    } catch (err) {
      $("#promotions-error").textContent = "Could not load the promotions: " + err.message;
    }
    promotions.render();
  },

  reset() {
    promotions.items.clear();
  },

  apply(name, d) {
    switch (name) {
      case "promotion:added": case "promotion:updated":
        upsertPromotion(d);
        promotions.render();
        break;
      case "promotion:deleted":
        promotions.items.delete(d.id);
        promotions.render();
        break;
      case "promotion:claimed": case "promotion:released": {
        const p = promotions.items.get(d.promotion_id);
        if (p && typeof d.times_used === "number") {
          p.times_used = d.times_used;
          promotions.render();
        }
        break;
      }
    }
  },

  render() {
    const items = [...promotions.items.values()].sort((a, b) => String(a.name).localeCompare(String(b.name)));
    $("#promotions-count").textContent = items.length ? "(" + items.length + ")" : "";
    $("#promotions-empty").hidden = items.length > 0;
    $("#promotions-body").replaceChildren(...items.map((p) => {
      const limit = p.rules && p.rules.usage_limit;
      return el("tr", { dataset: { promotionId: p.id } },
        el("td", {}, el("span", { text: p.name }),
          p.is_active === false ? el("span", { className: "badge", text: "inactive" }) : null),
        el("td", { className: "mono", text: p.code || "automatic" }),
        el("td", { text: discountText(p) }),
        el("td", { className: "num", dataset: { role: "used" }, text: (p.times_used ?? 0) + (limit ? " / " + limit : "") }),
        el("td", { className: "num" },
          deleteButton("promotion:delete", p.id, "#promotions-error", () => promotions.items.delete(p.id))));
    }));
  },
});

function upsertPromotion(p) {
  const known = promotions.items.get(p.id);
  if (known && typeof known.version === "number" && typeof p.version === "number" && known.version > p.version) return;
  if (p.deleted) return promotions.items.delete(p.id);
  promotions.items.set(p.id, { ...known, ...p });
}

function discountText(p) {
  const a = p.action || {};
  if (a.type === "percent_off") return (a.value / 100) + "% off";
  if (a.type === "amount_off") return money(a.value, p.currency) + " off";
  if (a.type === "free_shipping") return "free shipping";
  if (a.type === "buy_x_get_y") return "buy " + a.buy + " get " + a.get;
  return a.type || "";
}

function promotionPayload(form) {
  const kind = text(form, "kind");
  const currency = text(form, "currency").toUpperCase();
  const out = { name: text(form, "name"), action: { type: kind } };
  if (text(form, "code")) out.code = text(form, "code");
  if (currency) out.currency = currency;
  const value = text(form, "value");
  // percent in the form, basis points on the wire; money as typed ("5.00"), minor units on the wire
  if (kind === "percent_off") out.action.value = /^\d+(\.\d{1,2})?$/.test(value) ? Math.round(Number(value) * 100) : value;
  else if (kind === "amount_off") out.action.value = toMinor(value, currency || "USD");
  if (text(form, "usage_limit")) out.rules = { usage_limit: integer(text(form, "usage_limit")) };
  return out;
}
