/* Webhooks of integrators: the endpoints, the latest deliveries of one, redeliver. A secret is shown
 * once, right after the endpoint is added or its secret rotated (the server never shows it again). */
"use strict";

const webhooks = screen({
  name: "webhooks",
  items: [],
  open: null, // the endpoint whose deliveries are listed
  deliveries: [],
  secret: null, // { url, secret } just issued

  boot() {
    $("#webhooks-reload").addEventListener("click", () => webhooks.load());
    $("#webhook-form").addEventListener("submit", (e) => {
      e.preventDefault();
      webhooks.add(e.target);
    });
  },

  async load() {
    try {
      const page = await api("/admin/webhooks?page_size=100");
      webhooks.items = page.items || [];
      if (webhooks.open && !webhooks.items.some((w) => w.id === webhooks.open)) webhooks.open = null;
      webhooks.deliveries = webhooks.open
        ? (await api("/admin/webhooks/" + webhooks.open + "/deliveries?page_size=10")).items || []
        : [];
      $("#webhooks-error").textContent = "";
    } catch (err) {
      $("#webhooks-error").textContent = "Could not load the webhooks: " + err.message;
    }
    webhooks.render();
  },

  async add(form) {
    clearErrors(form);
    const body = {
      url: form.elements.url.value.trim(),
      events: form.elements.events.value.split(/[\s,]+/).filter(Boolean),
      description: form.elements.description.value.trim(),
    };
    try {
      const made = await api("/admin/webhooks", { method: "POST", body });
      webhooks.secret = { url: made.url, secret: made.secret };
      form.reset();
      await webhooks.load();
    } catch (err) {
      showErrors(form, err.problem && err.problem.status ? err.problem : { detail: err.message });
    }
  },

  async act(path, method, body) {
    try {
      const answer = await api(path, { method, body });
      $("#webhooks-error").textContent = "";
      return answer;
    } catch (err) {
      $("#webhooks-error").textContent = err.message;
      return null;
    }
  },

  reset() {
    webhooks.items = [];
    webhooks.open = null;
    webhooks.deliveries = [];
    webhooks.secret = null;
  },

  apply(name) {
    if (name === "webhook:disabled") webhooks.load();
  },

  render() {
    const shown = webhooks.secret;
    $("#webhook-secret").hidden = !shown;
    $("#webhook-secret-text").textContent = shown ? shown.secret : "";
    $("#webhook-secret-url").textContent = shown ? shown.url : "";
    $("#webhooks-empty").hidden = webhooks.items.length > 0;
    $("#webhooks-body").replaceChildren(...webhooks.items.map((w) => el("tr", { dataset: { webhookId: w.id } },
      el("td", { title: w.description || "", text: w.url }),
      el("td", { text: w.events.join(", ") }),
      el("td", { dataset: { role: "state" }, title: w.disabled_reason || "",
        text: w.active ? "active" : (w.disabled_at ? "disabled" : "off") }),
      el("td", { className: "num", text: w.consecutive_failures }),
      el("td", {},
        el("button", { type: "button", className: "small quiet", text: "Deliveries", on: { click: () => {
          webhooks.open = webhooks.open === w.id ? null : w.id;
          webhooks.load();
        } } }),
        el("button", { type: "button", className: "small quiet", text: w.active ? "Turn off" : "Turn on", on: {
          click: async () => {
            if (await webhooks.act("/admin/webhooks/" + w.id, "PATCH", { active: !w.active })) webhooks.load();
          } } }),
        el("button", { type: "button", className: "small quiet", text: "Rotate secret", on: { click: async () => {
          const rotated = await webhooks.act("/admin/webhooks/" + w.id + "/rotate-secret", "POST");
          if (rotated) {
            webhooks.secret = { url: rotated.url, secret: rotated.secret };
            webhooks.load();
          }
        } } })))));
    const open = webhooks.items.find((w) => w.id === webhooks.open);
    $("#webhook-deliveries").hidden = !open;
    $("#webhook-deliveries-url").textContent = open ? open.url : "";
    $("#webhook-deliveries-body").replaceChildren(...webhooks.deliveries.map((d) => el("tr",
      { dataset: { deliveryId: d.id } },
      el("td", { text: new Date(d.created_at).toLocaleString() }),
      el("td", { text: d.event_type }),
      el("td", { dataset: { role: "status" }, title: d.last_error || "", text: d.status }),
      el("td", { className: "num", text: d.response_code === null ? "\u2013" : d.response_code }),
      el("td", { className: "num", text: d.attempts }),
      el("td", {}, el("button", { type: "button", className: "small quiet", text: "Redeliver", on: {
        click: async () => {
          if (await webhooks.act("/admin/webhooks/" + webhooks.open + "/deliveries/" + d.id + "/redeliver", "POST")) {
            setTimeout(() => webhooks.load(), 1000);
          }
        } } })))));
  },
});
