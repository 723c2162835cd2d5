/*
 * A return's next step, in the order detail: approve or reject what a customer asked to send back,
 * then mark the goods received. Receiving puts the units back in stock and has payments refund
 * those lines' share of what was paid; the return then shows refunded (return:updated, live in
 * every console that has the order open).
 *
 * The steps offered follow the orders service's return statuses (requested -> approved|rejected,
 * approved -> received); the service decides, and a refusal is shown beside the buttons.
 */
"use strict";

const RETURN_STEPS = {
  requested: [["approved", "Approve"], ["rejected", "Reject"]],
  approved: [["received", "Goods received: restock and refund"]],
};

function returnActions(r, order) {
  const steps = RETURN_STEPS[r.status] || [];
  if (!steps.length) return null;
  const problem = el("span", { className: "row-error", role: "alert" });
  const box = el("span", { className: "return-actions" });
  const act = async (status) => {
    for (const b of box.querySelectorAll("button")) b.disabled = true;
    problem.textContent = "";
    try {
      await api("/admin/returns/" + encodeURIComponent(r.id), { method: "PATCH", body: { status } });
    } catch (err) {
      problem.textContent = err.message;
      for (const b of box.querySelectorAll("button")) b.disabled = false;
      return false;
    }
    openOrder(order.id); // the return's new state, the order's refund: read again
    return true;
  };
  for (const [status, caption] of steps) {
    // rejecting and receiving cannot be undone (receiving refunds): a second click confirms
    const button = status === "approved"
      ? el("button", { type: "button", className: "small", text: caption, on: { click: () => act(status) } })
      : armedButton(caption, status === "received" ? "Confirm: received, refund" : "Confirm: reject", () => act(status));
    button.dataset.returnStep = status;
    box.append(button, " ");
  }
  return el("span", {}, " ", box, problem);
}
