/* E-mails to customers: the newest the notifications service made and how each delivery went. */
"use strict";

const emails = screen({
  name: "emails",
  items: [],
  total: 0,
  timer: null,
  // the events after which notifications mails a customer: the list is reloaded shortly after
  mailing: new Set(["user:registered", "order:statusUpdated", "order:fulfilled", "return:updated", "payment:refunded"]),

  boot() {
    $("#emails-reload").addEventListener("click", () => emails.load());
  },

  async load() {
    try {
      const page = await api("/admin/emails?page_size=20");
      emails.items = page.items || [];
      emails.total = page.total || 0;
      $("#emails-error").textContent = "";
    } catch (err) {
      $("#emails-error").textContent = "Could not load the e-mails: " + err.message;
    }
    emails.render();
  },

  reset() {
    clearTimeout(emails.timer);
    emails.items = [];
    emails.total = 0;
  },

  apply(name) {
    if (!emails.mailing.has(name)) return;
    // the mail is made when notifications handles the same event, a moment after this socket hears it
    clearTimeout(emails.timer);
    emails.timer = setTimeout(() => emails.load(), 1500);
  },

  render() {
    const items = emails.items;
    $("#emails-count").textContent = emails.total ? "(" + emails.total + ")" : "";
    $("#emails-empty").hidden = items.length > 0;
    $("#emails-body").replaceChildren(...items.map((m) => el("tr", { dataset: { emailId: m.id } },
      el("td", { text: new Date(m.created_at).toLocaleString() }),
      el("td", { title: m.to_name || "", text: m.to }),
      el("td", { text: m.subject }),
      el("td", { dataset: { role: "status" }, title: m.last_error || "", text: m.status }),
      el("td", { className: "num", text: m.attempts }))));
  },
});
