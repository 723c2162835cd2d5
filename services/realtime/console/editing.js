/*
 * What the screens that edit over REST share (shipping zones, tax rates, API keys): the owning
 * services have no socket commands for these, so the console calls their admin routes directly and
 * puts a refusal's field errors beside the fields, in a person's words (messages.js).
 */
"use strict";

// the problem of a failed call, or one made of its message (a network error has no problem body)
function problemOf(err) {
  return err && err.problem && err.problem.status ? err.problem : { detail: (err && err.message) || "Refused." };
}

// comma- or space-separated codes as typed ("de, at") -> ["DE", "AT"]; the server checks each
const codes = (value) => value.split(/[\s,;]+/).map((c) => c.trim().toUpperCase()).filter(Boolean);

// "19" or "7.5" (percent) -> basis points; anything else goes as typed and the server says what is wrong
function percentToBp(value) {
  return /^\d+(\.\d{1,2})?$/.test(value) ? Math.round(Number(value) * 100) : value;
}
const bpToPercent = (bp) => (typeof bp === "number" ? String(bp / 100) : "");
