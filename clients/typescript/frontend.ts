// A storefront's calls to the shop, written as a frontend would, against the types generated from
// the gateway's OpenAPI document (build/shop-api.d.ts). It is only type-checked (make client-check):
// renaming a field, dropping an operation or changing a problem's shape fails the build here.
import createClient from "openapi-fetch";
import type { components, paths } from "./build/shop-api";

type Schemas = components["schemas"];
type Problem = Schemas["Problem"];
type Availability = Schemas["CartItemPublic"]["availability"];
type OrderCreate = NonNullable<paths["/orders"]["post"]["requestBody"]>["content"]["application/json"];

const shop = createClient<paths>({ baseUrl: "http://127.0.0.1:8000" });

// clients branch on the problem's stable type URI, never on its title or detail
function explain(problem: Problem): string {
  switch (problem.type) {
    case "/problems/validation-failed":
      return (problem.errors ?? []).map((e) => `${e.field}: ${e.message}`).join("; ");
    case "/problems/insufficient-stock":
      return "Some items sold out meanwhile.";
    default:
      return problem.detail;
  }
}

const availabilityLabel: Record<Availability, string> = {
  available: "In stock",
  insufficient_stock: "Fewer left than you want",
  out_of_stock: "Sold out",
  unavailable: "No longer sold",
};

export async function signIn(email: string, password: string): Promise<{ token: string; name: string }> {
  const { data, error } = await shop.POST("/auth/login", { body: { email, password } });
  if (error) throw new Error(explain(error));
  // login answers with the user, as register does
  return { token: data.access_token, name: data.user.name };
}

export async function cartSummary(token: string): Promise<string[]> {
  const auth = { Authorization: `Bearer ${token}` };
  const cart = await shop.GET("/cart", { headers: auth });
  const wishlist = await shop.GET("/wishlist", { headers: auth });
  if (cart.error) throw new Error(explain(cart.error));
  if (wishlist.error) throw new Error(explain(wishlist.error));
  // one list shape and one availability vocabulary for both
  const lines = cart.data.items.map(
    (line) => `${line.quantity} x ${line.name}: ${line.line_total} ${cart.data.currency} (${availabilityLabel[line.availability]})`,
  );
  const saved = wishlist.data.items.map((entry) => `${entry.name}: ${availabilityLabel[entry.availability]}`);
  return [`${cart.data.count} lines, ${cart.data.item_count} units`, ...lines, `${wishlist.data.count} saved`, ...saved];
}

export async function placeOrderAndPay(token: string, key: string): Promise<Schemas["PaymentPublic"]> {
  const auth = { Authorization: `Bearer ${token}` };
  // typed from the operation, not a schema name: two services may both name a schema ShippingAddress
  const address: OrderCreate["shipping_address"] = {
    name: "Ann Example", line1: "Main St 1", city: "Berlin", postal_code: "10115", country: "DE",
  };
  const placed = await shop.POST("/orders", {
    body: { shipping_address: address },
    params: { header: { "Idempotency-Key": key } },
    headers: auth,
  });
  if (placed.error) {
    if (placed.response.status === 409 && "short" in placed.error) {
      const short = (placed.error.short ?? []).map((s) => `${s.product_id}: ${s.available} of ${s.requested} left`);
      throw new Error(short.join(", "));
    }
    throw new Error(explain(placed.error));
  }
  const order: Schemas["OrderPublic"] = placed.data;

  // right after placing, payments may not know the order yet: 425 with Retry-After
  for (;;) {
    const checkout = await shop.POST("/payment/checkout", {
      body: { order_id: order.id, payment_method: "pm_card_visa" },
      headers: auth,
    });
    if (checkout.data) {
      const intent: Schemas["CheckoutPublic"] = checkout.data;
      const verified = await shop.POST("/payment/verify", {
        body: { payment_intent_id: intent.payment_intent_id },
        headers: auth,
      });
      if (verified.error) throw new Error(explain(verified.error));
      return verified.data;
    }
    if (checkout.error.type !== "/problems/order-not-payable-yet") throw new Error(explain(checkout.error));
    const wait = Number(checkout.response.headers.get("Retry-After") ?? "1");
    await new Promise((resolve) => setTimeout(resolve, wait * 1000));
  }
}

export async function product(idOrSlug: string): Promise<Schemas["ProductPublic"]> {
  // public: no token needed
  const { data, error } = await shop.GET("/products/{id_or_slug}", { params: { path: { id_or_slug: idOrSlug } } });
  if (error) throw new Error(explain(error));
  return data;
}
