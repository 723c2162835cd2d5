/*
 * Field messages a person understands, from the API's problem `errors` (pydantic's words and
 * types): "Enter a price like 19.99" rather than "Input should be a valid integer".
 * Unknown cases keep the server's message, which still names the problem.
 */
"use strict";

const FIELD_HELP = {
  price: { number: "Enter a price like 19.99.", negative: "A price cannot be below zero: enter one like 19.99." },
  compare_at_price: { number: "Enter a price like 24.99, or leave it empty.", negative: "A price cannot be below zero.",
    value_error: "The compare-at price is the old price: make it higher than the price, or leave it empty." },
  stock: { number: "Enter the units in stock as a whole number, like 7.", negative: "Stock cannot be below zero." },
  position: { number: "Enter a whole number, like 1.", negative: "Use 0 or more." },
  usage_limit: { number: "Enter how many times it may be used, like 100, or leave it empty.", negative: "Use 1 or more." },
  category_id: { any: "Choose a category." },
  parent_id: { any: "Choose a parent category, or (top level)." },
  currency: { any: "Enter a three-letter currency code, like USD or EUR." },
  name: { missing: "Enter a name.", duplicate: "Each option needs its own name." },
  sku: { missing: "Enter a SKU, the code on your stock list (e.g. TENT-2P).",
    pattern: "Use letters, digits, dots, dashes and underscores in the SKU.",
    unique: "Another product or variant already uses this SKU: choose another.",
    duplicate: "Two variants here have this SKU: give each its own." },
  values: { missing: "Enter at least one value, like S, M, L.", value_error: "Give each value once." },
  options: { duplicate_combination: "Another variant already has these options.",
    unknown_value: "Choose one of the option's values.", unknown: "This product has no such option." },
  code: { any: "Use letters and digits for the code, like SPRING15, or leave it empty for an automatic promotion." },
  email: { any: "Enter an e-mail address like ada@example.com." },
  url: { any: "Enter a web address starting with https://." },
  tracking_url: { any: "Enter a tracking link starting with https://, or leave it empty." },
  amount: { number: "Enter a price like 4.90 (0 for free).", negative: "A price cannot be below zero." },
  free_over: { number: "Enter an order subtotal like 50.00, or leave it empty.", negative: "Use 0 or more." },
  countries: { any: "Enter two-letter country codes separated by commas, like DE, AT." },
  country: { any: "Enter a two-letter country code, like DE or US." },
  postal_prefixes: { any: "Enter the starts of postal codes separated by commas, like 10, 20 (letters, digits, spaces, dashes)." },
  min_days: { number: "Enter a whole number of days, like 2.", negative: "Use 0 days or more." },
  max_days: { number: "Enter a whole number of days, like 4.", negative: "Use 0 days or more.",
    value: "The latest day cannot come before the earliest." },
  rate_bp: { number: "Enter the rate as a percentage, like 19 or 7.5.", negative: "A rate cannot be below 0%.",
    most: "A rate cannot be above 100%." },
  scopes: { any: "Tick at least one thing the key may do." },
  low_stock_threshold: { number: "Enter a whole number of units, like 5.", negative: "Use 0 or more units.",
    most: "Use a smaller number of units." },
};
const NUMBER_TYPES = new Set(["int_parsing", "int_type", "int_from_float", "float_parsing", "float_type", "decimal_parsing"]);
const NEGATIVE_TYPES = new Set(["greater_than_equal", "greater_than"]);
const MISSING_TYPES = new Set(["missing", "string_too_short", "too_short"]);

function humanMessage(e) {
  const path = String(e.field || "").split(".");
  const name = path[path.length - 1];
  // the field's own words, else its parent's ("options.Size" is about options), else the top field's
  const help = FIELD_HELP[name] || FIELD_HELP[path[path.length - 2]] || FIELD_HELP[path[0]] || {};
  const type = String(e.type || "");
  const msg = String(e.message || "");
  if (help.any) return help.any;
  if (help[type]) return help[type]; // a rule of this field the API names by type (a SKU taken, ...)
  if (NUMBER_TYPES.has(type) && help.number) return help.number;
  if (NEGATIVE_TYPES.has(type) && help.negative) return help.negative;
  if (MISSING_TYPES.has(type) && help.missing) return help.missing;
  if (type.includes("pattern") && help.pattern) return help.pattern;
  if (type === "value_error" && help.value) return help.value;
  if ((type === "less_than_equal" || type === "less_than") && help.most) return help.most;
  if (type === "missing") return "Fill this in.";
  if (type === "string_too_short") return "Fill this in.";
  if (type === "string_too_long") {
    const most = /at most (\d+)/.exec(msg);
    return most ? "Keep it to " + most[1] + " characters or fewer." : "This is too long.";
  }
  if (NUMBER_TYPES.has(type)) return "Enter a number, like 10.";
  if (type === "less_than_equal" && /percent|value/.test(String(e.field))) {
    const most = /less than or equal to (\d+)/.exec(msg);
    return most && name === "value" && /percent|action/.test(String(e.field))
      ? "Enter a percentage up to " + Number(most[1]) / 100 + "." : msg;
  }
  if (type === "uuid_parsing" || type === "uuid_type") return "Choose one from the list.";
  // pydantic's own prefix says nothing to a person
  return msg.replace(/^Value error, /, "");
}
