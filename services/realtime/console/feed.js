/* The live feed: every notification as a sentence, newest first. */
"use strict";

const FEED_MAX = 300;

function productName(id) {
  const p = catalog.products.get(id);
  return p ? "\u201c" + p.name + "\u201d" : "product " + shortId(id);
}

function sentence(name, d) {
  const order = "order " + shortId(d.order_id);
  switch (name) {
    case "order:created": {
      const count = (d.items || []).reduce((n, i) => n + (i.quantity || 0), 0);
      return "New " + order + ": " + count + (count === 1 ? " item, " : " items, ") + money(d.total, d.currency) + ".";
    }
    case "order:statusUpdated":
      return "Order " + shortId(d.order_id) + " moved from " + label(d.from) + " to " + label(d.to)
        + (d.reason ? " (" + d.reason + ")" : "") + ".";
    case "order:fulfilled": {
      const f = d.fulfillment || {};
      return "Order " + shortId(d.order_id) + " shipped" + (f.carrier ? " with " + f.carrier : "")
        + (f.tracking_number ? " (tracking " + f.tracking_number + ")" : "") + ".";
    }
    case "return:updated": {
      const units = (d.items || []).reduce((n, i) => n + (i.quantity || 0), 0);
      return "Return of " + units + (units === 1 ? " item" : " items") + " from " + order + " " + label(d.status)
        + (d.refund_amount != null && (d.status === "received" || d.status === "refunded")
          ? " (" + money(d.refund_amount, d.currency) + ")" : "") + ".";
    }
    case "payment:succeeded": return "Payment of " + money(d.amount, d.currency) + " received for " + order + ".";
    case "payment:failed": return "Payment failed for " + order + (d.reason ? ": " + d.reason : "") + ".";
    case "payment:refunded": return "Refunded " + money(d.amount, d.currency) + " for " + order + ".";
    case "category:added": return "Category \u201c" + d.name + "\u201d added.";
    case "category:updated": return "Category \u201c" + d.name + "\u201d updated.";
    case "category:deleted": return "Category \u201c" + (d.name || shortId(d.id)) + "\u201d deleted.";
    case "product:added": return "Product \u201c" + d.name + "\u201d added at " + money(d.price, d.currency) + ".";
    case "product:updated": return "Product \u201c" + d.name + "\u201d updated.";
    case "product:deleted": return "Product \u201c" + (d.name || shortId(d.id)) + "\u201d deleted.";
    case "stock:updated": return "Stock of " + productName(d.product_id) + " is now " + d.stock + ".";
    case "user:registered": return "New customer " + (d.name || "") + " <" + (d.email || "?") + "> registered.";
    case "promotion:added": return "Promotion \u201c" + d.name + "\u201d added" + (d.code ? " (code " + d.code + ")." : ".");
    case "promotion:updated": return "Promotion \u201c" + d.name + "\u201d updated.";
    case "promotion:deleted": return "Promotion \u201c" + d.name + "\u201d deleted.";
    case "promotion:claimed":
      return (d.code ? "Code " + d.code : "A promotion") + " took " + money(d.amount, d.currency) + " off " + order
        + " (" + d.times_used + (d.usage_limit ? " of " + d.usage_limit : "") + " used).";
    case "promotion:released": return (d.code ? "Code " + d.code : "A promotion") + " given back by " + order + ".";
    case "shippingZone:added": case "shippingZone:updated": case "shippingZone:deleted":
      return "Shipping zone \u201c" + d.name + "\u201d " + name.split(":")[1] + ".";
    case "taxRate:added": case "taxRate:updated": case "taxRate:deleted":
      return "Tax rate \u201c" + d.name + "\u201d (" + (d.rate_bp / 100) + "%, " + d.country
        + (d.region ? "-" + d.region : "") + ") " + name.split(":")[1] + ".";
    case "webhook:disabled":
      return "Webhook " + (d.description ? "\u201c" + d.description + "\u201d " : "") + "to " + d.url
        + " turned off after " + d.consecutive_failures + " failed attempts in a row"
        + (d.last_error ? " (" + d.last_error + ")" : "") + "; PATCH it active again once it answers.";
    default: return name;
  }
}

function addToFeed(name, data, payload) {
  const feed = $("#feed");
  feed.prepend(el("li", { className: "fresh", dataset: { event: name, eventId: payload.event_id || "" } },
    el("time", { datetime: payload.occurred_at, title: payload.occurred_at, text: clock(payload.occurred_at) }),
    el("span", { className: "tag", text: name }),
    el("span", { className: "text", text: sentence(name, data) })));
  while (feed.children.length > FEED_MAX) feed.lastElementChild.remove();
  $("#feed-empty").hidden = true;
}

function note(tag, text) {
  addToFeed(tag, {}, { occurred_at: new Date().toISOString() });
  $("#feed").firstElementChild.lastElementChild.textContent = text;
}

screen({
  name: "feed",
  render() {
    $("#feed-empty").hidden = $("#feed").children.length > 0;
  },
  // what was heard stays through a resync; only signing out clears it
  end() {
    $("#feed").replaceChildren();
  },
  apply(name, data, payload) {
    addToFeed(name, data, payload);
  },
});
